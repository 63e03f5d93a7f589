import type { Logger } from 'pino';
import { TxcError } from '../../coordinator/errors.js';
import { xidKey, type Xid } from '../../coordinator/xid.js';
import type { BarrierRow, Branch, MarkerOutcome, PrepareResult, QueryResult, ResolveResult } from '../participant.js';
import { barrierRow, markerRow, type BookkeepingRow } from '../bookkeeping.js';
import { BranchErrors } from '../branch-errors.js';
import { insertOrRead } from '../insert-or-read.js';
import { SerialQueue } from '../serial-queue.js';
import type { MysqlConnection, MysqlOkPacket } from './driver.js';
import { classifyMysqlError, type MysqlErrorClass } from './errors.js';
import {
  BOOKKEEPING_ROWS,
  COMMIT,
  ROLLBACK,
  SERVER_STATUS_IN_TRANS,
  WRITE_COUNTERS,
  xaCommitOnePhaseSql,
  xaCommitSql,
  xaEndSql,
  xaPrepareSql,
  xaRollbackSql,
} from './sql.js';

/** What a branch needs from the participant that started it. */
export interface MysqlBranchHost {
  readonly name: string;
  readonly logger: Logger;
  /** Commits or rolls back a prepared branch from a fresh pooled connection. */
  resolve(xid: Xid, action: 'commit' | 'rollback'): Promise<ResolveResult>;
  /** Creates the bookkeeping tables if missing, from a pooled connection (DDL inside a transaction would commit it). */
  ensureBookkeeping(): Promise<void>;
}

type State =
  /** XA START (or, local, START TRANSACTION) done; statements run on the pinned connection. */
  | 'active'
  /** XA PREPARE done; the pinned connection (if still held) finishes it. */
  | 'prepared'
  /** The connection was lost during XA PREPARE: the branch may or may not be prepared. */
  | 'in-doubt'
  | 'finished';

type FailureBuilder = (why: string, retryable: boolean, cause?: unknown, c?: MysqlErrorClass) => TxcError;

// Statements that certainly count as writes; anything else may return rows while writing.
const PLAIN_DML = /^\s*(insert|update|delete|replace)\b/i;

/**
 * One global transaction's work on one MySQL/MariaDB connection, pinned from XA START to XA COMMIT.
 * A `local` branch is a plain transaction instead (START TRANSACTION … COMMIT, never XA), which
 * cannot prepare.
 */
export class MysqlBranch implements Branch {
  private conn: MysqlConnection | undefined;
  private state: State = 'active';
  /** XA END was sent: the branch is IDLE (or beyond). */
  private ended = false;
  /** A statement answered with an OK packet (not rows): counted as written. */
  private wrote = false;
  private statements = 0;
  /**
   * A deadlock (or XA_RB*; for a local branch also a lock wait timeout) rolled the whole branch
   * back, or may have; only a rollback is left.
   */
  private rolledBack: { readonly error: unknown; readonly class: MysqlErrorClass } | undefined;
  /** Local: a statement (DDL, COMMIT…) ended the transaction, so later ones would autocommit. */
  private escaped = false;
  private broken = false;
  private preparing = false;
  private readonly queue = new SerialQueue();
  private readonly errors: BranchErrors<MysqlErrorClass>;

  private readonly onConnectionError = (err: Error): void => {
    this.broken = true;
    this.host.logger.warn({ err, participant: this.host.name, xid: xidKey(this.xid) }, 'MySQL branch connection failed');
  };

  /**
   * The session's write counters before the first statement that is not plain DML, read lazily:
   * a transaction that starts by writing never pays for it. 'unreadable' when the server would
   * not say (the branch then counts as written).
   */
  private writeBaseline: number | 'unreadable' | undefined;

  constructor(
    readonly xid: Xid,
    conn: MysqlConnection,
    private readonly host: MysqlBranchHost,
    /** A plain (non-XA) transaction: COMMIT / ROLLBACK, and prepare() throws TXC_UNSUPPORTED. */
    readonly local = false,
  ) {
    this.conn = conn;
    this.errors = new BranchErrors(host.name, xid, classifyMysqlError, (c) => ({ errno: c?.errno, code: c?.code }));
    conn.on('error', this.onConnectionError);
  }

  /** Runs one statement; statements of one branch run one at a time, in call order. */
  query(sql: string, params?: readonly unknown[]): Promise<QueryResult> {
    return this.queue.run(() => this.exec(sql, params));
  }

