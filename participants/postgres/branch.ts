import type { Logger } from 'pino';
import { TxcError } from '../../coordinator/errors.js';
import { xidKey, type Xid } from '../../coordinator/xid.js';
import type { BarrierRow, Branch, MarkerOutcome, PrepareResult, QueryResult, ResolveResult } from '../participant.js';
import { barrierRow, markerRow, type BookkeepingRow } from '../bookkeeping.js';
import { BranchErrors } from '../branch-errors.js';
import { insertOrRead } from '../insert-or-read.js';
import { SerialQueue } from '../serial-queue.js';
import type { PgClient, PgResult } from './driver.js';
import { classifyPgError, type PgErrorClass } from './errors.js';
import { ASSIGNED_XID, BOOKKEEPING_ROWS, COMMIT, ROLLBACK, prepareSql } from './sql.js';

/** What a branch needs from the participant that started it. */
export interface PostgresBranchHost {
  readonly name: string;
  readonly logger: Logger;
  /** Commits or rolls back a prepared branch on `pinned`, or on a fresh pooled connection without one. */
  resolve(xid: Xid, action: 'commit' | 'rollback', pinned?: PgClient): Promise<ResolveResult>;
  /** Creates the bookkeeping tables if missing (from a pooled client, never the branch's own). */
  ensureBookkeeping(): Promise<void>;
}

type State =
  /** The transaction block is open on the pinned client. */
  | 'active'
  /** Prepared; the client stays pinned for phase two. */
  | 'prepared'
  /** The connection broke during PREPARE: the branch may or may not be prepared. */
  | 'in-doubt'
  | 'finished';

// Tags whose row count proves that rows were written. Anything else (SELECT calling a writing
// function, DDL, UPDATE of zero rows) is settled by asking the server whether it assigned an xid.
const DML = new Set(['INSERT', 'UPDATE', 'DELETE', 'MERGE', 'COPY']);

/**
 * One global transaction's work on one PostgreSQL client, pinned from BEGIN to PREPARE or COMMIT.
 * A `local` branch (beginLocal, or any branch of a local-only participant) is the same plain
 * transaction that only refuses to prepare.
 */
export class PostgresBranch implements Branch {
  private client: PgClient | undefined;
  private state: State = 'active';
  /** A statement certainly wrote rows. */
  private wrote = false;
  /** The last statement failed, so the block is (or is about to be) in the failed state. */
  private aborted = false;
  private lastFailure: { readonly error: unknown; readonly class: PgErrorClass } | undefined;
  /** The connection failed: nothing more can be sent on it. */
  private broken = false;
  private preparing = false;
  private readonly queue = new SerialQueue();
  private readonly errors: BranchErrors<PgErrorClass>;

  private readonly onClientError = (err: Error): void => {
    this.broken = true;
    this.host.logger.warn({ err, participant: this.host.name, xid: xidKey(this.xid) }, 'PostgreSQL branch connection failed');
  };

  constructor(
    readonly xid: Xid,
    client: PgClient,
    private readonly host: PostgresBranchHost,
    /** A local transaction: prepare() throws TXC_UNSUPPORTED. */
    readonly local = false,
  ) {
    this.client = client;
    this.errors = new BranchErrors(host.name, xid, classifyPgError, (c) => ({ sqlState: c?.sqlState, code: c?.code }));
    // pg-pool stops listening for errors on a checked-out client; without our own listener a
    // socket failure between statements would be an unhandled 'error' event.
    client.on('error', this.onClientError);
  }

  /** Runs one statement; statements of one branch run one at a time, in call order. */
  query(sql: string, params?: readonly unknown[]): Promise<QueryResult> {
    return this.queue.run(() => this.exec(sql, params));
  }

  /**
   * Inserts the commit marker in this transaction unless one exists, waiting for an uncommitted
   * one (READ COMMITTED, the default, then reads its committed outcome). Counts as a write.
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

  /** One statement on the pinned client, in the serial queue. */
  private async exec(sql: string, params?: readonly unknown[]): Promise<QueryResult> {
    const client = this.client;
    if (this.state !== 'active' || !client) throw this.errors.closed(this.state);
    let out: PgResult | PgResult[];
    try {
      out = await client.query(sql, params === undefined ? undefined : [...params]);
    } catch (err) {
      throw this.errors.queryFailed(err, this.noteFailure(err));
    }
    // A success arrives with ReadyForQuery, so the status is current here; a ROLLBACK TO
    // SAVEPOINT may have recovered from an earlier failure.
    this.aborted = client.getTransactionStatus() === 'E';
    const results = Array.isArray(out) ? out : [out];
    if (results.some((r) => DML.has(r.command) && (r.rowCount ?? 0) > 0)) this.wrote = true;
    const last = results[results.length - 1];
    return { rows: last?.rows ?? [], rowCount: last ? (last.rowCount ?? last.rows.length) : 0 };
  }

