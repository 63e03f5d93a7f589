import { TxcError } from '../coordinator/errors.js';
import { acquireWithTimeout } from './acquire-with-timeout.js';
import type { DriverDetails } from './branch-errors.js';

/** How {@link PooledSessions} talks to one driver's pool. */
export interface PooledSessionsOptions<S, C> {
  /** Participant name, for errors. */
  readonly participant: string;
  readonly acquireTimeoutMs: number;
  /** Asks the pool for a session. */
  connect(): Promise<S>;
  /** Gives a session back; `discard` when it must not be reused (its socket or state is unknown). */
  giveBack(session: S, discard: boolean): void;
  /** Classifies a driver error by its codes. */
  classify(err: unknown): C;
  /** Whether a failure leaves the session unfit for reuse. */
  discards(c: C): boolean;
  /** The fields of a classification worth reporting. */
  fields(c: C): DriverDetails;
  /** A more precise error than "unavailable" for a failed operation, where there is one. */
  refine?(operation: string, err: unknown, c: C): TxcError | undefined;
}

/**
 * A participant's short-lived pooled sessions (pre-flight checks, recovery scans, phase two by
 * xid, bookkeeping): checkout with a deadline, give back or discard after use, and driver
 * failures reported as TXC_PARTICIPANT_UNAVAILABLE naming the operation.
 */
export class PooledSessions<S, C extends { readonly retryable: boolean }> {
  private closed = false;

  constructor(private readonly opts: PooledSessionsOptions<S, C>) {}

  /** Refuses checkouts from now on; the participant ends its pool itself. */
  close(): void {
    this.closed = true;
  }

  /** A pooled session, or TXC_POOL_TIMEOUT after acquireTimeoutMs (no driver gives a classifiable deadline). */
  acquire(): Promise<S> {
    const { participant } = this.opts;
    if (this.closed) {
      return Promise.reject(new TxcError('TXC_PARTICIPANT_UNAVAILABLE', `Participant ${participant} is closed`, { details: { participant } }));
    }
    return acquireWithTimeout<S>({
      participant,
      acquireTimeoutMs: this.opts.acquireTimeoutMs,
      connect: () => this.opts.connect(),
      giveBack: (late) => this.opts.giveBack(late, false),
      onError: (err) => this.unavailable('could not connect', err, this.opts.classify(err)),
    });
  }

  /**
   * Runs `operation` on a pooled session and gives it back. A TxcError from `fn` passes through
   * as it is; a driver error becomes TXC_PARTICIPANT_UNAVAILABLE (or the refined error).
   */
  async use<T>(operation: string, fn: (session: S) => Promise<T>): Promise<T> {
    const session = await this.acquire();
    let result: T;
    try {
      result = await fn(session);
    } catch (err) {
      if (TxcError.is(err)) {
        this.opts.giveBack(session, false);
        throw err;
      }
      const c = this.opts.classify(err);
      this.opts.giveBack(session, this.opts.discards(c));
      throw this.opts.refine?.(operation, err, c) ?? this.unavailable(`${operation} failed`, err, c);
    }
    this.opts.giveBack(session, false);
    return result;
  }

  /** TXC_PARTICIPANT_UNAVAILABLE for a driver failure. */
  unavailable(why: string, err: unknown, c: C): TxcError {
    const { participant } = this.opts;
    return new TxcError('TXC_PARTICIPANT_UNAVAILABLE', `Participant ${participant}: ${why}`, {
      cause: err,
      retryable: c.retryable,
      details: { participant, ...this.opts.fields(c) },
    });
  }
}