  /**
   * Inserts the commit marker in this transaction unless one exists (INSERT IGNORE, which waits
   * for an uncommitted duplicate), then reads an existing one with a locking read so that the
   * answer is the committed outcome even under REPEATABLE READ. Counts as a write.
   */
  async insertMarker(gtrid: string, outcome: MarkerOutcome): Promise<'inserted' | MarkerOutcome> {
    const row = markerRow(this.host.name, BOOKKEEPING_ROWS, gtrid, outcome);
    return this.queue.run(() => this.insertOnce(row));
  }

  /** Inserts the barrier row unless its key exists; 'inserted' or the existing row's origin. Counts as a write. */
  async insertBarrier(row: BarrierRow): Promise<'inserted' | BarrierRow['origin']> {
    const bookkeeping = barrierRow(this.host.name, BOOKKEEPING_ROWS, row);
    return this.queue.run(() => this.insertOnce(bookkeeping));
  }

  /** One statement on the pinned connection, in the serial queue. */
  private async exec(sql: string, params?: readonly unknown[]): Promise<QueryResult> {
    const conn = this.conn;
    if (this.state !== 'active' || this.ended || !conn) throw this.errors.closed(this.state);
    if (this.local) this.assertStillInTransaction();
    const plainDml = PLAIN_DML.test(sql);
    // Only a statement that answers with rows can write unnoticed (a SELECT calling a writing
    // function), so the counters are read once, before the first such statement.
    if (!plainDml && !this.wrote && this.writeBaseline === undefined) this.writeBaseline = await this.readWriteCounters(conn);
    this.statements++;
    let result: unknown;
    try {
      [result] = await conn.query(sql, params === undefined ? undefined : [...params]);
    } catch (err) {
      throw this.errors.queryFailed(err, this.noteFailure(err));
    }
    const normalized = normalize(result);
    // DML counts as written even when it matched no rows or answered with rows (RETURNING): conservative.
    if (normalized.wrote || plainDml) this.wrote = true;
    if (this.local && normalized.inTransaction === false) {
      // DDL commits implicitly, and COMMIT/ROLLBACK sent as statements end the transaction: what
      // follows would autocommit statement by statement, so the branch must not go on.
      this.escaped = true;
      throw new TxcError(
        'TXC_QUERY_FAILED',
        `A statement ended the transaction of branch ${xidKey(this.xid)} on ${this.host.name} (its work may already be committed): ` +
          'never send DDL, COMMIT or ROLLBACK through tx.query',
        { details: { participant: this.host.name } },
      );
    }
    return { rows: normalized.rows, rowCount: normalized.rowCount };
  }

  /**
   * The insert-or-read of a bookkeeping row (see insertOrRead); the locking read sees the row
   * that the waited-for transaction committed, even under REPEATABLE READ.
   */
  private async insertOnce<T extends string>(row: BookkeepingRow<T>): Promise<'inserted' | T> {
    if (this.state !== 'active' || this.ended || !this.conn) throw this.errors.closed(this.state);
    await this.host.ensureBookkeeping();
    // Even a row that was already there counts: the branch holds its lock and must be
    // committed or rolled back, not skipped as read-only. Set first, so no counters are read.
    this.wrote = true;
    return insertOrRead({
      participant: this.host.name,
      row: row.row,
      column: row.column,
      accept: row.accept,
      tryInsert: async () => (await this.exec(...row.insert)).rowCount > 0,
      readExisting: async () => (await this.exec(...row.select)).rows[0]?.[row.column],
    });
  }

  /** Local: refuses statements once the transaction is gone (they would autocommit). */
  private assertStillInTransaction(): void {
    const rolledBack = this.rolledBack;
    if (rolledBack) {
      throw new TxcError(
        'TXC_QUERY_FAILED',
        `The transaction of branch ${xidKey(this.xid)} on ${this.host.name} was rolled back by the database after an earlier failure`,
        { cause: rolledBack.error, retryable: true, details: this.errors.details(rolledBack.class) },
      );
    }
    if (this.escaped) {
      throw new TxcError('TXC_QUERY_FAILED', `The transaction of branch ${xidKey(this.xid)} on ${this.host.name} was ended by a statement`, {
        details: { participant: this.host.name },
      });
    }
  }

