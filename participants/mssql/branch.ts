import type { Logger } from 'pino';
import { TxcError, type TxcErrorCode } from '../../coordinator/errors.js';
import { xidKey, type Xid } from '../../coordinator/xid.js';
import type { BarrierRow, Branch, MarkerOutcome, PrepareResult, QueryResult, ResolveResult } from '../participant.js';
import { SerialQueue } from '../serial-queue.js';
import type { TediousTypes } from './driver.js';
import { classifyMssqlError, type MssqlErrorClass } from './errors.js';
import { tediousParameter, varcharParameter, type TediousParameter } from './parameters.js';
import type { MssqlSession } from './session.js';
import { BARRIER_KEY_LENGTH, BARRIER_TAG_LENGTH, GTRID_LENGTH, INSERT_BARRIER, INSERT_MARKER, TRANCOUNT, WRITE_CHECK } from './sql.js';

/** What a branch needs from the participant that started it. */
export interface MssqlBranchHost {
  readonly name: string;
  readonly logger: Logger;
  readonly types: TediousTypes;
  /** Gives the session back to the pool; `destroy` closes it instead. */
  releaseSession(session: MssqlSession, destroy: boolean): void;
  /** TXC_UNSUPPORTED for a two-phase operation. */
  unsupported(operation: string): TxcError;
}

type State =
  /** The local transaction is open on the pinned session. */
  | 'active'
  /** Committed, rolled back, or given up; the session is gone or going. */
  | 'finished';

// Statements whose text shows they cannot change data: a single SELECT naming no writing keyword
// (SQL Server functions cannot modify data, so only SELECT … INTO or an EXEC could). Anything
// else may write; false alarms only cost a server-side check in hasWritten.
const PLAIN_SELECT = /^\s*select\b/i;
const WRITING_WORD =
  /\b(into|insert|update|delete|merge|exec|execute|create|alter|drop|truncate|grant|revoke|deny|bulk|writetext|updatetext|dbcc|commit|rollback|save|begin)\b/i;
// DML whose positive row count proves that rows were written.
const DML = /^\s*(insert|update|delete|merge)\b/i;
// User SQL that may end or nest the branch's transaction: checked with @@TRANCOUNT before COMMIT.
const TRANSACTION_CONTROL = /\b(commit|rollback)\b|\bbegin\s+(tran|transaction|distributed)\b|\bsave\s+(tran|transaction)\b/i;
// Keys of txcoord's own tables are varchar: printable ASCII only, so no collation can alter them.
const PRINTABLE_ASCII = /^[\x20-\x7e]+$/;

/**
 * One global transaction's work on one SQL Server session: a plain local transaction, pinned
 * from BEGIN to COMMIT or ROLLBACK. SQL Server is one-phase here (tedious has no XA / DTC), so
 * the branch never prepares; it is the commit-marked last resource or a saga step.
 */
export class MssqlBranch implements Branch {
  private session: MssqlSession | undefined;
  private state: State = 'active';
  /** A statement certainly wrote rows. */
  private wrote = false;
  /** A statement ran whose effect its text and row count cannot tell. */
  private maybeWrote = false;
  /** User SQL may have ended or nested the transaction. */
  private touchedTransactionControl = false;
  /** The first statement that failed; the branch can then only roll back. */
  private failure: { readonly error: unknown; readonly class: MssqlErrorClass } | undefined;
  private readonly queue = new SerialQueue();

  constructor(
    readonly xid: Xid,
    session: MssqlSession,
    private readonly host: MssqlBranchHost,
  ) {
    this.session = session;
  }

  /**
   * Runs one statement (parameters are @p1, @p2…); statements of one branch run one at a time,
   * in call order. After a failed statement every later one is refused: SQL Server may already
   * have rolled the whole transaction back (deadlock victim, XACT_ABORT), and a later statement
   * would then run outside any transaction and commit on its own.
   */
  query(sql: string, params?: readonly unknown[]): Promise<QueryResult> {
    return this.queue.run(async () => {
      const session = this.usableSession();
      let result: QueryResult;
      try {
        const bound = (params ?? []).map((p) => tediousParameter(p, this.host.types));
        result = await session.execute(sql, bound);
      } catch (err) {
        const c = this.noteFailure(err);
        throw this.wrap('TXC_QUERY_FAILED', `A statement failed on participant ${this.host.name}`, c.retryable, err, c);
      }
      this.noteStatement(sql, result.rowCount);
      return result;
    });
  }