  /** The insert-or-read of a bookkeeping row, on the pinned client (see insertOrRead). */
  private async insertOnce<T extends string>(row: BookkeepingRow<T>): Promise<'inserted' | T> {
    if (this.state !== 'active' || !this.client) throw this.errors.closed(this.state);
    await this.host.ensureBookkeeping();
    // Even a row that was already there counts: the branch must be committed, not skipped as read-only.
    this.wrote = true;
    return insertOrRead({
      participant: this.host.name,
      row: row.row,
      column: row.column,
      accept: row.accept,
      tryInsert: async () => (await this.exec(...row.insert)).rows.length > 0,
      readExisting: async () => (await this.exec(...row.select)).rows[0]?.[row.column],
    });
  }

  /**
   * True after a DML result that wrote rows; otherwise asks whether the server assigned the
   * transaction an xid, which every write does. A failed, broken or ended branch answers true
   * so that prepare runs and reports the failure instead of it passing as read-only.
   */
  hasWritten(): Promise<boolean> {
    return this.queue.run(async () => {
      if (this.wrote) return true;
      const client = this.client;
      if (this.state !== 'active' || !client || this.broken || this.aborted) return true;
      if (client.getTransactionStatus() !== 'T') return true;
      try {
        const txid = lastOf(await client.query(ASSIGNED_XID))?.rows[0]?.txid;
        this.wrote = txid !== null && txid !== undefined;
        return this.wrote;
      } catch (err) {
        this.noteFailure(err);
        this.host.logger.warn({ err, participant: this.host.name }, 'write check failed; treating the branch as written');
        return true;
      }
    });
  }

  /** PREPARE TRANSACTION; the client stays pinned for phase two. A local branch throws TXC_UNSUPPORTED and stays open. */
  prepare(): Promise<PrepareResult> {
    if (this.local) {
      return Promise.reject(
        new TxcError('TXC_UNSUPPORTED', `Participant ${this.host.name} cannot prepare ${xidKey(this.xid)}: it is a local transaction`, {
          details: { participant: this.host.name, operation: 'prepare' },
        }),
      );
    }
    return this.queue.run(async () => {
      const client = this.client;
      if (this.state !== 'active' || !client) throw this.errors.prepareFailed(`the branch is ${this.state}`, false);
      if (this.broken) {
        this.state = 'finished';
        this.dropClient(true);
        throw this.errors.prepareFailed('its connection broke', true);
      }
      if (this.aborted) {
        await this.rollbackPinned();
        const failure = this.lastFailure;
        throw this.errors.prepareFailed('a statement failed earlier in the transaction', failure?.class.retryable ?? false, failure?.error, failure?.class);
      }
      if (client.getTransactionStatus() !== 'T') {
        // A COMMIT or ROLLBACK sent through query() ended the block: there is nothing left to prepare.
        this.state = 'finished';
        this.dropClient(false);
        throw this.errors.prepareFailed('its transaction block was ended by a statement sent through query()', false);
      }
      this.preparing = true;
      let out: PgResult | PgResult[];
      try {
        out = await client.query(prepareSql(this.xid));
      } catch (err) {
        const c = classifyPgError(err);
        if (c.kind === 'connection' || this.client !== client) {
          // PREPARE may have run before the connection died: not a refusal, so not
          // TXC_PREPARE_FAILED. The coordinator then rolls back by gid from fresh connections.
          this.broken = true;
          if (this.state === 'active') this.state = 'in-doubt';
          this.dropClient(true);
          throw this.errors.inDoubt('PREPARE', err, c);
        }
        // Refused (25P02, 0A000 temporary objects, 40001…): nothing was prepared and the block is still open.
        await this.rollbackPinned();
        throw this.errors.prepareFailed('the database refused to prepare', c.retryable && c.kind !== 'busy', err, c);
      } finally {
        this.preparing = false;
      }
      // Released while PREPARE was in flight: release() marked the branch in doubt and the
      // coordinator has moved on to rolling it back by gid; leave that to it.
      if (this.client !== client) throw this.errors.inDoubt('PREPARE', undefined, undefined);
      const results = Array.isArray(out) ? out : [out];
      const tag = results[results.length - 1]?.command;
      if (tag !== 'PREPARE') {
        // The silent-rollback trap: PREPARE answered ROLLBACK, prepared nothing, and the work is gone.
        this.state = 'finished';
        this.dropClient(false);
        throw this.errors.prepareFailed(`PREPARE TRANSACTION answered ${String(tag)} and prepared nothing`, false);
      }
      this.state = 'prepared';
      // Any session could finish the branch now, but the pinned client is kept for phase two:
      // taking a pooled one then could wait forever, when every pooled client is blocked on the
      // row locks this prepared branch holds (a pool-exhaustion deadlock, seen under contention).
      const txid = results[0]?.rows[0]?.txid;
      return typeof txid === 'string' ? { localTxId: txid } : {};
    });
  }