  /**
   * True after any statement that answered with an OK packet (DML, SET, CALL…: conservative);
   * otherwise compares the session's row-write counters with their value at XA START, which
   * catches writes done by functions called from a SELECT. A broken, rolled-back or (local)
   * escaped branch answers true so that prepare or commit runs and reports the failure.
   */
  hasWritten(): Promise<boolean> {
    return this.queue.run(async () => {
      if (this.wrote) return true;
      const conn = this.conn;
      if (this.state !== 'active' || this.ended || !conn || this.broken || this.rolledBack || this.escaped) return true;
      if (this.statements === 0) return false;
      const baseline = this.writeBaseline;
      if (baseline === undefined || baseline === 'unreadable') return true;
      try {
        const [rows] = await conn.query(WRITE_COUNTERS);
        const now = sumWriteCounters(rows);
        this.wrote = now === undefined || now !== baseline;
        return this.wrote;
      } catch (err) {
        this.noteFailure(err);
        this.host.logger.warn({ err, participant: this.host.name }, 'write check failed; treating the branch as written');
        return true;
      }
    });
  }

  /** XA END then XA PREPARE; the connection stays pinned for phase two. A local branch throws TXC_UNSUPPORTED and stays open. */
  prepare(): Promise<PrepareResult> {
    if (this.local) {
      return Promise.reject(
        new TxcError('TXC_UNSUPPORTED', `Participant ${this.host.name} cannot prepare ${xidKey(this.xid)}: it is a local (non-XA) transaction`, {
          details: { participant: this.host.name, operation: 'prepare' },
        }),
      );
    }
    return this.queue.run(async () => {
      const conn = await this.endActive((...a) => this.errors.prepareFailed(...a));
      this.preparing = true;
      try {
        await conn.query(xaPrepareSql(this.xid));
      } catch (err) {
        const c = classifyMysqlError(err);
        if (c.kind === 'connection' || this.conn !== conn) {
          // XA PREPARE may have run before the connection died: not a refusal, so not
          // TXC_PREPARE_FAILED. The coordinator then rolls back by xid from fresh connections.
          this.broken = true;
          if (this.state === 'active') this.state = 'in-doubt';
          this.drop(false);
          throw this.errors.inDoubt('XA PREPARE', err, c);
        }
        await this.rollbackPinned();
        throw this.errors.prepareFailed('the database refused to prepare', c.retryable, err, c);
      } finally {
        this.preparing = false;
      }
      // Released while XA PREPARE was in flight: release() marked the branch in doubt and the
      // coordinator has moved on to rolling it back by xid; leave that to it.
      if (this.conn !== conn) throw this.errors.inDoubt('XA PREPARE', undefined, undefined);
      this.state = 'prepared';
      return {};
    });
  }

  /**
   * XA COMMIT on the preparing connection (MariaDB refuses it from any other while this one is
   * connected). If that connection is gone or fails, it is closed, which detaches the branch,
   * and the commit goes through a fresh connection (now, or on the coordinator's retry).
   */
  commitPrepared(): Promise<ResolveResult> {
    return this.queue.run(async () => {
      if (this.state !== 'prepared') {
        throw this.errors.closed(`${this.state}, not prepared`);
      }
      const conn = this.conn;
      if (!conn || this.broken) {
        this.drop(false);
        const result = await this.host.resolve(this.xid, 'commit');
        this.state = 'finished';
        return result;
      }
      try {
        await conn.query(xaCommitSql(this.xid));
      } catch (err) {
        const c = classifyMysqlError(err);
        this.drop(false);
        if (c.kind === 'unknown-xid' || c.kind === 'rolled-back') {
          this.state = 'finished';
          return c.kind === 'unknown-xid' ? 'unknown' : 'rolled-back';
        }
        throw new TxcError('TXC_PARTICIPANT_UNAVAILABLE', `XA COMMIT of ${xidKey(this.xid)} failed on participant ${this.host.name}`, {
          cause: err,
          retryable: true, // closing the connection detached the branch: a fresh connection can commit it
          details: { ...this.errors.details(c), operation: 'commit-prepared' },
        });
      }
      this.state = 'finished';
      this.drop(true);
      return 'done';
    });
  }

