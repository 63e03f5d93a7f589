import type { Logger } from 'pino';
import { TxcError } from '../coordinator/errors.js';
import { assertOwned } from '../coordinator/ownership.js';
import type { Runtime } from '../coordinator/runtime.js';
import type { JsonValue } from '../log/log-record.js';
import { barrierCompensation, compensateStep } from './compensate-step.js';
import { retryStep } from './retry-step.js';
import type { PlanStep } from './saga-plan.js';
import type { SagaState, StepState } from './saga-state.js';
import type { SagaResult, SagaStepOutcome } from './saga-types.js';

function errorOf(err: unknown): { code: string; message: string } {
  return { code: TxcError.is(err) ? err.code : 'TXC_STEP_REJECTED', message: err instanceof Error ? err.message : String(err) };
}

function resultsOf(state: SagaState): Record<string, JsonValue | undefined> {
  const out: Record<string, JsonValue | undefined> = {};
  for (const [name, s] of state.steps) if (s.action === 'done') out[name] = s.result;
  return out;
}

/**
 * Drives a saga to its end from whatever state it is in: forward, running every step whose
 * prerequisites are done (independent steps in parallel), until all are done or one fails; then
 * backward, compensating every step that did or may have happened, in reverse order. Each
 * step's intent is forced to the log before its action runs, and its result after.
 */
export async function runSaga(rt: Runtime, plan: readonly PlanStep[], state: SagaState, signal: AbortSignal, log: Logger): Promise<SagaResult> {
  const gtrid = state.record.gtrid;
  const deadlineAt = state.record.deadlineAt;
  if (!state.backward && deadlineAt !== undefined && rt.clock.now() >= deadlineAt) {
    state.backward = true;
    state.error = { code: 'TXC_STEP_TIMEOUT', message: `Saga ${gtrid} ran past its deadline` };
  }
  let order = Math.max(0, ...[...state.steps.values()].filter((s) => s.order !== Number.MAX_SAFE_INTEGER).map((s) => s.order + 1));

  const runStep = async (step: PlanStep, s: StepState): Promise<void> => {
    assertOwned(rt, gtrid);
    if (s.action === 'not-run') {
      s.order = order++;
      await rt.log.append({ type: 'saga-step', gtrid, step: step.name, op: 'action', phase: 'intent', at: rt.clock.now() }, true);
      s.action = 'intent';
      s.possiblyDone = true;
    }
    await rt.point('saga-before-action', { gtrid, step: step.name });
    const stepDeadline = step.timeoutMs === undefined ? undefined : rt.clock.now() + step.timeoutMs;
    const until = [stepDeadline, deadlineAt].filter((x): x is number => x !== undefined);
    try {
      const result = await retryStep(rt, step.participant, (sig) => step.action(sig, resultsOf(state)), {
        signal,
        ...(until.length > 0 ? { deadlineAt: Math.min(...until) } : {}),
        onRetry: (attempt, err) => {
          rt.stats.sagaRetries++;
          log.warn({ step: step.name, attempt, err }, 'saga step failed; retrying');
        },
      });
      await rt.log.append({ type: 'saga-step', gtrid, step: step.name, op: 'action', phase: 'done', ...(result !== undefined ? { result } : {}), at: rt.clock.now() }, true);
      s.action = 'done';
      if (result !== undefined) s.result = result;
      await rt.point('saga-after-action', { gtrid, step: step.name });
    } catch (err) {
      if (TxcError.is(err, 'TXC_COORDINATOR_CLOSED')) throw err;
      const error = errorOf(err);
      await rt.log.append({ type: 'saga-step', gtrid, step: step.name, op: 'action', phase: 'failed', error, at: rt.clock.now() }, true);
      s.action = 'failed';
      s.possiblyDone = error.code === 'TXC_STEP_TIMEOUT';
      s.error = error;
      state.backward = true;
      state.error ??= { ...error, step: step.name };
      log.warn({ step: step.name, err }, 'saga step failed; the saga will compensate');
    }
  };

  // Forward.
  const running = new Map<string, Promise<void>>();
  while (!state.backward) {
    for (const step of plan) {
      const s = state.steps.get(step.name) as StepState;
      if (running.has(step.name) || s.action === 'done' || s.action === 'failed') continue;
      if (!step.after.every((d) => state.steps.get(d)?.action === 'done')) continue;
      running.set(step.name, runStep(step, s).finally(() => running.delete(step.name)));
    }
    if (running.size === 0) break;
    await Promise.race(running.values());
  }
  // Steps already running finish (or fail) before anything is undone.
  await Promise.all(running.values());

  let status: SagaResult['status'] = 'committed';
  if (state.backward) {
    status = 'compensated';
    const toUndo = plan
      .map((step) => ({ step, s: state.steps.get(step.name) as StepState }))
      .filter(({ s }) => (s.action === 'done' || s.possiblyDone) && s.compensation === 'none')
      .sort((a, b) => b.s.order - a.s.order);
    for (const { step, s } of toUndo) {
      assertOwned(rt, gtrid);
      const target = { gtrid, step: step.name, signal, log, ...(step.participant !== undefined ? { participant: step.participant } : {}) };
      if (step.barrierWork && step.participant) {
        const work = step.barrierWork(signal, s.result, resultsOf(state));
        s.compensation = await compensateStep(rt, target, barrierCompensation(rt, step.participant, gtrid, step.name, work));
      } else if (step.compensate) {
        const undo = step.compensate;
        s.compensation = await compensateStep(rt, target, (sig) => undo(sig, s.result, resultsOf(state)).then(() => 'done' as const));
      }
    }
    if ([...state.steps.values()].some((s) => s.compensation === 'failed')) status = 'failed';
  }
  await rt.log.append({ type: 'end', gtrid, at: rt.clock.now(), status }, true);
  rt.stats.sagas[status]++;
  log.info({ mode: 'saga', status, guarantee: 'compensating' }, `saga ${status}`);
  return {
    id: gtrid,
    mode: 'saga',
    status,
    guarantee: 'compensating',
    steps: plan.map((step): SagaStepOutcome => {
      const s = state.steps.get(step.name) as StepState;
      const action = s.action === 'done' ? 'done' : s.action === 'not-run' ? 'not-run' : s.possiblyDone ? 'unknown' : 'failed';
      const compensation = s.compensation === 'none' ? 'not-needed' : s.compensation;
      return {
        name: step.name,
        ...(step.participant !== undefined ? { participant: step.participant } : {}),
        action,
        compensation,
        ...(s.result !== undefined ? { result: s.result } : {}),
        ...(s.error ? { error: s.error } : {}),
      };
    }),
    ...(state.error ? { error: state.error } : {}),
  };
}
