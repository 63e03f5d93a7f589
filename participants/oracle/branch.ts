import type { Logger } from 'pino';
import { TxcError } from '../../coordinator/errors.js';
import { xidKey, type Xid } from '../../coordinator/xid.js';
import type { BarrierRow, Branch, MarkerOutcome, PrepareResult, QueryResult, ResolveResult } from '../participant.js';
import {
  OUT_FORMAT_OBJECT,
  TPC_END_NORMAL,
  type OracleConnection,
  type OracleExecuteOptions,
  type OracleExecuteResult,
  type OracleXid,
} from './driver.js';
import { barrierRow, markerRow, type BookkeepingRow } from '../bookkeeping.js';
import { BranchErrors } from '../branch-errors.js';
import { insertOrRead } from '../insert-or-read.js';
import { SerialQueue } from '../serial-queue.js';
import { classifyOracleError, type OracleErrorClass } from './errors.js';
import { BOOKKEEPING_ROWS, toOracleXid } from './sql.js';

/** What a branch needs from the participant that started it. */
export interface OracleBranchHost {
  readonly name: string;
  readonly logger: Logger;
  /** Commits or rolls back a prepared branch by xid, on `pinned` when given, else on a fresh pooled connection. */
  resolve(xid: Xid, action: 'commit' | 'rollback', pinned?: OracleConnection): Promise<ResolveResult>;
  /** Creates the bookkeeping tables if missing (from a pooled connection, never the branch's own). */
  ensureBookkeeping(): Promise<void>;
}

/**
 * 'two-phase': a TPC branch (tpcBegin … tpcEnd + tpcPrepare / tpcCommit). 'local': a plain
 * local transaction (beginLocal), which can only commit one-phase or roll back (prepare throws
 * TXC_UNSUPPORTED and leaves it open).
 */
export type OracleBranchMode = 'two-phase' | 'local';

type State =
  /** Statements run on the pinned connection (attached TPC branch, or local transaction). */
  | 'active'
  /** Prepared; the connection stays pinned for phase two. */
  | 'prepared'
  /** The connection was lost (or released) during tpcEnd / tpcPrepare: the branch may be prepared, or detached and alive. */
  | 'in-doubt'
  | 'finished';

type FailureBuilder = (why: string, retryable: boolean, cause?: unknown, c?: OracleErrorClass) => TxcError;

/** Every statement of a branch: rows as objects, and never the driver's global autoCommit. */
const IN_BRANCH: OracleExecuteOptions = { outFormat: OUT_FORMAT_OBJECT, autoCommit: false };

// A query cannot write in Oracle (a function doing DML inside one fails with ORA-14551, and an
// autonomous transaction is outside the branch anyway), but FOR UPDATE takes row locks that, as
// in the PostgreSQL adapter, must be held until phase two rather than released as a reader's.
const FOR_UPDATE = /\bfor\s+update\b/i;

/** Errors after which nobody knows whether the call took effect on the server. */
function uncertain(c: OracleErrorClass): boolean {
  return c.kind === 'connection' || c.kind === 'timeout' || c.kind === 'unknown-state';
}

/** One global transaction's work on one Oracle connection, pinned from begin to phase two. */
export class OracleBranch implements Branch {
  private conn: OracleConnection | undefined;
  private state: State = 'active';
  /** A statement may have written (see hasWritten). */
  private wrote = false;
  /** The connection failed: nothing more can be sent on it. */
  private broken = false;
  private preparing = false;
  /** tpcPrepare answered false: the server ended the branch; there is nothing to commit or roll back. */
  private readOnly = false;
  private readonly queue = new SerialQueue();
  private readonly errors: BranchErrors<OracleErrorClass>;
  private readonly oxid: OracleXid;

  constructor(
    readonly xid: Xid,
    conn: OracleConnection,
    private readonly host: OracleBranchHost,
    private readonly mode: OracleBranchMode,
  ) {
    this.conn = conn;
    this.oxid = toOracleXid(xid);
    this.errors = new BranchErrors(host.name, xid, classifyOracleError, (c) => ({ errorNum: c?.errorNum, code: c?.code }));
  }