  /** XA END then XA COMMIT … ONE PHASE; a local branch sends COMMIT. */
  commitOnePhase(): Promise<void> {
    return this.queue.run(async () => {
      const conn = await this.endActive((...a) => this.errors.commitFailed(...a));
      try {
        await conn.query(this.local ? COMMIT : xaCommitOnePhaseSql(this.xid));
      } catch (err) {
        const c = this.noteFailure(err);
        if (c.kind === 'connection') {
          this.state = 'finished';
          this.drop(false);
          throw new TxcError('TXC_OUTCOME_UNKNOWN', `The connection to ${this.host.name} was lost during ${this.local ? 'COMMIT' : 'XA COMMIT ONE PHASE'}`, {
            cause: err,
            details: this.errors.details(c),
          });
        }
        await this.rollbackPinned();
        throw this.errors.commitFailed('the database refused to commit', c.retryable, err, c);
      }
      this.state = 'finished';
      this.drop(true);
    });
  }

  /** XA END + XA ROLLBACK before prepare (local: ROLLBACK), XA ROLLBACK after; a finished branch is left alone. */
  rollback(): Promise<void> {
    return this.queue.run(async () => {
      if (this.state === 'active') {
        await this.rollbackPinned();
        return;
      }
      if (this.state === 'finished') return;
      const conn = this.conn;
      if (this.state === 'prepared' && conn && !this.broken) {
        try {
          await conn.query(xaRollbackSql(this.xid));
          this.state = 'finished';
          this.drop(true);
          return;
        } catch (err) {
          const c = classifyMysqlError(err);
          this.drop(false);
          if (c.kind === 'unknown-xid' || c.kind === 'rolled-back') {
            this.state = 'finished';
            return;
          }
          this.host.logger.warn({ err, participant: this.host.name }, 'XA ROLLBACK on the preparing connection failed; retrying on a fresh one');
        }
      }
      // Closing the preparing connection detaches the branch, so a fresh connection can finish it.
      this.drop(false);
      await this.host.resolve(this.xid, 'rollback');
      this.state = 'finished';
    });
  }

  /**
   * Lets go of the connection; idempotent. A connection still held here is mid-transaction, so
   * it is always closed (`_destroy` changes nothing): that rolls back an unprepared branch and
   * detaches a prepared one, which is then finished from a fresh connection. Finished branches
   * already gave their connection back to the pool.
   */
  release(_destroy?: boolean): void {
    if (this.preparing) this.state = 'in-doubt';
    else if (this.state === 'active') this.state = 'finished';
    this.drop(false);
    // Later calls (rollback by xid) must not queue behind a statement on the closed connection.
    this.queue.reset();
  }

  /** Lets the connection go: back to the pool only when `reuse` and healthy, else closed. */
  private drop(reuse: boolean): void {
    const conn = this.conn;
    if (!conn) return;
    this.conn = undefined;
    conn.removeListener('error', this.onConnectionError);
    try {
      if (reuse && !this.broken) conn.release();
      else conn.destroy();
    } catch (err) {
      this.host.logger.warn({ err, participant: this.host.name }, 'releasing a MySQL connection failed');
    }
  }

  /** Ends an unprepared branch on the pinned connection; closing the connection is the fallback. */
  private async rollbackPinned(): Promise<void> {
    this.state = 'finished';
    const conn = this.conn;
    if (!conn || this.broken) {
      this.drop(false);
      return;
    }
    try {
      if (this.local) {
        await conn.query(ROLLBACK);
        this.drop(true);
        return;
      }
      if (!this.ended) {
        try {
          await conn.query(xaEndSql(this.xid));
        } catch (err) {
          // 1399 after a deadlock (ROLLBACK ONLY) or when already IDLE: XA ROLLBACK still works.
          if (classifyMysqlError(err).kind === 'connection') throw err;
        }
        this.ended = true;
      }
      try {
        await conn.query(xaRollbackSql(this.xid));
      } catch (err) {
        const kind = classifyMysqlError(err).kind;
        if (kind !== 'unknown-xid' && kind !== 'rolled-back') throw err;
      }
      this.drop(true);
    } catch (err) {
      // The server rolls back an unprepared branch when its session ends.
      this.host.logger.warn({ err, participant: this.host.name }, 'ROLLBACK failed; closing the connection');
      this.drop(false);
    }
  }

  private noteFailure(err: unknown): MysqlErrorClass {
    const c = classifyMysqlError(err);
    if (c.kind === 'connection') this.broken = true;
    // A plain transaction has no ROLLBACK ONLY state to stop later statements: after a deadlock
    // (or a lock wait timeout with innodb_rollback_on_timeout) they would autocommit, so a local
    // branch also takes a lock wait timeout as the end of its transaction.
    const fatal = c.kind === 'deadlock' || c.kind === 'rolled-back' || (this.local && c.kind === 'transient');
    if (fatal) this.rolledBack = { error: err, class: c };
    return c;
  }

