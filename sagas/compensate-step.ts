import type { Logger } from 'pino';
import { TxcError } from '../coordinator/errors.js';
import type { Runtime } from '../coordinator/runtime.js';
import type { QueryResult } from '../participants/participant.js';
import { runCompensation } from './barrier.js';
import { retryStep } from './retry-step.js';

/** Where a compensation runs. */
export interface CompensationTarget {
  readonly gtrid: string;
  readonly step: string;
  /** The participant it goes to (its backoff applies); none for a handler step without one. */
  readonly participant?: string;
  readonly signal: AbortSignal;
  readonly log: Logger;
}

/** How a compensation ended: done, null (the action never happened), or failed for good. */
export type CompensationOutcome = 'done' | 'null' | 'failed';

/** One attempt of a compensation: 'null' when it found the action had never happened. */
export type CompensationAttempt = (signal: AbortSignal) => Promise<'done' | 'null'>;

/** Statements of a compensation, run inside the barrier's local transaction. */
export type CompensationWork = (query: (sql: string, params?: readonly unknown[]) => Promise<QueryResult>) => Promise<void>;

/**
 * The attempt of a compensation on a database: `work` behind the barrier, on the participant's
 * finishing view (a breaker never refuses it). A repeat or a null compensation does nothing.
 */
export function barrierCompensation(rt: Runtime, participant: string, gtrid: string, step: string, work: CompensationWork): CompensationAttempt {
  return async () => {
    const p = rt.finishing.get(participant);
    if (!p) throw new TxcError('TXC_PARTICIPANT_UNKNOWN', `Saga ${gtrid} has a step on '${participant}', which is not configured`);
    return (await runCompensation(p, gtrid, step, work)) === 'null' ? 'null' : 'done';
  };
}

/**
 * Compensates one step, retrying transient failures with backoff until it succeeds (or the
 * coordinator closes: then it throws and recovery resumes), and records the outcome in the log.
 * A failure that can never succeed is logged and counted as a heuristic outcome and reported 'failed'.
 */
export async function compensateStep(rt: Runtime, t: CompensationTarget, attempt: CompensationAttempt): Promise<CompensationOutcome> {
  await rt.point('saga-before-compensate', { gtrid: t.gtrid, step: t.step });
  try {
    const outcome = await retryStep(rt, t.participant, attempt, {
      signal: t.signal,
      onRetry: (n, err) => {
        rt.stats.sagaRetries++;
        t.log.warn({ step: t.step, participant: t.participant, attempt: n, err }, 'compensation failed; retrying');
      },
    });
    await rt.log.append({ type: 'saga-step', gtrid: t.gtrid, step: t.step, op: 'compensate', phase: 'done', result: outcome, at: rt.clock.now() }, true);
    await rt.point('saga-after-compensate', { gtrid: t.gtrid, step: t.step });
    return outcome;
  } catch (err) {
    if (TxcError.is(err, 'TXC_COORDINATOR_CLOSED')) throw err;
    rt.stats.heuristic++;
    t.log.error({ step: t.step, participant: t.participant, err }, 'heuristic outcome: a compensation can never succeed; repair this step by hand');
    const error = { code: TxcError.is(err) ? err.code : 'TXC_COMPENSATION_FAILED', message: err instanceof Error ? err.message : String(err) };
    await rt.log.append({ type: 'saga-step', gtrid: t.gtrid, step: t.step, op: 'compensate', phase: 'failed', error, at: rt.clock.now() }, true);
    return 'failed';
  }
}
