import type { Logger } from 'pino';
import { TxcError } from '../../coordinator/errors.js';
import type { Xid } from '../../coordinator/xid.js';
import type { BarrierRow, Branch, MarkerOutcome, PrepareResult, QueryResult, ResolveResult } from '../participant.js';
import { barrierRow, markerRow, type BookkeepingRow } from '../bookkeeping.js';
import type { PgliteDriver, PgliteResults } from './driver.js';
import { classifyPgliteError, fact, queryFailed, transactionClosed, wrapPgliteError } from './errors.js';
import type { Lease } from './lock.js';
import * as sql from './sql.js';

/** What a branch needs from its participant. */
export interface BranchContext {
  readonly participant: string;
  readonly driver: PgliteDriver;
  readonly logger: Logger;
  /** Called when the branch lets go of the connection while its transaction is still prepared. */
  leftPrepared(xid: Xid): void;
  /** A local transaction (beginLocal, or a local-only participant): prepare() throws TXC_UNSUPPORTED. */
  readonly local: boolean;
  /** Whether the participant has ensured the bookkeeping tables (it cannot while this branch holds the connection). */
  bookkeepingReady(): boolean;
}

/**
 * `detached`: released while prepared; the prepared transaction lives on and only the
 * participant's recovery calls may resolve it.
 */
type BranchState = 'active' | 'prepared' | 'finished' | 'detached';

/**
 * One global transaction's work on the single PGlite connection. The branch holds the
 * connection lease from BEGIN until phase two ends: on one connection, any other statement
 * touching a row of a prepared transaction would wait for a lock nobody else can release, and
 * in PGlite that wait spins inside WASM and freezes the whole process.
 */
export class PgliteBranch implements Branch {
  readonly xid: Xid;
  readonly #ctx: BranchContext;
  #lease: Lease | undefined;
  #state: BranchState = 'active';
  #wrote = false;

  /** Takes ownership of `lease`; BEGIN has already run. */
  constructor(xid: Xid, ctx: BranchContext, lease: Lease) {
    this.xid = xid;
    this.#ctx = ctx;
    this.#lease = lease;
  }

  /** Runs one statement; rejects statements that end the transaction block themselves. */
  async query(text: string, params: readonly unknown[] = []): Promise<QueryResult> {
    this.#expect('active', 'run a statement in');
    const { driver, participant } = this.#ctx;
    let result;
    try {
      result = await driver.query(text, [...params]);
    } catch (err) {
      throw queryFailed(participant, err);
    }
    if (!driver.isInTransaction()) {
      // A COMMIT/ROLLBACK/PREPARE TRANSACTION sent as a statement: the branch no longer owns a
      // transaction, so prepare/commit must not report success later.
      if (result.command === sql.PREPARE_TAG) this.#ctx.leftPrepared(this.xid);
      throw new TxcError(
        'TXC_QUERY_FAILED',
        fact(
          participant,
          `statement ${result.command ?? ''} ended the branch's transaction block (its work may already be committed); ` +
            'never send COMMIT, ROLLBACK or PREPARE TRANSACTION through tx.query',
        ),
        { details: { participant, command: result.command } },
      );
    }
    const dml = result.command !== undefined && sql.DML_TAGS.has(result.command);
    const rowCount = dml ? (result.affectedRows ?? result.rows.length) : result.rows.length;
    if (dml && rowCount > 0) this.#wrote = true;
    return { rows: result.rows, rowCount };
  }

  /** Inserts the commit marker in this transaction unless one exists; 'inserted' or the existing outcome. Counts as a write. */
  async insertMarker(gtrid: string, outcome: MarkerOutcome): Promise<'inserted' | MarkerOutcome> {
    return this.#insertOnce(markerRow(this.#ctx.participant, sql.BOOKKEEPING_ROWS, gtrid, outcome));
  }

  /** Inserts the barrier row unless its key exists; 'inserted' or the existing row's origin. Counts as a write. */
  async insertBarrier(row: BarrierRow): Promise<'inserted' | BarrierRow['origin']> {
    return this.#insertOnce(barrierRow(this.#ctx.participant, sql.BOOKKEEPING_ROWS, row));
  }