  /**
   * The start shared by prepare and one-phase commit: checks the branch can still finish, then
   * XA END (ACTIVE → IDLE; nothing for a local branch) on the pinned connection, which it
   * returns. Every failure leaves the branch rolled back (nothing was prepared or committed) and
   * throws what `fail` builds.
   */
  private async endActive(fail: FailureBuilder): Promise<MysqlConnection> {
    const conn = this.conn;
    if (this.state !== 'active' || this.ended || !conn) throw fail(`the branch is ${this.state}`, false);
    if (this.broken) {
      // The server rolls back an unprepared XA branch when its session ends.
      this.state = 'finished';
      this.drop(false);
      throw fail('its connection broke', true);
    }
    const rolledBack = this.rolledBack;
    if (rolledBack) {
      await this.rollbackPinned();
      throw fail('the database rolled the branch back (deadlock)', true, rolledBack.error, rolledBack.class);
    }
    if (this.escaped) {
      await this.rollbackPinned();
      throw fail('a statement sent through query() ended its transaction', false);
    }
    if (this.local) return conn;
    try {
      await conn.query(xaEndSql(this.xid));
      this.ended = true;
    } catch (err) {
      const c = this.noteFailure(err);
      await this.rollbackPinned();
      throw fail('XA END failed', c.retryable, err, c);
    }
    // Released during XA END: the closed session rolls the unprepared branch back.
    if (this.conn !== conn) throw fail('the branch was released', true);
    return conn;
  }

  /** The session's write counters, or 'unreadable' (then the branch counts as written). */
  private async readWriteCounters(conn: MysqlConnection): Promise<number | 'unreadable'> {
    try {
      return sumWriteCounters((await conn.query(WRITE_COUNTERS))[0]) ?? 'unreadable';
    } catch (err) {
      const c = this.noteFailure(err);
      if (c.kind === 'connection') {
        throw new TxcError('TXC_QUERY_FAILED', `Lost the connection to ${this.host.name}`, { cause: err, retryable: true, details: this.errors.details(c) });
      }
      this.host.logger.warn({ err, participant: this.host.name }, 'cannot read write counters; the branch will count as written');
      return 'unreadable';
    }
  }
}

function isOkPacket(value: unknown): value is MysqlOkPacket {
  return (
    typeof value === 'object' &&
    value !== null &&
    !Array.isArray(value) &&
    typeof (value as MysqlOkPacket).affectedRows === 'number' &&
    typeof (value as MysqlOkPacket).serverStatus === 'number'
  );
}

/** mysql2's answer in the neutral shape. */
interface Normalized {
  readonly rows: Record<string, unknown>[];
  readonly rowCount: number;
  /** Whether it may have written (any OK packet). */
  readonly wrote: boolean;
  /** The IN_TRANS flag of the last OK packet; undefined when the answer had none (rows only). */
  readonly inTransaction: boolean | undefined;
}

function normalize(result: unknown): Normalized {
  if (isOkPacket(result)) return { rows: [], rowCount: result.affectedRows, wrote: true, inTransaction: inTrans(result) };
  if (Array.isArray(result)) {
    if (result.some((r) => Array.isArray(r) || isOkPacket(r))) {
      // Several results (CALL): the first row set, and an OK packet (always last for CALL) counts as written.
      const rows = (result.find((r): r is Record<string, unknown>[] => Array.isArray(r)) ?? []) as Record<string, unknown>[];
      const last = result.filter(isOkPacket).at(-1);
      return { rows, rowCount: rows.length, wrote: last !== undefined, inTransaction: last && inTrans(last) };
    }
    return { rows: result as Record<string, unknown>[], rowCount: result.length, wrote: false, inTransaction: undefined };
  }
  return { rows: [], rowCount: 0, wrote: true, inTransaction: undefined };
}

function inTrans(ok: MysqlOkPacket): boolean {
  return (ok.serverStatus & SERVER_STATUS_IN_TRANS) !== 0;
}

/** Sum of the three counters from WRITE_COUNTERS, or undefined when the answer is not as expected. */
export function sumWriteCounters(rows: unknown): number | undefined {
  if (!Array.isArray(rows) || rows.length !== 3) return undefined;
  let sum = 0;
  for (const row of rows as Record<string, unknown>[]) {
    const value = Number(row.Value ?? row.value);
    if (!Number.isSafeInteger(value)) return undefined;
    sum += value;
  }
  return sum;
}
