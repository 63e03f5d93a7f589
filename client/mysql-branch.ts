import { TxcError, type TxcErrorDetails } from '../coordinator/errors.js';
import { toMysqlXid } from '../coordinator/xid.js';
import { classifyMysqlError, type MysqlErrorClass } from '../participants/mysql/errors.js';
import type { BranchHandle, BranchQueryResult } from './branch-handle.js';
import { closeMysqlSession, type MysqlSession } from './close-mysql-session.js';
import { SerialQueue } from '../participants/serial-queue.js';
import type { WireBranch } from './wire-types.js';
import { assertBranchDriver, xidOfBranch } from './xid-of-branch.js';

/**
 * The slice of a mysql2/promise `Connection` / `PoolConnection` the helper uses (both satisfy
 * it). XA statements always go through `query()`: the prepared-statement protocol of
 * `execute()` rejects them.
 */
export interface MysqlBranchConnection extends MysqlSession {
  /** Resolves to `[rows | ResultSetHeader, fields]`. */
  query(sql: string, values?: unknown[]): Promise<[unknown, unknown]>;
}

/** Options of {@link mysqlBranch}. */
export interface MysqlBranchOptions {
  /**
   * After XA PREPARE, how long prepare() waits for the server to close the session before
   * resolving anyway. Default 2 000 ms.
   */
  readonly closeWaitMs?: number;
}

/** A MySQL / MariaDB branch run on the application's own connection. */
export interface MysqlBranch extends BranchHandle {
  /** Runs one statement (text protocol) in the XA branch. Failures are TXC_QUERY_FAILED with the mysql2 error as `cause`. */
  query<R extends Record<string, unknown> = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<BranchQueryResult<R>>;
  /**
   * XA END, XA PREPARE, then closes the connection: `destroy()` for a PoolConnection (never
   * `release()`, and not `end()`, which on a mysql2 PoolConnection releases it into the pool),
   * `end()` for a plain Connection. The session must go because MariaDB (and MySQL with
   * `xa_detach_on_prepare=OFF`) only lets the preparing session finish a prepared branch while
   * it is connected: the coordinator's XA COMMIT from its own connection would fail with
   * XAER_NOTA, and a pooled session holding a prepared XA branch would refuse every other
   * statement for whoever got it next. The connection is closed on failure too (that rolls an
   * unprepared branch back); after prepare() settles, do not use it again.
   */
  prepare(): Promise<void>;
}

type State = 'active' | 'preparing' | 'prepared' | 'rolled-back' | 'in-doubt';

const DEFAULT_CLOSE_WAIT_MS = 2_000;

/**
 * Starts the branch on `conn` (XA START) and returns the helper that runs it. The connection
 * must not be inside a transaction; statements may go through the helper or straight through
 * the connection until prepare() or rollback().
 */
export async function mysqlBranch(conn: MysqlBranchConnection, branch: WireBranch, options: MysqlBranchOptions = {}): Promise<MysqlBranch> {
  assertBranchDriver(branch, ['mysql'], 'mysqlBranch');
  // Spliced into the XA statements (no bind parameter possible): only a validated xid gets there.
  const xa = toMysqlXid(xidOfBranch(branch));
  const details = { participant: branch.participant };
  if (typeof conn?.query !== 'function' || typeof (conn as { getConnection?: unknown }).getConnection === 'function') {
    throw new TxcError('TXC_BAD_REQUEST', 'mysqlBranch needs a mysql2/promise connection (from createConnection or pool.getConnection()), not a pool', { details });
  }
  const closeWaitMs = options.closeWaitMs ?? DEFAULT_CLOSE_WAIT_MS;
  if (typeof closeWaitMs !== 'number' || !Number.isFinite(closeWaitMs) || closeWaitMs < 0) {
    throw new TxcError('TXC_BAD_REQUEST', `mysqlBranch: closeWaitMs must be a number of milliseconds >= 0, not ${String(closeWaitMs)}`, { details });
  }
  try {
    await conn.query(`XA START ${xa}`);
  } catch (err) {
    // Nothing started (XAER_OUTSIDE: the session is inside a local transaction; or no connection).
    const c = classifyMysqlError(err);
    throw new TxcError('TXC_QUERY_FAILED', `XA START failed on participant ${branch.participant}`, { cause: err, retryable: c.retryable, details: mysqlDetails(branch, c) });
  }
  return new MysqlClientBranch(conn, branch, xa, closeWaitMs);
}

class MysqlClientBranch implements MysqlBranch {
  private state: State = 'active';
  private readonly queue = new SerialQueue();

  constructor(
    private readonly conn: MysqlBranchConnection,
    readonly branch: WireBranch,
    private readonly xa: string,
    private readonly closeWaitMs: number,
  ) {}

