import { TxcError } from '../coordinator/errors.js';

/** How {@link acquireWithTimeout} gets and gives back a connection. */
export interface AcquireOptions<C> {
  /** Participant name, for the error. */
  readonly participant: string;
  readonly acquireTimeoutMs: number;
  /** Asks the pool for a connection. */
  connect(): Promise<C>;
  /** Returns a connection that arrived after the deadline. */
  giveBack(connection: C): void;
  /** Turns the pool's own failure into the participant's error. */
  onError(err: unknown): TxcError;
}

/**
 * A pooled connection, or TXC_POOL_TIMEOUT after `acquireTimeoutMs`: neither pg-pool (whose
 * timeout error has no code) nor mysql2 (which waits forever) gives a classifiable deadline.
 */
export function acquireWithTimeout<C>(opts: AcquireOptions<C>): Promise<C> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const timer = setTimeout(() => {
      settled = true;
      reject(
        new TxcError('TXC_POOL_TIMEOUT', `Participant ${opts.participant} had no free connection within ${opts.acquireTimeoutMs} ms`, {
          retryable: true,
          details: { participant: opts.participant, acquireTimeoutMs: opts.acquireTimeoutMs },
        }),
      );
    }, opts.acquireTimeoutMs);
    opts.connect().then(
      (connection) => {
        if (settled) {
          opts.giveBack(connection); // arrived after we gave up: hand it straight back
          return;
        }
        settled = true;
        clearTimeout(timer);
        resolve(connection);
      },
      (err: unknown) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        reject(opts.onError(err));
      },
    );
  });
}
