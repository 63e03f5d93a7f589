import type { SagaView } from '../client/wire-types.js';
import type { SagaStepSpec } from '../log/log-record.js';
import type { SagaState } from './saga-state.js';
import type { SagaResult } from './saga-types.js';

/** The wire view of a finished saga. */
export function viewOf(r: SagaResult): SagaView {
  return { id: r.id, status: r.status, steps: r.steps.map((s) => ({ ...s })), ...(r.error ? { error: r.error } : {}) };
}

/** The wire view of a saga rebuilt from its records (running, or ended in another process). */
export function viewFromState(state: SagaState, endStatus: SagaResult['status'] | undefined, specs: readonly SagaStepSpec[] | undefined): SagaView {
  const running = endStatus === undefined;
  return {
    id: state.record.gtrid,
    status: endStatus ?? 'running',
    steps: [...state.steps].map(([name, s]) => {
      const action = s.action === 'done' ? 'done' : s.action === 'not-run' ? 'not-run' : s.action === 'intent' && running ? 'running' : s.possiblyDone ? 'unknown' : 'failed';
      const compensation = s.compensation === 'none' ? (state.backward && running && (s.action === 'done' || s.possiblyDone) ? 'pending' : 'not-needed') : s.compensation;
      const participant = specs?.find((x) => x.name === name)?.participant;
      return {
        name,
        ...(participant !== undefined ? { participant } : {}),
        action,
        compensation,
        ...(s.result !== undefined ? { result: s.result } : {}),
        ...(s.error ? { error: s.error } : {}),
      };
    }),
    ...(state.error ? { error: state.error } : {}),
  };
}
