import type { FastifyInstance } from 'fastify';
import type {
  AbortAnswer,
  AddBranchRequest,
  BeginTransactionRequest,
  CommitAnswer,
  ExecuteAnswer,
  ExecuteRequest,
  TransactionView,
  WireBranch,
} from '../../../client/wire-types.js';
import { TxcError } from '../../../coordinator/errors.js';
import { gtridTime } from '../../../coordinator/xid.js';
import { badRequest } from '../bad-request.js';
import { executeSteps } from '../execute-steps.js';
import type { RouteDeps } from '../route-deps.js';
import type { StatementCatalog } from '../statement-catalog.js';
import {
  abortAnswer,
  abortRequest,
  addBranchRequest,
  beginTransactionRequest,
  commitAnswer,
  commitRequest,
  errorResponses,
  executeAnswer,
  executeRequest,
  idParams,
  noQuery,
  transactionView,
  wireBranch,
} from '../wire-schemas.js';

/**
 * A client-driven branch is prepared by the application itself, so its participant must be a
 * database that can prepare; checked here so the refusal names the request field.
 */
function checkTwoPhase(catalog: StatementCatalog, participant: string, field: string): void {
  const profile = catalog.profile(participant);
  if (!profile) throw badRequest(field, `names no participant (configured: ${catalog.participantNames().join(', ')})`, 'TXC_PARTICIPANT_UNKNOWN');
  if (profile.kind !== 'two-phase') {
    throw badRequest(field, `names ${participant}, which cannot prepare: use POST /v1/transactions/execute or a saga for it`, 'TXC_TWO_PHASE_UNSUPPORTED');
  }
}

const sinceStart = (id: string) => {
  const t = gtridTime(id);
  return t === undefined ? 0 : Math.max(0, Date.now() - t) / 1000;
};

/** Client-driven 2PC (`/v1/transactions...`) and `POST /v1/transactions/execute`. */
export function transactionRoutes(app: FastifyInstance, deps: RouteDeps): void {
  const { coord, catalog, metrics } = deps;

  app.post<{ Body: BeginTransactionRequest; Reply: TransactionView }>(
    '/v1/transactions',
    {
      config: { optionalBody: true },
      schema: {
        tags: ['transactions'],
        summary: 'Begin a client-driven two-phase transaction',
        description: 'Each branch gives the xid the application uses on its own connection (XA START / PREPARE TRANSACTION ...); commit then decides and finishes every branch.',
        body: beginTransactionRequest,
        querystring: noQuery,
        response: { 201: transactionView, ...errorResponses(400, 401, 403, 413, 415, 500, 503) },
      },
    },
    async (req, reply) => {
      (req.body.participants ?? []).forEach((p, i) => checkTwoPhase(catalog, p, `participants[${i}]`));
      const view = await coord.external.begin({
        ...(req.body.participants ? { participants: req.body.participants } : {}),
        ...(req.body.timeoutMs !== undefined ? { timeoutMs: req.body.timeoutMs } : {}),
        ...(req.body.meta ? { meta: req.body.meta } : {}),
      });
      void reply.code(201).header('location', `/v1/transactions/${view.id}`);
      return view;
    },
  );

  app.post<{ Params: { id: string }; Body: AddBranchRequest; Reply: WireBranch }>(
    '/v1/transactions/:id/branches',
    {
      schema: {
        tags: ['transactions'],
        summary: 'Register one more participant in an active client-driven transaction',
        params: idParams,
        body: addBranchRequest,
        querystring: noQuery,
        response: { 201: wireBranch, ...errorResponses(400, 401, 403, 404, 409, 413, 415, 421, 500, 503) },
      },
    },
    async (req, reply) => {
      checkTwoPhase(catalog, req.body.participant, 'participant');
      const branch = await coord.external.addBranch(req.params.id, req.body.participant);
      void reply.code(201);
      return branch;
    },
  );

  app.post<{ Params: { id: string }; Body: Record<string, never>; Reply: CommitAnswer }>(
    '/v1/transactions/:id/commit',
    {
      config: { optionalBody: true },
      schema: {
        tags: ['transactions'],
        summary: 'Commit: every branch must be prepared, else everything rolls back (409 TXC_PREPARE_FAILED)',
        params: idParams,
        body: commitRequest,
        querystring: noQuery,
        response: { 200: commitAnswer, ...errorResponses(400, 401, 403, 404, 409, 413, 415, 421, 500, 503) },
      },
    },
    async (req) => {
      try {
        const answer = await coord.external.commit(req.params.id);
        metrics.observeTransaction('external', '2pc', 'committed', sinceStart(req.params.id));
        return answer;
      } catch (err) {
        if (!TxcError.is(err, 'TXC_NOT_FOUND')) metrics.observeTransaction('external', 'none', TxcError.is(err) ? err.code : 'TXC_INTERNAL', sinceStart(req.params.id));
        throw err;
      }
    },
  );

  app.post<{ Params: { id: string }; Body: { reason?: string }; Reply: AbortAnswer }>(
    '/v1/transactions/:id/abort',
    {
      config: { optionalBody: true },
      schema: {
        tags: ['transactions'],
        summary: 'Abort a client-driven transaction (rolls back every branch)',
        params: idParams,
        body: abortRequest,
        querystring: noQuery,
        response: { 200: abortAnswer, ...errorResponses(400, 401, 403, 404, 409, 413, 415, 421, 500, 503) },
      },
    },
    async (req) => {
      const answer = await coord.external.abort(req.params.id, req.body.reason);
      metrics.observeTransaction('external', 'none', 'aborted', sinceStart(req.params.id));
      return answer;
    },
  );

  app.get<{ Params: { id: string }; Reply: TransactionView }>(
    '/v1/transactions/:id',
    {
      schema: {
        tags: ['transactions'],
        summary: 'A client-driven transaction, while this process remembers it',
        params: idParams,
        querystring: noQuery,
        response: { 200: transactionView, ...errorResponses(400, 401, 403, 404, 421, 500) },
      },
    },
    async (req) => {
      const view = coord.external.get(req.params.id);
      if (!view) throw new TxcError('TXC_NOT_FOUND', `No client-driven transaction ${req.params.id} is known to this process`, { details: { id: req.params.id } });
      return view;
    },
  );

  app.post<{ Body: ExecuteRequest; Reply: ExecuteAnswer }>(
    '/v1/transactions/execute',
    {
      schema: {
        tags: ['transactions'],
        summary: 'Run named statements in order as one transaction, with the strongest guarantee the participants allow',
        description:
          'Each step names a statement from participants.<name>.statements. A participant that cannot prepare gets the statement’s configured compensation, used if the coordinator must run the transaction as a saga.',
        body: executeRequest,
        querystring: noQuery,
        response: { 200: executeAnswer, ...errorResponses(400, 401, 403, 409, 413, 415, 500, 503) },
      },
    },
    async (req) => {
      const started = performance.now();
      try {
        const answer = await executeSteps(coord, catalog, req.body);
        metrics.observeTransaction('execute', answer.mode, 'committed', (performance.now() - started) / 1000);
        return answer;
      } catch (err) {
        // A refused request never started a transaction: only real failures are observed.
        if (!TxcError.is(err) || (err.code !== 'TXC_BAD_REQUEST' && err.code !== 'TXC_PARTICIPANT_UNKNOWN')) {
          metrics.observeTransaction('execute', 'none', TxcError.is(err) ? err.code : 'TXC_INTERNAL', (performance.now() - started) / 1000);
        }
        throw err;
      }
    },
  );
}