  /** True after a DML statement changed rows; otherwise asks whether a transaction id was assigned. */
  async hasWritten(): Promise<boolean> {
    if (this.#wrote) return true;
    this.#expect('active', 'inspect');
    let result;
    try {
      result = await this.#ctx.driver.query(sql.XACT_ID_IF_ASSIGNED);
    } catch (err) {
      throw queryFailed(this.#ctx.participant, err);
    }
    const xid = result.rows[0]?.['xid'];
    this.#wrote = xid !== null && xid !== undefined;
    return this.#wrote;
  }

  /**
   * PREPARE TRANSACTION, requiring the tag 'PREPARE'; on any failure the branch is rolled back.
   * A local branch throws TXC_UNSUPPORTED and stays open.
   */
  async prepare(): Promise<PrepareResult> {
    if (this.#ctx.local) {
      throw new TxcError('TXC_UNSUPPORTED', fact(this.#ctx.participant, 'cannot prepare: the branch is a local transaction'), {
        details: { participant: this.#ctx.participant, operation: 'prepare' },
      });
    }
    this.#expect('active', 'prepare');
    const { driver, participant } = this.#ctx;
    if (!driver.isInTransaction()) {
      await this.#abort();
      throw new TxcError('TXC_PREPARE_FAILED', fact(participant, 'the branch has no open transaction'), {
        details: { participant },
      });
    }
    let localTxId: unknown;
    try {
      // Fails with 25P02 in a failed transaction, before anything is prepared.
      localTxId = (await driver.query(sql.CURRENT_XACT_ID)).rows[0]?.['xid'];
    } catch (err) {
      await this.#abort();
      throw wrapPgliteError('TXC_PREPARE_FAILED', participant, fact(participant, 'the transaction had failed'), err);
    }
    let result;
    try {
      result = await driver.query(sql.prepareTransaction(this.xid));
    } catch (err) {
      await this.#abort();
      throw wrapPgliteError('TXC_PREPARE_FAILED', participant, fact(participant, 'PREPARE TRANSACTION failed'), err);
    }
    if (result.command !== sql.PREPARE_TAG) {
      // PostgreSQL's silent path: a failed transaction "prepares" by rolling back.
      this.#finish();
      throw new TxcError(
        'TXC_PREPARE_FAILED',
        fact(
          participant,
          `PREPARE TRANSACTION answered ${result.command ?? 'no tag'}, so nothing was prepared (a statement of the branch had failed)`,
        ),
        { details: { participant, command: result.command } },
      );
    }
    this.#state = 'prepared';
    // No durability step here: the WAL is written to the OS before PGlite resolves (docs/pglite-durability.md).
    return typeof localTxId === 'string' ? { localTxId } : {};
  }

  /** COMMIT PREPARED on the lease it prepared with; an unknown gid is 'unknown'. */
  async commitPrepared(): Promise<ResolveResult> {
    this.#expect('prepared', 'commit');
    try {
      await this.#ctx.driver.query(sql.commitPrepared(this.xid));
    } catch (err) {
      if (classifyPgliteError(err).kind === 'unknown-xid') {
        this.#finish();
        return 'unknown';
      }
      // Still prepared and still holding the lease: the coordinator may retry, or release.
      throw queryFailed(this.#ctx.participant, err);
    }
    this.#finish();
    return 'done';
  }

  /** COMMIT, requiring the tag 'COMMIT' (a failed transaction's COMMIT answers 'ROLLBACK'). */
  async commitOnePhase(): Promise<void> {
    this.#expect('active', 'commit');
    const { driver, participant } = this.#ctx;
    if (!driver.isInTransaction()) {
      this.#finish();
      throw new TxcError('TXC_COMMIT_FAILED', fact(participant, 'the branch has no open transaction'), {
        details: { participant },
      });
    }
    let result;
    try {
      result = await driver.query(sql.COMMIT);
    } catch (err) {
      if (classifyPgliteError(err).kind === 'broken') {
        this.#finish();
        throw wrapPgliteError('TXC_OUTCOME_UNKNOWN', participant, fact(participant, 'the instance failed during COMMIT'), err);
      }
      // A refused COMMIT (deferred constraint, serialization failure) rolls the transaction back.
      await this.#abort();
      throw wrapPgliteError('TXC_COMMIT_FAILED', participant, fact(participant, 'COMMIT failed'), err);
    }
    this.#finish();
    if (result.command !== sql.COMMIT_TAG) {
      throw new TxcError(
        'TXC_COMMIT_FAILED',
        fact(
          participant,
          `COMMIT answered ${result.command ?? 'no tag'}, so the transaction was rolled back (a statement of the branch had failed)`,
        ),
        { details: { participant, command: result.command } },
      );
    }
  }

  /** ROLLBACK or ROLLBACK PREPARED; a no-op once the branch has finished. */
  async rollback(): Promise<void> {
    if (this.#state === 'finished') return;
    this.#expect(this.#state === 'prepared' ? 'prepared' : 'active', 'roll back');
    const { driver, participant } = this.#ctx;
    if (this.#state === 'active') {
      try {
        await driver.query(sql.ROLLBACK);
      } catch (err) {
        throw queryFailed(participant, err);
      } finally {
        this.#finish();
      }
      return;
    }
    try {
      await driver.query(sql.rollbackPrepared(this.xid));
    } catch (err) {
      if (classifyPgliteError(err).kind !== 'unknown-xid') throw queryFailed(participant, err);
    }
    this.#finish();
  }

  /** Frees the connection; an open transaction is rolled back first, a prepared one is left for recovery. */
  release(_destroy?: boolean): void {
    const lease = this.#lease;
    if (!lease) return;
    this.#lease = undefined;
    const { driver, logger, participant } = this.#ctx;
    if (this.#state === 'active') {
      this.#state = 'finished';
      // The next holder must not start inside this transaction, so roll back before handing over
      // (inside the promise chain, so a failure can only be logged, never thrown from release).
      void Promise.resolve()
        .then(() => (driver.isInTransaction() ? driver.query(sql.ROLLBACK) : undefined))
        .catch((err: unknown) => logger.error({ err, participant }, 'rollback of a released PGlite branch failed'))
        .finally(() => lease.release());
      return;
    }
    if (this.#state === 'prepared') {
      this.#state = 'detached';
      logger.warn({ participant, xid: this.xid }, 'PGlite branch released while prepared: new work waits for recovery');
      this.#ctx.leftPrepared(this.xid);
    }
    lease.release();
  }

  /** The insert-or-read of a bookkeeping row (on one connection nothing can come between the two). */
  async #insertOnce<T extends string>({ insert, select, column, accept }: BookkeepingRow<T>): Promise<'inserted' | T> {
    this.#expect('active', 'write a bookkeeping row in');
    if (!this.#ctx.bookkeepingReady()) {
      // The participant's ensureBookkeeping would wait for the connection this branch holds.
      // PostgreSQL DDL is transactional and nobody else can run: create them in this transaction.
      await this.#run(sql.CREATE_MARKERS);
      await this.#run(sql.CREATE_BARRIER);
    }
    this.#wrote = true;
    if ((await this.#run(...insert)).rows.length > 0) return 'inserted';
    const found = (await this.#run(...select)).rows[0]?.[column];
    if (accept(found)) return found;
    throw new TxcError('TXC_QUERY_FAILED', fact(this.#ctx.participant, `a bookkeeping row holds the unexpected ${column} ${JSON.stringify(found)}`), {
      details: { participant: this.#ctx.participant },
    });
  }

  async #run(text: string, params?: unknown[]): Promise<PgliteResults> {
    try {
      return await this.#ctx.driver.query(text, params);
    } catch (err) {
      throw queryFailed(this.#ctx.participant, err);
    }
  }

  /** Rolls back whatever is open (errors only logged: the caller is already failing) and finishes. */
  async #abort(): Promise<void> {
    const { driver, logger, participant } = this.#ctx;
    try {
      if (driver.isInTransaction()) await driver.query(sql.ROLLBACK);
    } catch (err) {
      logger.error({ err, participant }, 'rollback after a failed PGlite prepare/commit failed');
    }
    this.#finish();
  }

  #finish(): void {
    this.#state = 'finished';
    const lease = this.#lease;
    this.#lease = undefined;
    lease?.release();
  }

  #expect(state: BranchState, operation: string): void {
    if (this.#state !== state) throw transactionClosed(this.#ctx.participant, operation, this.#state);
  }
}
