import type { ExecuteAnswer, ExecuteRequest, Json } from '../../client/wire-types.js';
import type { Coordinator, QueryOptions } from '../../coordinator/types.js';
import { badRequest } from './bad-request.js';
import type { StatementCall, StatementCatalog } from './statement-catalog.js';
import { toWireJson } from './to-wire-json.js';

interface PlannedStep {
  readonly participant: string;
  readonly call: StatementCall;
  readonly options?: QueryOptions;
}

/**
 * Resolves every step before the transaction starts, so a wrong statement name or parameter is
 * a 400 with nothing begun rather than a rollback halfway through.
 */
function plan(request: ExecuteRequest, catalog: StatementCatalog): PlannedStep[] {
  return request.steps.map((step, i) => {
    const field = `steps[${i}]`;
    const profile = catalog.profile(step.participant);
    if (!profile) throw badRequest(`${field}.participant`, `names no participant (configured: ${catalog.participantNames().join(', ')})`, 'TXC_PARTICIPANT_UNKNOWN');
    if (profile.kind === 'compensation-only') {
      throw badRequest(`${field}.participant`, `is an HTTP service, which takes no statements: call it in a saga (POST /v1/sagas)`);
    }
    const resolved = catalog.resolve(step.participant, step.statement, step.params, field);
    // Only a participant that cannot prepare needs its compensation (when the coordinator ends
    // up in saga mode); a prepared branch is simply rolled back. `false`: it needs no undo.
    const compensate = profile.kind === 'one-phase' ? resolved.compensate : undefined;
    return { participant: step.participant, call: resolved.action, ...(compensate !== undefined ? { options: { compensate } } : {}) };
  });
}

/**
 * `POST /v1/transactions/execute`: runs the named statements in order inside one
 * `coord.transaction`, which picks the protocol (2PC, last resource, saga) from the participants
 * written and `request.mode`. Rejects with the coordinator's error when it rolls back.
 */
export async function executeSteps(coord: Coordinator, catalog: StatementCatalog, request: ExecuteRequest): Promise<ExecuteAnswer> {
  const steps = plan(request, catalog);
  const result = await coord.transaction(
    async (tx) => {
      const results: { rowCount: number; rows: Record<string, Json>[] }[] = [];
      for (const s of steps) {
        const r = await tx.query(s.participant, s.call.sql, s.call.params, s.options);
        results.push({ rowCount: r.rowCount, rows: r.rows.map((row) => toWireJson(row) as Record<string, Json>) });
      }
      return results;
    },
    { ...(request.mode ? { mode: request.mode } : {}), ...(request.meta ? { meta: request.meta } : {}) },
  );
  return { id: result.id, outcome: result.outcome, mode: result.mode, guarantee: result.guarantee, results: result.value };
}