  /** Runs one statement (positional binds :1, :2…); statements of one branch run one at a time, in call order. */
  query(sql: string, params?: readonly unknown[]): Promise<QueryResult> {
    return this.queue.run(async () => {
      const conn = this.activeConnection();
      let result: OracleExecuteResult;
      try {
        result = await conn.execute(sql, params === undefined ? [] : [...params], IN_BRANCH);
      } catch (err) {
        // Oracle rolls back only the failed statement; the branch itself goes on.
        throw this.errors.queryFailed(err, this.noteFailure(err));
      }
      const rows = Array.isArray(result.rows) ? result.rows : undefined;
      if (!rows || FOR_UPDATE.test(sql)) this.wrote = true;
      return { rows: rows ?? [], rowCount: rows ? rows.length : (result.rowsAffected ?? 0) };
    });
  }

  /**
   * True once any statement other than a plain query ran: DML with rowsAffected > 0 certainly
   * wrote, but DML that matched no row may still have written through statement-level triggers,
   * and a PL/SQL block reports no count at all. A false "written" costs at most a prepare that
   * Oracle answers read-only; a false "read-only" would commit this branch apart from the others.
   * Queries count only with FOR UPDATE. A broken or ended branch answers true so that prepare
   * runs and reports the failure.
   */
  hasWritten(): Promise<boolean> {
    return this.queue.run(async () => this.wrote || this.state !== 'active' || !this.conn || this.broken);
  }

  /**
   * tpcEnd then tpcPrepare; the connection stays pinned for phase two. tpcPrepare answering
   * false (nothing to commit) ends the branch on the server: `{ readOnly: true }`, and
   * commitPrepared / rollback then do nothing.
   */
  prepare(): Promise<PrepareResult> {
    if (this.mode === 'local') {
      return Promise.reject(
        new TxcError('TXC_UNSUPPORTED', `Participant ${this.host.name} cannot prepare ${xidKey(this.xid)}: it is a local transaction`, {
          details: { participant: this.host.name, operation: 'prepare' },
        }),
      );
    }
    return this.queue.run(async () => {
      const fail: FailureBuilder = (...a) => this.errors.prepareFailed(...a);
      const conn = this.usableConnection(fail);
      this.preparing = true;
      let needsCommit: boolean;
      try {
        await this.endBranch(conn, fail);
        try {
          needsCommit = await conn.tpcPrepare(this.oxid);
        } catch (err) {
          const c = classifyOracleError(err);
          if (uncertain(c) || this.conn !== conn) throw this.lostDuring('tpcPrepare', err, c);
          // Refused (ORA-02091 for a deferred constraint, ORA-24756 once the server timed the
          // detached branch out…): nothing is prepared. End whatever is left of the branch.
          await this.rollbackDetached(conn);
          throw fail('the database refused to prepare', c.retryable, err, c);
        }
      } finally {
        this.preparing = false;
      }
      // Released while tpcPrepare was in flight: release() marked the branch in doubt and the
      // coordinator has moved on to rolling it back by xid; leave that to it.
      if (this.conn !== conn) throw this.errors.inDoubt('tpcPrepare', undefined, undefined);
      if (!needsCommit) {
        this.readOnly = true;
        this.state = 'finished';
        this.drop(false);
        return { readOnly: true };
      }
      this.state = 'prepared';
      return {};
    });
  }

  /**
   * tpcCommit(xid, false) on the preparing connection (never waiting for a pooled one: every
   * pooled connection may be blocked on this branch's row locks); from a fresh connection when
   * that one broke. 'done' without a round trip for a branch that prepared read-only.
   */
  commitPrepared(): Promise<ResolveResult> {
    return this.queue.run(async () => {
      if (this.readOnly) return 'done';
      if (this.state !== 'prepared') {
        throw this.errors.closed(`${this.state}, not prepared`);
      }
      const result = await this.finishPrepared('commit');
      this.state = 'finished';
      return result;
    });
  }