  /**
   * True after DML that reported affected rows, a marker or barrier insert, or a statement the
   * adapter cannot judge by its text when the server confirms the transaction wrote log records
   * (sys.dm_tran_database_transactions, which needs VIEW SERVER STATE; without it the answer is
   * true). Plain SELECTs alone answer false with no round trip. A failed, broken or ended branch
   * answers true so that the commit reports the failure instead of it passing as read-only.
   */
  hasWritten(): Promise<boolean> {
    return this.queue.run(async () => {
      if (this.wrote) return true;
      const session = this.session;
      if (this.state !== 'active' || !session || session.dead || this.failure) return true;
      if (!this.maybeWrote) return false;
      try {
        const wrote = (await session.execute(WRITE_CHECK)).rows[0]?.wrote;
        if (wrote === 0) return false;
        if (wrote === 1) this.wrote = true;
        return true;
      } catch (err) {
        const c = classifyMssqlError(err);
        if (c.kind === 'connection') this.noteFailure(err, c);
        this.host.logger.warn({ err, participant: this.host.name }, 'write check failed; treating the branch as written');
        return true;
      }
    });
  }

  /** Always TXC_UNSUPPORTED: SQL Server takes part one-phase only. */
  prepare(): Promise<PrepareResult> {
    return Promise.reject(this.host.unsupported('prepare'));
  }

  /** Always TXC_UNSUPPORTED: nothing is ever prepared. */
  commitPrepared(): Promise<ResolveResult> {
    return Promise.reject(this.host.unsupported('commit a prepared branch'));
  }

  /**
   * COMMIT on the pinned session. A lost connection (or a COMMIT that got no answer within
   * queryTimeoutMs) is TXC_OUTCOME_UNKNOWN: the server may have committed before the failure.
   * A COMMIT the server refused is TXC_COMMIT_FAILED, after making sure the transaction is rolled
   * back; so is a branch that broke or failed before COMMIT was sent.
   */
  commitOnePhase(): Promise<void> {
    return this.queue.run(async () => {
      const session = this.session;
      if (this.state !== 'active' || !session) throw this.commitFailed(`the branch is ${this.state}`, false);
      if (session.dead) {
        // Nothing was sent: the server rolls back the transaction of a session that ended.
        this.state = 'finished';
        this.drop(true);
        throw this.commitFailed('its connection broke before COMMIT', true);
      }
      const failed = this.failure;
      if (failed) {
        await this.rollbackPinned();
        throw this.commitFailed('a statement failed earlier in the transaction, so it was rolled back', failed.class.retryable, failed.error, failed.class);
      }
      if (this.touchedTransactionControl) await this.checkTransactionLevel(session);
      this.state = 'finished';
      try {
        await session.commit();
      } catch (err) {
        const c = classifyMssqlError(err);
        if (c.kind === 'connection') {
          this.drop(true);
          throw this.wrap('TXC_OUTCOME_UNKNOWN', `The connection to ${this.host.name} was lost during COMMIT of ${xidKey(this.xid)}`, false, err, c);
        }
        await this.rollbackSession(session);
        throw this.commitFailed('the database refused to commit', c.retryable, err, c);
      }
      this.drop(false);
      this.host.logger.debug({ participant: this.host.name, xid: xidKey(this.xid) }, 'SQL Server branch committed');
    });
  }

  /** ROLLBACK on the pinned session; a finished branch is left alone. */
  rollback(): Promise<void> {
    return this.queue.run(async () => {
      if (this.state === 'active') await this.rollbackPinned();
    });
  }

  /**
   * Lets go of the session; idempotent. A session still held here is mid-transaction or
   * mid-request, so it is always closed (which makes the server roll back) and never reused,
   * whatever `_destroy` says; finished branches gave theirs back already.
   */
  release(_destroy?: boolean): void {
    this.state = 'finished';
    this.drop(true);
    // Later calls must not queue behind a request on the closed connection.
    this.queue.reset();
  }

