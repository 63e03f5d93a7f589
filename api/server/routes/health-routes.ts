import type { FastifyInstance } from 'fastify';
import type { ReadyAnswer } from '../../../client/wire-types.js';
import { checkReadiness } from '../check-readiness.js';
import type { RouteDeps } from '../route-deps.js';
import { healthAnswer, readyAnswer } from '../wire-schemas.js';

/** `GET /healthz` (the process serves) and `GET /readyz` (it can do work); both without a token. */
export function healthRoutes(app: FastifyInstance, deps: RouteDeps): void {
  app.get<{ Reply: { ok: boolean } }>(
    '/healthz',
    {
      config: { access: 'public' },
      // Probes come every few seconds: their request lines would bury everything else.
      logLevel: 'warn',
      schema: { tags: ['health'], summary: 'Liveness: 200 while the process serves', security: [], response: { 200: healthAnswer } },
    },
    async () => ({ ok: true }),
  );

  const participants = deps.catalog.participantNames();
  app.get<{ Reply: ReadyAnswer }>(
    '/readyz',
    {
      config: { access: 'public' },
      logLevel: 'warn',
      schema: {
        tags: ['health'],
        summary: 'Readiness: every participant answers and the decision log can take a write (200), else 503',
        description: 'checks: coordinator, participant:<name> and log, each "ok" or a TXC_* code (no messages: this route needs no token).',
        security: [],
        response: { 200: readyAnswer, 503: readyAnswer },
      },
    },
    async (_req, reply) => {
      const answer = await checkReadiness(deps.scanner, participants, deps.logProbe);
      void reply.code(answer.ok ? 200 : 503);
      return answer;
    },
  );
}