  /**
   * Two-phase mode: tpcEnd then tpcCommit(xid, true), the one-phase commit of an unprepared
   * branch. Not a plain commit(): an implicit COMMIT (DDL) inside an attached branch is refused
   * with ORA-02089, and nothing documents commit() there. Not tpcCommit while still attached
   * (one round trip less): it would leave Thin's TPC context set on the pooled connection, and
   * only tpcEnd clears it. Local mode: commit().
   */
  commitOnePhase(): Promise<void> {
    return this.queue.run(async () => {
      const fail: FailureBuilder = (...a) => this.errors.commitFailed(...a);
      const conn = this.usableConnection(fail);
      if (this.mode === 'local') return this.commitLocal(conn);
      await this.endBranch(conn, fail);
      this.state = 'finished';
      try {
        await conn.tpcCommit(this.oxid, true);
      } catch (err) {
        const c = this.noteFailure(err);
        if (uncertain(c)) {
          this.drop(true);
          // If the commit never arrived, the detached branch would hold its locks (and make a
          // marker read-back wait) until the server's timeout. Rolling back by xid is safe either
          // way: a branch the commit did reach is gone and answers ORA-24756.
          this.rollbackInBackground();
          throw new TxcError('TXC_OUTCOME_UNKNOWN', `The connection to ${this.host.name} was lost during the one-phase commit of ${xidKey(this.xid)}`, {
            cause: err,
            details: this.errors.details(c),
          });
        }
        // Refused (a deferred constraint: ORA-02091, the server rolled back; ORA-24756: it had
        // already ended the branch): nothing is committed.
        await this.rollbackDetached(conn);
        throw fail('the database refused to commit', c.retryable, err, c);
      }
      this.drop(false);
    });
  }

  /** Rolls back an active branch on its connection, a prepared or in-doubt one by xid; a finished branch is left alone. */
  rollback(): Promise<void> {
    return this.queue.run(async () => {
      if (this.readOnly || this.state === 'finished') return;
      if (this.state === 'active') {
        await this.rollbackPinned();
        return;
      }
      await this.finishPrepared('rollback');
      this.state = 'finished';
    });
  }

  /**
   * Gives the connection back. Thin's close() rolls back a transaction still open on the session
   * (an attached TPC branch included) and the pool keeps no broken socket; a prepared branch is
   * detached and survives, to be finished by xid. Idempotent. Released during tpcEnd/tpcPrepare,
   * the branch is in doubt and rollback() finishes it by xid.
   */
  release(destroy = false): void {
    if (this.preparing) this.state = 'in-doubt';
    else if (this.state === 'active') this.state = 'finished';
    this.drop(destroy);
    // Later calls (rollback by xid) must not queue behind a statement on the closed connection.
    this.queue.reset();
  }

  /**
   * Inserts this gtrid's `txcoord_markers` row in this transaction unless one exists. A
   * conflicting uncommitted insert makes Oracle wait for its transaction (unique-index lock):
   * after a commit there it raises ORA-00001 and the existing outcome is read back.
   */
  async insertMarker(gtrid: string, outcome: MarkerOutcome): Promise<'inserted' | MarkerOutcome> {
    const row = markerRow(this.host.name, BOOKKEEPING_ROWS, gtrid, outcome);
    return this.insertOrRead(row);
  }

  /** Inserts a `txcoord_barrier` row unless its (gid, step, op) exists; 'inserted' or the existing row's origin. */
  async insertBarrier(row: BarrierRow): Promise<'inserted' | BarrierRow['origin']> {
    return this.insertOrRead(barrierRow(this.host.name, BOOKKEEPING_ROWS, row));
  }

