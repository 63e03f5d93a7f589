import type { FastifyInstance } from 'fastify';
import type { SagaView, SubmitSagaAnswer, SubmitSagaRequest } from '../../../client/wire-types.js';
import { TxcError } from '../../../coordinator/errors.js';
import type { RouteDeps } from '../route-deps.js';
import { toSagaSteps } from '../to-saga-steps.js';
import { errorResponses, idempotencyHeaders, idParams, noQuery, sagaView, submitSagaAnswer, submitSagaRequest } from '../wire-schemas.js';

/** `POST /v1/sagas` and `GET /v1/sagas/:id`. */
export function sagaRoutes(app: FastifyInstance, deps: RouteDeps): void {
  app.post<{ Body: SubmitSagaRequest; Headers: { 'idempotency-key'?: string }; Reply: SubmitSagaAnswer }>(
    '/v1/sagas',
    {
      schema: {
        tags: ['sagas'],
        summary: 'Start a saga; answers 202 once its first record is durable',
        description:
          'Steps over HTTP participants use { path, body }; steps over database participants use { statement, params }, a named statement of the participant (its configured compensation is used when the step gives none). An Idempotency-Key header makes a repeat return the first saga (existing: true).',
        body: submitSagaRequest,
        headers: idempotencyHeaders,
        querystring: noQuery,
        response: { 202: submitSagaAnswer, ...errorResponses(400, 401, 403, 413, 415, 500, 503) },
      },
    },
    async (req, reply) => {
      const steps = toSagaSteps(req.body.steps, deps.catalog);
      const key = req.headers['idempotency-key'];
      const started = performance.now();
      const submitted = await deps.coord.submitSaga(
        { steps },
        {
          ...(key !== undefined ? { idempotencyKey: key } : {}),
          ...(req.body.timeoutMs !== undefined ? { timeoutMs: req.body.timeoutMs } : {}),
          ...(req.body.meta ? { meta: req.body.meta } : {}),
        },
      );
      // The saga goes on after the answer: its end is only observed (and never left unhandled).
      submitted.result.then(
        (r) => {
          if (!submitted.existing) deps.metrics.observeTransaction('saga', 'saga', r.status, (performance.now() - started) / 1000);
        },
        (err: unknown) => {
          // A repeat's promise may only say the first run is not in this process: nothing to report.
          if (submitted.existing) return;
          deps.metrics.observeTransaction('saga', 'saga', TxcError.is(err) ? err.code : 'TXC_INTERNAL', (performance.now() - started) / 1000);
          deps.logger.warn({ err, saga: submitted.id }, 'saga submitted over HTTP ended with an error');
        },
      );
      void reply.code(202).header('location', `/v1/sagas/${submitted.id}`);
      return { id: submitted.id, existing: submitted.existing };
    },
  );

  app.get<{ Params: { id: string }; Reply: SagaView }>(
    '/v1/sagas/:id',
    {
      schema: {
        tags: ['sagas'],
        summary: 'A saga’s state: running (from the log) or its final state while remembered',
        params: idParams,
        querystring: noQuery,
        response: { 200: sagaView, ...errorResponses(400, 401, 403, 404, 500, 503) },
      },
    },
    async (req) => {
      const view = await deps.coord.sagaStatus(req.params.id);
      if (!view) throw new TxcError('TXC_NOT_FOUND', `No saga ${req.params.id} is known to this coordinator`, { details: { id: req.params.id } });
      return view;
    },
  );
}