  query<R extends Record<string, unknown> = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<BranchQueryResult<R>> {
    return this.queue.run(async () => {
      if (this.state !== 'active') throw this.closed();
      let result: unknown;
      try {
        [result] = await this.conn.query(sql, params === undefined ? undefined : [...params]);
      } catch (err) {
        const c = classifyMysqlError(err);
        throw new TxcError('TXC_QUERY_FAILED', `A statement failed on participant ${this.branch.participant}`, {
          cause: err,
          retryable: c.retryable,
          details: mysqlDetails(this.branch, c),
        });
      }
      return normalize(result) as BranchQueryResult<R>;
    });
  }

  prepare(): Promise<void> {
    return this.queue.run(async () => {
      if (this.state === 'prepared') return;
      if (this.state !== 'active') throw this.prepareFailed(`the branch is ${this.state}`, false);
      this.state = 'preparing';
      try {
        await this.conn.query(`XA END ${this.xa}`);
      } catch (err) {
        // Not prepared for sure: a deadlock or XA_RB* rolled the branch back, or the session is
        // gone (which rolls it back). Closing the connection settles whatever is left.
        const c = classifyMysqlError(err);
        await this.abandon(c.kind !== 'connection');
        throw this.prepareFailed('XA END failed, so the work was rolled back', c.retryable, err, c);
      }
      try {
        await this.conn.query(`XA PREPARE ${this.xa}`);
      } catch (err) {
        const c = classifyMysqlError(err);
        if (c.kind === 'connection') {
          // XA PREPARE may have run before the connection died; the server's abort rolls it back by xid.
          this.state = 'in-doubt';
          await closeMysqlSession(this.conn, 0);
          throw this.prepareFailed('the connection broke during XA PREPARE, so the branch may be prepared: abort the transaction', true, err, c, true);
        }
        await this.abandon(true);
        throw this.prepareFailed('the database refused XA PREPARE and the work was rolled back', c.retryable, err, c);
      }
      this.state = 'prepared';
      // Wait for the server's side of the close so the coordinator's XA COMMIT, sent next, finds
      // the branch detached (on MariaDB an attached one answers XAER_NOTA).
      await closeMysqlSession(this.conn, this.closeWaitMs);
    });
  }

  rollback(): Promise<void> {
    return this.queue.run(async () => {
      if (this.state !== 'active') return;
      try {
        await this.conn.query(`XA END ${this.xa}`);
      } catch (err) {
        // XA_RB* (already rolled back, still IDLE) needs the XA ROLLBACK below; a lost session needs nothing.
        if (classifyMysqlError(err).kind === 'connection') return this.abandon(false);
      }
      try {
        await this.conn.query(`XA ROLLBACK ${this.xa}`);
        this.state = 'rolled-back';
      } catch {
        // Ending the session rolls back an unprepared XA branch: the connection is the price.
        await this.abandon(false);
      }
    });
  }

  /** Rolls back (when the session can still take statements) and closes the connection. */
  private async abandon(sendRollback: boolean): Promise<void> {
    this.state = 'rolled-back';
    if (sendRollback) {
      try {
        await this.conn.query(`XA ROLLBACK ${this.xa}`);
      } catch {
        // Closing the session below rolls an unprepared branch back anyway.
      }
    }
    await closeMysqlSession(this.conn, 0);
  }

  private closed(): TxcError {
    return new TxcError('TXC_TRANSACTION_CLOSED', `The branch of participant ${this.branch.participant} is ${this.state}`, {
      details: { participant: this.branch.participant },
    });
  }

  private prepareFailed(why: string, retryable: boolean, cause?: unknown, c?: MysqlErrorClass, inDoubt = false): TxcError {
    return new TxcError('TXC_PREPARE_FAILED', `Participant ${this.branch.participant} did not prepare branch ${this.branch.gtrid}.${this.branch.bqual}: ${why}`, {
      cause,
      retryable,
      details: { ...mysqlDetails(this.branch, c), ...(inDoubt ? { inDoubt } : {}) },
    });
  }
}

function mysqlDetails(branch: WireBranch, c?: MysqlErrorClass): TxcErrorDetails {
  return { participant: branch.participant, errno: c?.errno, code: c?.code };
}

function isOkPacket(value: unknown): value is { affectedRows: number } {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && typeof (value as { affectedRows?: unknown }).affectedRows === 'number';
}

/** mysql2's answer as rows and a count; for several result sets (CALL, multi statements), the first row set. */
function normalize(result: unknown): BranchQueryResult {
  if (isOkPacket(result)) return { rows: [], rowCount: result.affectedRows };
  if (!Array.isArray(result)) return { rows: [], rowCount: 0 };
  if (result.some((r) => Array.isArray(r) || isOkPacket(r))) {
    const rows = (result.find((r): r is Record<string, unknown>[] => Array.isArray(r)) ?? []) as Record<string, unknown>[];
    return { rows, rowCount: rows.length };
  }
  return { rows: result as Record<string, unknown>[], rowCount: result.length };
}