  /**
   * The insert-or-read of a bookkeeping row (see insertOrRead). A conflicting INSERT raises
   * ORA-00001 once the row's transaction commits, rolling back only that statement; the read
   * then sees the committed row (READ COMMITTED, Oracle's default). Oracle names result columns
   * in upper case.
   */
  private insertOrRead<T extends string>(row: BookkeepingRow<T>): Promise<'inserted' | T> {
    return this.queue.run(async () => {
      this.activeConnection();
      await this.host.ensureBookkeeping();
      const conn = this.activeConnection();
      const failed = (doing: string, err: unknown): TxcError => {
        const c = this.noteFailure(err);
        return new TxcError('TXC_QUERY_FAILED', `${doing} the ${row.row} failed on participant ${this.host.name}`, {
          cause: err,
          retryable: c.retryable,
          details: this.errors.details(c),
        });
      };
      // Even a row that was already there counts: the branch must be committed, not skipped as read-only.
      this.wrote = true;
      return insertOrRead({
        participant: this.host.name,
        row: row.row,
        column: row.column,
        accept: row.accept,
        tryInsert: async () => {
          try {
            await conn.execute(row.insert[0], row.insert[1], IN_BRANCH);
            return true;
          } catch (err) {
            if (classifyOracleError(err).kind !== 'unique') throw failed('Inserting', err);
            return false;
          }
        },
        readExisting: async () => {
          try {
            return (await conn.execute(row.select[0], row.select[1], IN_BRANCH)).rows?.[0]?.[row.column.toUpperCase()];
          } catch (err) {
            throw failed('Reading', err);
          }
        },
      });
    });
  }

  private async commitLocal(conn: OracleConnection): Promise<void> {
    this.state = 'finished';
    try {
      await conn.commit();
    } catch (err) {
      const c = this.noteFailure(err);
      if (uncertain(c)) {
        this.drop(true);
        throw new TxcError('TXC_OUTCOME_UNKNOWN', `The connection to ${this.host.name} was lost during COMMIT`, {
          cause: err,
          details: this.errors.details(c),
        });
      }
      this.state = 'active';
      await this.rollbackPinned();
      throw this.errors.commitFailed('the database refused to commit', c.retryable, err, c);
    }
    this.drop(false);
  }

  /**
   * tpcEnd (detach) on the pinned connection, shared by prepare and one-phase commit. A refusal
   * leaves nothing prepared or committed: the branch is rolled back and `fail` thrown. A lost
   * connection may have detached the branch, which then lives, unprepared and holding its locks,
   * until the tpcBegin timeout: the branch goes in doubt so the coordinator rolls it back by xid.
   */
  private async endBranch(conn: OracleConnection, fail: FailureBuilder): Promise<void> {
    try {
      await conn.tpcEnd(this.oxid, TPC_END_NORMAL);
    } catch (err) {
      const c = this.noteFailure(err);
      if (uncertain(c) || this.conn !== conn) {
        if (this.preparing) throw this.lostDuring('tpcEnd', err, c);
        // One-phase commit: not committed either way; roll back what may be left detached.
        this.state = 'finished';
        this.drop(true);
        this.rollbackInBackground();
        throw fail('the connection was lost before the commit', true, err, c);
      }
      await this.rollbackPinned();
      throw fail('tpcEnd failed', c.retryable, err, c);
    }
    if (this.conn !== conn) {
      if (this.preparing) throw this.errors.inDoubt('tpcEnd', undefined, undefined);
      this.rollbackInBackground();
      throw fail('the branch was released', true);
    }
  }

  /** The pinned connection of an active branch, or TXC_TRANSACTION_CLOSED. */
  private activeConnection(): OracleConnection {
    const conn = this.conn;
    if (this.state !== 'active' || !conn) {
      throw this.errors.closed(this.state);
    }
    return conn;
  }

  /** The pinned connection of an active, healthy branch; else the branch ends and `fail` is thrown. */
  private usableConnection(fail: FailureBuilder): OracleConnection {
    const conn = this.conn;
    if (this.state !== 'active' || !conn) throw fail(`the branch is ${this.state}`, false);
    if (this.broken) {
      // The server rolls back an attached branch (or local transaction) whose session ends.
      this.state = 'finished';
      this.drop(true);
      throw fail('its connection broke', true);
    }
    return conn;
  }