  /**
   * Inserts the `txcoord_markers` row (gtrid, outcome) in this transaction unless one exists;
   * waits for a concurrent uncommitted insert of the same gtrid (see INSERT_MARKER), so the
   * answer is final: 'inserted', or the outcome already recorded.
   */
  insertMarker(gtrid: string, outcome: MarkerOutcome): Promise<'inserted' | MarkerOutcome> {
    return this.queue.run(async () => {
      checkKey('gtrid', gtrid, GTRID_LENGTH);
      checkTag('outcome', outcome, ['commit', 'abort']);
      const t = this.host.types;
      const existing = await this.insertUnlessExists('txcoord_markers', INSERT_MARKER, [
        varcharParameter(gtrid, GTRID_LENGTH, t),
        varcharParameter(outcome, 8, t),
      ]);
      if (existing === null) return 'inserted';
      if (existing === 'commit' || existing === 'abort') return existing;
      throw this.unexpectedRow('txcoord_markers', `outcome ${JSON.stringify(existing)} for ${gtrid}`);
    });
  }

  /**
   * Inserts the `txcoord_barrier` row in this transaction unless its key (gid, step, op) exists,
   * waiting for an uncommitted one like {@link insertMarker}: 'inserted', or the existing origin.
   */
  insertBarrier(row: BarrierRow): Promise<'inserted' | BarrierRow['origin']> {
    return this.queue.run(async () => {
      checkKey('gid', row.gid, BARRIER_KEY_LENGTH);
      checkKey('step', row.step, BARRIER_KEY_LENGTH);
      checkTag('op', row.op, ['action', 'compensate']);
      checkTag('origin', row.origin, ['action', 'compensate']);
      const t = this.host.types;
      const existing = await this.insertUnlessExists('txcoord_barrier', INSERT_BARRIER, [
        varcharParameter(row.gid, BARRIER_KEY_LENGTH, t),
        varcharParameter(row.step, BARRIER_KEY_LENGTH, t),
        varcharParameter(row.op, BARRIER_TAG_LENGTH, t),
        varcharParameter(row.origin, BARRIER_TAG_LENGTH, t),
      ]);
      if (existing === null) return 'inserted';
      if (existing === 'action' || existing === 'compensate') return existing;
      throw this.unexpectedRow('txcoord_barrier', `origin ${JSON.stringify(existing)} for ${row.gid}/${row.step}/${row.op}`);
    });
  }

  /** Runs INSERT_MARKER / INSERT_BARRIER: null when it inserted, else the existing value. */
  private async insertUnlessExists(table: string, sql: string, params: readonly TediousParameter[]): Promise<string | null> {
    const session = this.usableSession();
    let rows: Record<string, unknown>[];
    try {
      ({ rows } = await session.execute(sql, params));
    } catch (err) {
      const c = this.noteFailure(err);
      throw this.wrap('TXC_QUERY_FAILED', `Writing ${table} failed on participant ${this.host.name}`, c.retryable, err, c);
    }
    if (rows.length === 0) throw this.unexpectedRow(table, 'no answer row');
    const existing = rows[0]?.existing;
    if (existing === null || existing === undefined) {
      this.wrote = true;
      return null;
    }
    return String(existing);
  }

  /**
   * Before a COMMIT that follows user SQL naming COMMIT/ROLLBACK/BEGIN TRAN: with no transaction
   * left, that SQL already decided the outcome, which txcoord cannot know (TXC_OUTCOME_UNKNOWN);
   * with nested ones, COMMIT would not end the transaction, so it is rolled back.
   */
  private async checkTransactionLevel(session: MssqlSession): Promise<void> {
    let level: unknown;
    try {
      level = (await session.execute(TRANCOUNT)).rows[0]?.trancount;
    } catch (err) {
      const c = classifyMssqlError(err);
      await this.rollbackPinned();
      throw this.commitFailed('reading @@TRANCOUNT before COMMIT failed', c.retryable, err, c);
    }
    if (level === 1) return;
    if (level === 0) {
      this.state = 'finished';
      this.drop(false);
      throw new TxcError(
        'TXC_OUTCOME_UNKNOWN',
        `Participant ${this.host.name}: the transaction of ${xidKey(this.xid)} was already ended by a COMMIT or ROLLBACK sent through query(), so txcoord did not commit it`,
        { details: { participant: this.host.name } },
      );
    }
    await this.rollbackPinned();
    throw this.commitFailed(`a BEGIN TRANSACTION sent through query() left @@TRANCOUNT at ${String(level)}`, false);
  }

