import { backoffDelay } from '../coordinator/backoff.js';
import { sleep } from '../coordinator/clock.js';
import { TxcError } from '../coordinator/errors.js';
import type { Runtime } from '../coordinator/runtime.js';

/** Whether a step operation that failed with `err` may be tried again (it is idempotent by key or barrier). */
export function isTransient(err: unknown): boolean {
  if (!TxcError.is(err)) return false;
  return err.retryable || err.code === 'TXC_OUTCOME_UNKNOWN' || err.code === 'TXC_POOL_TIMEOUT' || err.code === 'TXC_PARTICIPANT_UNAVAILABLE';
}

/** Limits of one retry loop. */
export interface RetryLimits {
  /** Stop when this aborts (coordinator closing): the rejection is TXC_COORDINATOR_CLOSED. */
  readonly signal: AbortSignal;
  /** Stop past this time (ms since epoch) with TXC_STEP_TIMEOUT. */
  readonly deadlineAt?: number;
  /** Called before each retry (metrics). */
  readonly onRetry?: (attempt: number, err: unknown) => void;
}

/**
 * Runs `attempt` until it succeeds, retrying transient failures with the participant's
 * backoff (jittered, capped). A failure that is not transient is thrown at once.
 */
export async function retryStep<T>(rt: Runtime, participant: string | undefined, attempt: (signal: AbortSignal) => Promise<T>, limits: RetryLimits): Promise<T> {
  const backoff = rt.backoffFor(participant);
  for (let n = 0; ; n++) {
    if (limits.signal.aborted) throw new TxcError('TXC_COORDINATOR_CLOSED', 'The coordinator closed while a saga step was being retried; recovery resumes it');
    const left = limits.deadlineAt === undefined ? undefined : limits.deadlineAt - rt.clock.now();
    if (left !== undefined && left <= 0) throw new TxcError('TXC_STEP_TIMEOUT', 'The step ran past its deadline', { retryable: false });
    // The injected clock, not AbortSignal.timeout, so deadlines are testable deterministically.
    const deadline = new AbortController();
    const cancel = left === undefined ? undefined : rt.clock.setTimeout(() => deadline.abort(new TxcError('TXC_STEP_TIMEOUT', 'The step ran past its deadline')), left);
    const signal = AbortSignal.any([limits.signal, deadline.signal]);
    try {
      return await attempt(signal);
    } catch (err) {
      if (!isTransient(err) && !deadline.signal.aborted) throw err;
      limits.onRetry?.(n, err);
      await sleep(rt.clock, backoffDelay(n, backoff, rt.random), limits.signal);
    } finally {
      cancel?.();
    }
  }
}