  /** COMMIT PREPARED from a pooled client; throws a retryable TxcError on transient failures. */
  commitPrepared(): Promise<ResolveResult> {
    return this.queue.run(async () => {
      if (this.state !== 'prepared') {
        throw this.errors.closed(`${this.state}, not prepared`);
      }
      const result = await this.finishPrepared('commit');
      this.state = 'finished';
      return result;
    });
  }

  /** COMMIT on the pinned client; a block that had failed answers ROLLBACK, which is a failure. */
  commitOnePhase(): Promise<void> {
    return this.queue.run(async () => {
      const client = this.client;
      if (this.state !== 'active' || !client) throw this.errors.commitFailed(`the branch is ${this.state}`, false);
      if (this.broken) {
        // The server ends a transaction whose session is gone by rolling it back.
        this.state = 'finished';
        this.dropClient(true);
        throw this.errors.commitFailed('its connection broke before COMMIT', true);
      }
      this.state = 'finished';
      let out: PgResult | PgResult[];
      try {
        out = await client.query(COMMIT);
      } catch (err) {
        const c = this.noteFailure(err);
        this.dropClient(true);
        if (c.kind === 'connection') {
          throw new TxcError('TXC_OUTCOME_UNKNOWN', `The connection to ${this.host.name} was lost during COMMIT`, {
            cause: err,
            details: this.errors.details(c),
          });
        }
        // Refused at commit (deferred constraint, serialization failure): rolled back.
        throw this.errors.commitFailed('the database refused to commit', c.retryable, err, c);
      }
      const tag = lastOf(out)?.command;
      this.dropClient(false);
      if (tag !== 'COMMIT') {
        const failure = this.lastFailure;
        throw this.errors.commitFailed(
          `COMMIT answered ${String(tag)}: a statement had failed, so the transaction was rolled back`,
          failure?.class.retryable ?? false,
          failure?.error,
          failure?.class,
        );
      }
    });
  }

  /** ROLLBACK before prepare, ROLLBACK PREPARED after; a finished branch is left alone. */
  rollback(): Promise<void> {
    return this.queue.run(async () => {
      if (this.state === 'active') {
        await this.rollbackPinned();
      } else if (this.state === 'prepared' || this.state === 'in-doubt') {
        await this.finishPrepared('rollback');
        this.state = 'finished';
      }
    });
  }

  /**
   * Gives the pinned client back, or closes it when it is not idle and healthy (which also
   * makes the server roll back an open block). Idempotent. Released during PREPARE, the branch
   * is in doubt and rollback() finishes it by gid.
   */
  release(destroy = false): void {
    if (this.preparing) this.state = 'in-doubt';
    else if (this.state === 'active') this.state = 'finished';
    this.dropClient(destroy);
    // Later calls (rollback by gid) must not queue behind a statement on the closed connection.
    this.queue.reset();
  }

  /** Phase two on the pinned client while it is healthy; the client is released either way. */
  private async finishPrepared(action: 'commit' | 'rollback'): Promise<ResolveResult> {
    const pinned = this.broken ? undefined : this.client;
    try {
      const result = await this.host.resolve(this.xid, action, pinned);
      this.dropClient(false);
      return result;
    } catch (err) {
      this.dropClient(true);
      throw err;
    }
  }

  private dropClient(destroy: boolean): void {
    const client = this.client;
    if (!client) return;
    this.client = undefined;
    client.removeListener('error', this.onClientError);
    // Only an idle, healthy session is reused, so no later user inherits a transaction.
    const reuse = !destroy && !this.broken && !this.aborted && client.getTransactionStatus() === 'I';
    try {
      client.release(reuse ? undefined : true);
    } catch (err) {
      this.host.logger.warn({ err, participant: this.host.name }, 'releasing a PostgreSQL client failed');
    }
  }

  private async rollbackPinned(): Promise<void> {
    this.state = 'finished';
    const client = this.client;
    if (!client || this.broken) {
      this.dropClient(true);
      return;
    }
    try {
      await client.query(ROLLBACK);
      this.aborted = false;
      this.dropClient(false);
    } catch (err) {
      // Closing the session rolls the block back as well.
      this.host.logger.warn({ err, participant: this.host.name }, 'ROLLBACK failed; closing the connection');
      this.dropClient(true);
    }
  }

  private noteFailure(err: unknown): PgErrorClass {
    const c = classifyPgError(err);
    this.aborted = true;
    this.lastFailure = { error: err, class: c };
    if (c.kind === 'connection') this.broken = true;
    return c;
  }
}

function lastOf(out: PgResult | PgResult[]): PgResult | undefined {
  return Array.isArray(out) ? out[out.length - 1] : out;
}
