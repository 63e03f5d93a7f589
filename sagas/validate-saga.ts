import { TxcError } from '../coordinator/errors.js';
import type { Runtime } from '../coordinator/runtime.js';
import type { SagaOperation } from '../log/log-record.js';

const STEP_NAME = /^[A-Za-z0-9_.-]{1,64}$/;

interface StepShape {
  readonly name: string;
  readonly participant?: string;
  readonly after?: readonly string[];
  readonly action?: SagaOperation;
  readonly compensate?: SagaOperation | readonly SagaOperation[];
}

function bad(where: string, fact: string): TxcError {
  return new TxcError('TXC_USAGE', `${where}: ${fact}`);
}

function checkOperation(rt: Runtime, where: string, participant: string, op: unknown): void {
  if (typeof op !== 'object' || op === null) throw bad(where, 'must be { path, body } or { sql, params }');
  const p = rt.participants.get(participant);
  if ('path' in op) {
    if (typeof op.path !== 'string' || !op.path.startsWith('/')) throw bad(where, 'path must be a string starting with /');
    if (!p?.invoke) throw bad(where, `participant ${participant} is not an HTTP service; give { sql, params }`);
  } else if ('sql' in op) {
    if (typeof op.sql !== 'string' || op.sql.length === 0) throw bad(where, 'sql must be a non-empty string');
    if (!p?.beginLocal) throw bad(where, `participant ${participant} runs no SQL; give { path, body }`);
  } else throw bad(where, 'must be { path, body } or { sql, params }');
}

/**
 * Checks a saga's steps before anything runs: unique valid names, configured participants of
 * the right kind for each operation, `after` naming earlier-defined steps (so no cycles).
 */
export function validateSagaSteps(rt: Runtime, steps: readonly StepShape[], api: string): void {
  if (!Array.isArray(steps) || steps.length === 0) throw bad(api, 'steps must be a non-empty array');
  const seen = new Set<string>();
  for (const [i, s] of steps.entries()) {
    const where = `${api} step ${i} (${JSON.stringify(s?.name)})`;
    if (typeof s?.name !== 'string' || !STEP_NAME.test(s.name)) throw bad(where, 'name must be 1-64 of A-Z a-z 0-9 _ . -');
    if (seen.has(s.name)) throw bad(where, 'name is used twice');
    if (s.participant !== undefined && !rt.participants.has(s.participant)) {
      throw new TxcError('TXC_PARTICIPANT_UNKNOWN', `${where}: participant '${s.participant}' is not configured`, { details: { participant: s.participant } });
    }
    for (const d of s.after ?? []) if (!seen.has(d)) throw bad(where, `after names '${d}', which is not an earlier step`);
    if (api === 'saga') {
      if (s.participant === undefined) throw bad(where, 'needs a participant');
      checkOperation(rt, `${where} action`, s.participant, s.action);
      const comps = s.compensate === undefined ? [] : Array.isArray(s.compensate) ? s.compensate : [s.compensate];
      for (const c of comps) checkOperation(rt, `${where} compensate`, s.participant, c);
    }
    seen.add(s.name);
  }
}
