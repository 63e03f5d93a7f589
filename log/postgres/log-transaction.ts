import { TxcError } from '../../coordinator/errors.js';
import { IdentityLostError } from './log-identity.js';
import { isConnectionLost } from './pg-error-kind.js';
import type { LogClient, LogPool } from './log-pool.js';
import { xactOutcome } from './xact-outcome.js';

/** Whether a failed transaction's writes may be in the database. */
export type Durability = 'not-written' | 'unknown';

/**
 * A transaction that failed, with what is known of its writes. `not-written`: it certainly did
 * not commit (failure before COMMIT was sent, or the server said it aborted). `unknown`: the
 * COMMIT was sent, its answer lost, and the server could not be asked in time; `txid` lets a
 * later check settle it.
 */
export class LogTransactionError extends Error {
  constructor(
    readonly durability: Durability,
    override readonly cause: unknown,
    readonly txid?: string,
  ) {
    super(durability === 'unknown' ? 'the COMMIT answer was lost and its outcome is unknown' : 'the transaction did not commit', { cause });
    this.name = 'LogTransactionError';
  }
}

/** Options of {@link logTransaction}. */
export interface LogTransactionOptions {
  /**
   * `off` for batches of unforced records only: the commit does not wait for the WAL flush,
   * which is exactly "buffered". `on` where the server default is off but a record is forced.
   * Undefined keeps the server's setting.
   */
  readonly synchronousCommit?: 'on' | 'off';
  /** How long to ask the server about a lost COMMIT before answering 'unknown'. */
  readonly commitCheckMs: number;
}

/** What {@link logTransaction} hands the body: the connection and the transaction id. */
export interface LogTransactionScope {
  readonly client: LogClient;
  readonly txid: string;
}

/**
 * Runs `body` in one transaction and commits it. A lost COMMIT answer (connection dropped while
 * committing) is settled by asking the server about the transaction id on another connection: a
 * committed transaction returns normally, an aborted one throws `not-written`, and only when the
 * server cannot be reached in time does it throw `unknown`. Any failure before COMMIT is
 * `not-written`: without a COMMIT the server never makes the writes visible.
 */
export async function logTransaction<T>(pool: LogPool, body: (scope: LogTransactionScope) => Promise<T>, opts: LogTransactionOptions): Promise<T> {
  let client: LogClient;
  try {
    client = await pool.connect();
  } catch (cause) {
    throw new LogTransactionError('not-written', cause);
  }
  let broken = false;
  let txid: string | undefined;
  let result: T;
  try {
    // One round trip: BEGIN, SET LOCAL and the xid (assigned now rather than at the first
    // write, so that a lost COMMIT can be asked about) as one simple query of constant text.
    const sync = opts.synchronousCommit === 'off' ? 'SET LOCAL synchronous_commit TO off; ' : opts.synchronousCommit === 'on' ? 'SET LOCAL synchronous_commit TO on; ' : '';
    const first = await client.query<{ txid: string }>(`BEGIN; ${sync}SELECT pg_current_xact_id()::text AS txid`);
    txid = first.rows[0]?.txid;
    if (txid === undefined) throw new Error('pg_current_xact_id() returned no row');
    result = await body({ client, txid });
  } catch (cause) {
    // The body's own refusals (fencing, a locked id) leave a healthy connection: roll back on it.
    broken = !(cause instanceof IdentityLostError || TxcError.is(cause)) && isConnectionLost(cause);
    if (!broken) {
      try {
        await client.query('ROLLBACK');
      } catch {
        broken = true;
      }
    }
    client.release(broken);
    throw new LogTransactionError('not-written', cause);
  }
  let commitError: unknown;
  try {
    const res = await client.query('COMMIT');
    // PostgreSQL answers COMMIT of a transaction that failed inside with the tag ROLLBACK.
    if (res.command !== 'COMMIT') {
      client.release();
      throw new LogTransactionError('not-written', new Error(`COMMIT answered ${res.command}`));
    }
    client.release();
    return result;
  } catch (err) {
    if (err instanceof LogTransactionError) throw err;
    commitError = err;
  }
  // The COMMIT was sent and no answer came back: the session is unusable, the outcome unknown.
  client.release(true);
  const outcome = await xactOutcome(pool, txid, { budgetMs: opts.commitCheckMs });
  if (outcome === 'committed') return result;
  throw new LogTransactionError(outcome === 'aborted' ? 'not-written' : 'unknown', commitError, txid);
}
