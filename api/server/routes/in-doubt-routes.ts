import type { FastifyInstance } from 'fastify';
import type { InDoubtAnswer, ResolveAnswer, ResolveRequest, WireInDoubt } from '../../../client/wire-types.js';
import type { InDoubtBranch } from '../../../coordinator/types.js';
import type { RouteDeps } from '../route-deps.js';
import { tokenIdOf } from '../token-verifier.js';
import { errorResponses, inDoubtAnswer, noQuery, resolveAnswer, resolveRequest, xidParams } from '../wire-schemas.js';

/** An in-doubt branch on the wire: only the contract's fields, with its `<gtrid>.<bqual>` id. */
export function toWireInDoubt(b: InDoubtBranch): WireInDoubt {
  return {
    participant: b.participant,
    gtrid: b.gtrid,
    bqual: b.bqual,
    xid: `${b.gtrid}.${b.bqual}`,
    coordinatorId: b.coordinatorId,
    decision: b.decision,
    inFlight: b.inFlight,
    ...(b.ageMs !== undefined ? { ageMs: b.ageMs } : {}),
  };
}

/** Admin routes: `GET /v1/in-doubt` and `POST /v1/in-doubt/:xid/resolve`. */
export function inDoubtRoutes(app: FastifyInstance, deps: RouteDeps): void {
  app.get<{ Reply: InDoubtAnswer }>(
    '/v1/in-doubt',
    {
      config: { access: 'admin' },
      schema: {
        tags: ['admin'],
        summary: 'Prepared txcoord branches in every participant, and the participants that could not be scanned',
        querystring: noQuery,
        response: { 200: inDoubtAnswer, ...errorResponses(400, 401, 403, 500, 503) },
      },
    },
    async () => {
      const scan = await deps.scanner.scan(0);
      return {
        branches: scan.branches.map(toWireInDoubt),
        failures: scan.failures.map((f) => ({ participant: f.participant, code: f.code, message: deps.scrub(f.message) })),
      };
    },
  );

  app.post<{ Params: { xid: string }; Body: ResolveRequest; Reply: ResolveAnswer }>(
    '/v1/in-doubt/:xid/resolve',
    {
      config: { access: 'admin' },
      schema: {
        tags: ['admin'],
        summary: 'Resolve an in-doubt branch (or every branch of a gtrid) by hand; recorded as a heuristic decision',
        description: 'Refused with 409 TXC_RESOLVE_REFUSED when the outcome contradicts the decision log, unless force is true.',
        params: xidParams,
        body: resolveRequest,
        querystring: noQuery,
        response: { 200: resolveAnswer, ...errorResponses(400, 401, 403, 404, 409, 413, 415, 500, 503) },
      },
    },
    async (req) => {
      const { outcome, force } = req.body;
      try {
        const answer = await deps.coord.resolve(req.params.xid, outcome, force !== undefined ? { force } : {});
        // An operator overrode the protocol: leave a trace naming which token did it.
        req.log.warn({ xid: req.params.xid, outcome, force: force === true, logDecision: answer.logDecision, resolved: answer.resolved, tokenId: tokenIdOf(req.headers.authorization) }, 'in-doubt branch resolved by hand');
        return answer;
      } finally {
        deps.scanner.invalidate();
      }
    },
  );
}
