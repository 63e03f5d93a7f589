import CircuitBreaker from 'opossum';
import type { Logger } from 'pino';
import type { BreakerConfig } from '../participants/participant-config.js';
import { TxcError } from './errors.js';

/** A breaker's state, as stats and metrics report it. */
export type BreakerState = 'closed' | 'open' | 'half-open' | 'disabled';

// Only failures that say "the participant is not answering" open the breaker; a refusal
// (constraint violation, 409 from a service) is the participant working correctly.
const UNAVAILABLE = new Set(['TXC_PARTICIPANT_UNAVAILABLE', 'TXC_POOL_TIMEOUT', 'TXC_PREPARE_TIMEOUT', 'TXC_OUTCOME_UNKNOWN', 'TXC_STEP_TIMEOUT']);

/** Whether `err` counts against the participant's availability. */
export function countsAsUnavailable(err: unknown): boolean {
  if (!TxcError.is(err)) return true;
  return UNAVAILABLE.has(err.code) || (err.code === 'TXC_QUERY_FAILED' && err.retryable && err.details['kind'] === 'connection');
}

/**
 * One participant's circuit breaker (opossum) around the calls that start or finish work on it.
 * While it is open, calls that start new work (begin, prepare, a saga action) fail at once with a
 * retryable TXC_PARTICIPANT_UNAVAILABLE. Calls that finish work already decided or done (commits,
 * compensations, recovery) are never refused: they go straight to the participant on their own
 * backoff, and the first one that succeeds closes the breaker, since it proves the participant
 * is back. So the breaker sheds new load, and never delays or drops finishing work.
 */
export class ParticipantBreaker {
  private readonly breaker: CircuitBreaker<[() => Promise<unknown>], unknown> | undefined;
  /** Times the breaker opened. */
  opened = 0;

  constructor(
    readonly participant: string,
    config: BreakerConfig | undefined,
    logger: Logger,
  ) {
    if (config?.enabled === false) return;
    this.breaker = new CircuitBreaker((fn: () => Promise<unknown>) => fn(), {
      // Deadlines belong to the protocol (prepare timeout, query timeout), not to the breaker.
      timeout: false,
      errorThresholdPercentage: config?.errorThresholdPercentage ?? 50,
      volumeThreshold: config?.volumeThreshold ?? 5,
      resetTimeout: config?.resetTimeoutMs ?? 10_000,
      rollingCountTimeout: config?.rollingCountTimeoutMs ?? 10_000,
      // errorFilter returning true means "a success for the breaker's statistics".
      errorFilter: (err: unknown) => !countsAsUnavailable(err),
      name: participant,
      // Only the state is used. With percentiles on, opossum keeps every call's latency for the
      // rolling window and concatenates and sorts them all on each failure: CPU spent per call,
      // and most of it exactly when a participant starts failing under load.
      rollingPercentilesEnabled: false,
      enableSnapshots: false,
    });
    this.breaker.on('open', () => {
      this.opened++;
      logger.warn({ participant, breaker: 'open' }, 'circuit breaker opened: new work on this participant fails fast');
    });
    this.breaker.on('halfOpen', () => logger.info({ participant, breaker: 'half-open' }, 'circuit breaker half-open: trying one call'));
    this.breaker.on('close', () => logger.info({ participant, breaker: 'closed' }, 'circuit breaker closed'));
  }

  /** Current state. */
  get state(): BreakerState {
    const b = this.breaker;
    if (!b) return 'disabled';
    if (b.opened) return 'open';
    return b.halfOpen ? 'half-open' : 'closed';
  }

  /**
   * Runs `fn` through the breaker. `finishing` work is counted while the breaker is closed, and
   * run directly (closing the breaker on success) while it is open or half-open.
   */
  async run<T>(op: string, fn: () => Promise<T>, finishing = false): Promise<T> {
    const b = this.breaker;
    if (!b) return fn();
    if (finishing && !b.closed) {
      const value = await fn();
      if (!b.closed) b.close();
      return value;
    }
    try {
      return (await b.fire(fn)) as T;
    } catch (err) {
      if ((err as { code?: unknown }).code === 'EOPENBREAKER') {
        throw new TxcError('TXC_PARTICIPANT_UNAVAILABLE', `Participant ${this.participant} is failing, so its circuit breaker is open and ${op} was not attempted`, {
          retryable: true,
          details: { participant: this.participant, breaker: 'open', operation: op },
        });
      }
      throw err;
    }
  }

  /** Stops the breaker's timers. */
  shutdown(): void {
    this.breaker?.shutdown();
  }
}