  /** Phase two by xid on the pinned connection while it is healthy; the connection is let go either way. */
  private async finishPrepared(action: 'commit' | 'rollback'): Promise<ResolveResult> {
    const pinned = this.broken ? undefined : this.conn;
    try {
      const result = await this.host.resolve(this.xid, action, pinned);
      this.drop(false);
      return result;
    } catch (err) {
      this.drop(true);
      throw err;
    }
  }

  /**
   * Ends an active branch on its connection: tpcEnd + tpcRollback (so that Thin's TPC context is
   * cleared), or rollback() for a local transaction. Closing the connection is the fallback: the
   * server rolls back what a closed session leaves attached.
   */
  private async rollbackPinned(): Promise<void> {
    this.state = 'finished';
    const conn = this.conn;
    if (!conn || this.broken) {
      this.drop(true);
      return;
    }
    try {
      if (this.mode === 'local') {
        await conn.rollback();
      } else {
        try {
          await conn.tpcEnd(this.oxid, TPC_END_NORMAL);
        } catch (err) {
          // Already detached or ended by the server: tpcRollback by xid still applies.
          if (uncertain(classifyOracleError(err))) throw err;
        }
        await this.tpcRollbackIgnoringUnknown(conn);
      }
      this.drop(false);
    } catch (err) {
      this.host.logger.warn({ err, participant: this.host.name, xid: xidKey(this.xid) }, 'rollback failed; closing the connection');
      this.drop(true);
    }
  }

  /** After a refused tpcPrepare / one-phase tpcCommit: rolls back the detached remains, if any, on the same connection. */
  private async rollbackDetached(conn: OracleConnection): Promise<void> {
    this.state = 'finished';
    try {
      await this.tpcRollbackIgnoringUnknown(conn);
      this.drop(false);
    } catch (err) {
      this.host.logger.warn({ err, participant: this.host.name, xid: xidKey(this.xid) }, 'tpcRollback failed; rolling back by xid from a fresh connection');
      this.drop(true);
      this.rollbackInBackground();
    }
  }

  private async tpcRollbackIgnoringUnknown(conn: OracleConnection): Promise<void> {
    try {
      await conn.tpcRollback(this.oxid);
    } catch (err) {
      const kind = classifyOracleError(err).kind;
      if (kind !== 'unknown-xid' && kind !== 'rolled-back') throw err;
    }
  }

  /**
   * A detached, unprepared branch would hold its locks until the server's inactivity timeout:
   * roll it back by xid now, best effort ('unknown' when it is already gone).
   */
  private rollbackInBackground(): void {
    this.host.resolve(this.xid, 'rollback').catch((err: unknown) =>
      this.host.logger.warn({ err, participant: this.host.name, xid: xidKey(this.xid) }, 'background rollback by xid failed; the server ends the branch at its timeout'),
    );
  }

  /** The connection broke (or the branch was released) during tpcEnd/tpcPrepare: in doubt. */
  private lostDuring(call: string, err: unknown, c: OracleErrorClass): TxcError {
    // Not a refusal, so not TXC_PREPARE_FAILED: the coordinator then rolls back by xid from
    // fresh connections, whatever the branch turned out to be.
    this.broken = true;
    if (this.state === 'active') this.state = 'in-doubt';
    this.drop(true);
    return this.errors.inDoubt(call, err, c);
  }

  /** Lets the connection go: back to the pool, or with `drop` when it may be in an unknown state. */
  private drop(destroy: boolean): void {
    const conn = this.conn;
    if (!conn) return;
    this.conn = undefined;
    const drop = destroy || this.broken;
    const warn = (err: unknown) => this.host.logger.warn({ err, participant: this.host.name }, 'closing an Oracle connection failed');
    try {
      conn.close(drop ? { drop: true } : undefined).catch(warn);
    } catch (err) {
      warn(err);
    }
  }

  private noteFailure(err: unknown): OracleErrorClass {
    const c = classifyOracleError(err);
    if (uncertain(c)) this.broken = true;
    return c;
  }
}
