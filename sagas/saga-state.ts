import type { JsonValue, LogRecord, SagaRecord } from '../log/log-record.js';

/** One step's progress, rebuilt from the log or kept while running. */
export interface StepState {
  action: 'not-run' | 'intent' | 'done' | 'failed';
  /** The action may have happened although it did not report success (timeout, crash). */
  possiblyDone: boolean;
  compensation: 'none' | 'done' | 'null' | 'failed';
  result?: JsonValue;
  error?: { code: string; message: string };
  /** Order in which intents were recorded (compensation runs in reverse). */
  order: number;
}

/** A saga's progress. */
export interface SagaState {
  readonly record: SagaRecord;
  readonly steps: Map<string, StepState>;
  /** Going back: some step failed, or compensation had started. */
  backward: boolean;
  /** The failure that turned the saga back. */
  error?: { code: string; message: string; step?: string };
}

/** A fresh state for a saga about to start. */
export function newSagaState(record: SagaRecord, stepNames: readonly string[]): SagaState {
  const steps = new Map<string, StepState>();
  for (const n of stepNames) steps.set(n, { action: 'not-run', possiblyDone: false, compensation: 'none', order: Number.MAX_SAFE_INTEGER });
  return { record, steps, backward: false };
}

/** Rebuilds a saga's state from its live records (recovery in any process). */
export function sagaStateFrom(record: SagaRecord, stepNames: readonly string[], records: readonly LogRecord[]): SagaState {
  const state = newSagaState(record, stepNames);
  let order = 0;
  for (const r of records) {
    if (r.type !== 'saga-step' || r.gtrid !== record.gtrid) continue;
    const s = state.steps.get(r.step);
    if (!s) continue;
    if (r.op === 'action') {
      if (r.phase === 'intent') {
        if (s.action === 'not-run') s.order = order++;
        s.action = 'intent';
        s.possiblyDone = true;
      } else if (r.phase === 'done') {
        s.action = 'done';
        s.possiblyDone = true;
        if (r.result !== undefined) s.result = r.result;
      } else {
        s.action = 'failed';
        // A timeout may have left the action done; a refusal did nothing.
        s.possiblyDone = r.error?.code === 'TXC_STEP_TIMEOUT';
        if (r.error) s.error = r.error;
        state.backward = true;
        state.error ??= { ...(r.error ?? { code: 'TXC_STEP_REJECTED', message: 'step failed' }), step: r.step };
      }
    } else {
      state.backward = true;
      if (r.phase === 'done') s.compensation = r.result === 'null' ? 'null' : 'done';
      else if (r.phase === 'failed') s.compensation = 'failed';
    }
  }
  return state;
}