  /** Ends the open transaction with ROLLBACK; closing the session is the fallback. */
  private async rollbackPinned(): Promise<void> {
    this.state = 'finished';
    const session = this.session;
    if (!session) return;
    await this.rollbackSession(session);
  }

  private async rollbackSession(session: MssqlSession): Promise<void> {
    // After a lost connection or a timeout the session is not trusted with another request
    // (a ROLLBACK could hang as long again): closing it makes the server roll back.
    if (session.dead || this.failure?.class.kind === 'connection') {
      this.drop(true);
      return;
    }
    try {
      await session.rollback();
      this.drop(false);
      return;
    } catch (err) {
      const c = classifyMssqlError(err);
      if (c.kind === 'connection') {
        this.drop(true);
        return;
      }
      // Refused, typically because the server had already rolled back (deadlock victim): the
      // session can be reused only if it really holds no transaction any more.
      try {
        if ((await session.execute(TRANCOUNT)).rows[0]?.trancount === 0) {
          this.drop(false);
          return;
        }
      } catch {
        // fall through: close it
      }
      this.host.logger.warn({ err, participant: this.host.name }, 'ROLLBACK failed; closing the connection');
      this.drop(true);
    }
  }

  private drop(destroy: boolean): void {
    const session = this.session;
    if (!session) return;
    this.session = undefined;
    this.host.releaseSession(session, destroy || session.dead || this.failure?.class.kind === 'connection');
  }

  private usableSession(): MssqlSession {
    const session = this.session;
    if (this.state !== 'active' || !session) {
      throw new TxcError('TXC_TRANSACTION_CLOSED', `Branch ${xidKey(this.xid)} on ${this.host.name} is ${this.state}`, {
        details: { participant: this.host.name },
      });
    }
    const failed = this.failure;
    if (failed) {
      throw this.wrap(
        'TXC_QUERY_FAILED',
        `An earlier statement of ${xidKey(this.xid)} failed on participant ${this.host.name}, so the transaction can only roll back`,
        failed.class.retryable,
        failed.error,
        failed.class,
      );
    }
    return session;
  }

  private noteStatement(sql: string, rowCount: number): void {
    if (TRANSACTION_CONTROL.test(sql)) this.touchedTransactionControl = true;
    if (PLAIN_SELECT.test(sql) && !WRITING_WORD.test(sql)) return;
    if (DML.test(sql) && rowCount > 0) this.wrote = true;
    else this.maybeWrote = true;
  }

  private noteFailure(err: unknown, c: MssqlErrorClass = classifyMssqlError(err)): MssqlErrorClass {
    this.failure ??= { error: err, class: c };
    return c;
  }

  private unexpectedRow(table: string, what: string): TxcError {
    const err = new TxcError('TXC_QUERY_FAILED', `Participant ${this.host.name}: ${table} answered ${what}`, {
      details: { participant: this.host.name },
    });
    this.failure ??= { error: err, class: { kind: 'refused', retryable: false } };
    return err;
  }

  private commitFailed(why: string, retryable: boolean, cause?: unknown, c?: MssqlErrorClass): TxcError {
    return this.wrap('TXC_COMMIT_FAILED', `Participant ${this.host.name} did not commit ${xidKey(this.xid)}: ${why}`, retryable, cause, c);
  }

  private wrap(code: TxcErrorCode, fact: string, retryable: boolean, cause: unknown, c: MssqlErrorClass | undefined): TxcError {
    return new TxcError(code, fact, {
      cause,
      retryable,
      details: { participant: this.host.name, number: c?.number, code: c?.code },
    });
  }
}

function checkKey(field: string, value: unknown, maxLength: number): void {
  if (typeof value !== 'string' || value.length > maxLength || !PRINTABLE_ASCII.test(value)) {
    throw new TxcError('TXC_ID_INVALID', `${field} ${JSON.stringify(value)} must be 1-${maxLength} printable ASCII characters`, {
      details: { field },
    });
  }
}

function checkTag(field: string, value: unknown, allowed: readonly string[]): void {
  if (typeof value !== 'string' || !allowed.includes(value)) {
    throw new TxcError('TXC_ID_INVALID', `${field} ${JSON.stringify(value)} must be one of ${allowed.join(', ')}`, { details: { field } });
  }
}
