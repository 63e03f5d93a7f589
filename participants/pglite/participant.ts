import type { Logger } from 'pino';
import { TxcError } from '../../coordinator/errors.js';
import { fromPgGid, type Xid } from '../../coordinator/xid.js';
import type { BarrierRange, Branch, Capabilities, LocalTxStatus, MarkerRow, Participant, ResolveResult } from '../participant.js';
import { checkBarrierRange, checkGtrid, isMarkerOutcome, markerPrefixPattern } from '../bookkeeping.js';
import { PgliteBranch } from './branch.js';
import type { PgliteDriver, PgliteOpener } from './driver.js';
import { classifyPgliteError, fact, poolTimeout, queryFailed, recoveryRequired, unavailable } from './errors.js';
import { ConnectionLock, type Lease } from './lock.js';
import * as sql from './sql.js';

/** Everything a {@link PgliteParticipant} needs, validated by the factory. */
export interface PgliteParticipantOptions {
  readonly name: string;
  readonly dataDir: string;
  readonly maxPreparedTransactions: number;
  readonly acquireTimeoutMs: number;
  readonly logger: Logger;
  /** Opens the instance; the real one is `openPglite`, unit tests pass a fake. */
  readonly open: PgliteOpener;
  /** Local transactions only (no PREPARE TRANSACTION): the participant is then one-phase. */
  readonly localOnly?: boolean;
}

/** Prepared transactions found in the database: all of them block new work. */
interface PreparedCount {
  readonly total: number;
  /** Gids that are not txcoord's, which recovery will never resolve. */
  readonly foreign: number;
}

const NONE: PreparedCount = { total: 0, foreign: 0 };

const STATUS: ReadonlyMap<unknown, LocalTxStatus> = new Map([
  ['committed', 'committed'],
  ['aborted', 'aborted'],
  ['in progress', 'in-progress'],
]);

/**
 * An embedded PostgreSQL (PGlite) participant. The instance opens lazily, once, on first use;
 * every operation, recovery included, holds the single connection's FIFO lock; while any
 * prepared transaction exists (found at open, or left by a released branch) `begin` refuses
 * with TXC_RECOVERY_REQUIRED, because a statement waiting for such a transaction's lock would
 * spin forever inside WASM. With `localOnly` it only runs local transactions.
 */
export class PgliteParticipant implements Participant {
  readonly name: string;
  readonly driver = 'pglite';
  readonly capabilities: Capabilities;
  readonly #options: PgliteParticipantOptions;
  readonly #lock = new ConnectionLock();
  #opening: Promise<PgliteDriver> | undefined;
  #closing: Promise<void> | undefined;
  #prepared: PreparedCount = NONE;
  /** The bookkeeping tables are there (or being checked): once per instance. */
  #bookkeeping: Promise<void> | undefined;
  #bookkeepingReady = false;

  /** Opens nothing yet: see {@link preflight}. */
  constructor(options: PgliteParticipantOptions) {
    this.name = options.name;
    this.#options = options;
    this.capabilities = { twoPhase: options.localOnly !== true, localTransactions: true };
  }

  /**
   * Opens the instance (first use pays PGlite's start) and checks 2PC is enabled; local-only:
   * opens it and ensures the bookkeeping tables (left for later while recovery is required).
   */
  async preflight(): Promise<void> {
    if (this.#options.localOnly) {
      await this.#driver();
      this.#warnIfPrepared();
      try {
        await this.ensureBookkeeping();
      } catch (err) {
        // Created lazily by the first bookkeeping call once recovery has run.
        if (!TxcError.is(err, 'TXC_RECOVERY_REQUIRED')) throw err;
      }
      return;
    }
    const max = await this.#withConnection(async (driver) => {
      const row = (await this.#run(driver, sql.SHOW_MAX_PREPARED)).rows[0];
      return Number(row?.['max_prepared_transactions']);
    });
    if (!(max > 0)) {
      throw new TxcError(
        'TXC_PREPARED_TRANSACTIONS_DISABLED',
        fact(this.name, `started with max_prepared_transactions = ${max}; set maxPreparedTransactions to at least 1`),
        { details: { participant: this.name } },
      );
    }
    this.#warnIfPrepared();
  }

  /** Takes the connection (waiting up to acquireTimeoutMs) and runs BEGIN; local-only: {@link beginLocal}. */
  async begin(xid: Xid): Promise<Branch> {
    if (this.#options.localOnly) return this.beginLocal(xid);
    return this.#begin(xid, false);
  }

  /**
   * A plain local transaction (it never prepares), for commit markers and saga barrier rows,
   * under the same connection lock and recovery gate as `begin`. The bookkeeping tables are
   * ensured first, since the branch will hold the only connection.
   */
  async beginLocal(xid: Xid): Promise<Branch> {
    await this.ensureBookkeeping();
    return this.#begin(xid, true);
  }

  /**
   * Creates txcoord_markers and txcoord_barrier unless both exist; once per instance, retried
   * after a failure. While prepared transactions exist it refuses (TXC_RECOVERY_REQUIRED) to
   * create them: one of those could hold the same names, and waiting for it would hang.
   */
  ensureBookkeeping(): Promise<void> {
    this.#bookkeeping ??= this.#withConnection((driver) => this.#createBookkeeping(driver)).then(
      () => {
        this.#bookkeepingReady = true;
      },
      (err: unknown) => {
        this.#bookkeeping = undefined;
        throw err;
      },
    );
    return this.#bookkeeping;
  }

  /** Marker rows whose gtrid starts with `prefix`, oldest first (a plain read: it never waits for locks). */
  async listMarkers(prefix: string, limit: number): Promise<MarkerRow[]> {
    const pattern = markerPrefixPattern(this.name, prefix, limit);
    await this.ensureBookkeeping();
    const rows = await this.#withConnection(async (driver) => (await this.#run(driver, sql.LIST_MARKERS, [pattern, limit])).rows);
    const markers: MarkerRow[] = [];
    for (const row of rows) {
      const gtrid = row['gtrid'];
      const outcome = row['outcome'];
      const createdAt = Number(row['created_ms']);
      if (typeof gtrid === 'string' && isMarkerOutcome(outcome) && Number.isFinite(createdAt)) markers.push({ gtrid, outcome, createdAt });
      else this.#options.logger.warn({ participant: this.name, gtrid }, 'skipping a txcoord_markers row that txcoord did not write');
    }
    return markers;
  }

  /** Deletes these marker rows (autocommit); refused while recovery is required, as a DELETE could wait on a prepared row. */
  async deleteMarkers(gtrids: readonly string[]): Promise<void> {
    for (const gtrid of gtrids) checkGtrid(this.name, gtrid);
    if (gtrids.length === 0) return;
    await this.ensureBookkeeping();
    await this.#withConnection(async (driver) => {
      if (this.#prepared.total > 0) throw recoveryRequired(this.name, this.#prepared.total, this.#prepared.foreign);
      await this.#run(driver, sql.DELETE_MARKERS, [[...gtrids]]);
    });
  }

  /** Deletes the barrier rows in `range` (autocommit); refused while recovery is required, as for markers. */
  async deleteBarriers(range: BarrierRange): Promise<number> {
    checkBarrierRange(this.name, range);
    return this.#withConnection(async (driver) => {
      if ((await this.#run(driver, sql.BARRIER_EXISTS)).rows[0]?.['present'] !== true) return 0;
      if (this.#prepared.total > 0) throw recoveryRequired(this.name, this.#prepared.total, this.#prepared.foreign);
      return (await this.#run(driver, sql.DELETE_BARRIERS, [range.from, range.before])).affectedRows ?? 0;
    });
  }

  async #begin(xid: Xid, local: boolean): Promise<Branch> {
    const driver = await this.#driver();
    const lease = await this.#acquire();
    try {
      if (this.#prepared.total > 0) throw recoveryRequired(this.name, this.#prepared.total, this.#prepared.foreign);
      if (driver.isInTransaction()) {
        // Should never happen (branches roll back before releasing), but starting inside
        // someone else's transaction would silently merge the two.
        this.#options.logger.error({ participant: this.name }, 'PGlite connection left inside a transaction; rolling back');
        await this.#run(driver, sql.ROLLBACK);
      }
      await this.#run(driver, sql.BEGIN);
    } catch (err) {
      lease.release();
      throw err;
    }
    const ctx = {
      participant: this.name,
      driver,
      logger: this.#options.logger,
      leftPrepared: () => this.#leftPrepared(),
      local,
      bookkeepingReady: () => this.#bookkeepingReady,
    };
    return new PgliteBranch(xid, ctx, lease);
  }

  /**
   * Prepared branches whose gid is txcoord's; also refreshes the recovery-required state.
   * Local-only too: transactions prepared before the switch still block this single connection
   * and must be resolved.
   */
  async listInDoubt(): Promise<Xid[]> {
    return this.#withConnection((driver) => this.#refreshPrepared(driver));
  }

  /** COMMIT PREPARED from recovery or a retry; an unknown gid is 'unknown'. */
  async commitPrepared(xid: Xid): Promise<ResolveResult> {
    return this.#resolve(sql.commitPrepared(xid));
  }

  /** ROLLBACK PREPARED from recovery or a retry; an unknown gid is 'unknown'. */
  async rollbackPrepared(xid: Xid): Promise<ResolveResult> {
    return this.#resolve(sql.rollbackPrepared(xid));
  }

  /** `pg_xact_status` of the id `prepare` returned; ids PostgreSQL cannot judge are 'unknown'. */
  async localStatus(localTxId: string): Promise<LocalTxStatus> {
    return this.#withConnection(async (driver) => {
      let status: unknown;
      try {
        status = (await driver.query(sql.XACT_STATUS, [localTxId])).rows[0]?.['status'];
      } catch (err) {
        // 22023 (an id from the future, i.e. another database) and 22P02 (not an id): no verdict.
        const state = classifyPgliteError(err).sqlState;
        if (state === '22023' || state === '22P02') return 'unknown';
        throw queryFailed(this.name, err);
      }
      return STATUS.get(status) ?? 'unknown';
    });
  }

  /** Waits for the connection (up to acquireTimeoutMs, then closes anyway) and closes PGlite. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    const opening = this.#opening;
    if (!opening) return;
    const driver = await opening.catch(() => undefined);
    if (!driver) return;
    const lease = await this.#lock.acquire(this.#options.acquireTimeoutMs);
    if (!lease) {
      this.#options.logger.warn({ participant: this.name }, 'closing PGlite while a transaction still holds its connection');
    }
    try {
      await driver.close();
    } finally {
      lease?.release();
    }
  }

  async #resolve(statement: string): Promise<ResolveResult> {
    return this.#withConnection(async (driver) => {
      let result: ResolveResult = 'done';
      try {
        await driver.query(statement);
      } catch (err) {
        if (classifyPgliteError(err).kind !== 'unknown-xid') throw queryFailed(this.name, err);
        result = 'unknown';
      }
      // Cheap re-check, only while gated: the last resolution re-opens `begin`.
      if (this.#prepared.total > 0) await this.#refreshPrepared(driver);
      return result;
    });
  }

  /** Reads pg_prepared_xacts into the recovery-required state; returns txcoord's xids. */
  async #refreshPrepared(driver: PgliteDriver): Promise<Xid[]> {
    const rows = (await this.#run(driver, sql.LIST_PREPARED)).rows;
    const xids: Xid[] = [];
    for (const row of rows) {
      const xid = typeof row['gid'] === 'string' ? fromPgGid(row['gid']) : undefined;
      if (xid) xids.push(xid);
    }
    this.#prepared = { total: rows.length, foreign: rows.length - xids.length };
    return xids;
  }

  async #createBookkeeping(driver: PgliteDriver): Promise<void> {
    if ((await this.#run(driver, sql.BOOKKEEPING_EXISTS)).rows[0]?.['present'] === true) return;
    if (this.#prepared.total > 0) throw recoveryRequired(this.name, this.#prepared.total, this.#prepared.foreign);
    await this.#run(driver, sql.CREATE_MARKERS);
    await this.#run(driver, sql.CREATE_BARRIER);
  }

  #warnIfPrepared(): void {
    if (this.#prepared.total > 0) {
      const { total: prepared } = this.#prepared;
      this.#options.logger.warn({ participant: this.name, prepared }, 'PGlite holds prepared transactions: recovery required');
    }
  }

  #leftPrepared(): void {
    // The exact count comes back with the next listInDoubt or resolution.
    this.#prepared = { total: this.#prepared.total + 1, foreign: this.#prepared.foreign };
  }

  async #withConnection<T>(fn: (driver: PgliteDriver) => Promise<T>): Promise<T> {
    const driver = await this.#driver();
    const lease = await this.#acquire();
    try {
      return await fn(driver);
    } finally {
      lease.release();
    }
  }

  async #acquire(): Promise<Lease> {
    const lease = await this.#lock.acquire(this.#options.acquireTimeoutMs);
    if (!lease) throw poolTimeout(this.name, this.#options.acquireTimeoutMs);
    if (this.#closing) {
      lease.release();
      throw unavailable(this.name, 'the participant is closed');
    }
    return lease;
  }

  /** The instance, opened once; concurrent first callers share the same open. */
  #driver(): Promise<PgliteDriver> {
    if (this.#closing) return Promise.reject(unavailable(this.name, 'the participant is closed'));
    this.#opening ??= this.#open().catch((err: unknown) => {
      // Let a later call try again (the directory may have been fixed).
      this.#opening = undefined;
      throw err;
    });
    return this.#opening;
  }

  async #open(): Promise<PgliteDriver> {
    const { dataDir, maxPreparedTransactions, open, logger } = this.#options;
    let driver: PgliteDriver;
    try {
      driver = await open({ dataDir, maxPreparedTransactions });
    } catch (err) {
      throw unavailable(
        this.name,
        `PGlite did not start on ${dataDir}, see cause (with prepared transactions pending, ` +
          'maxPreparedTransactions must be at least their number)',
        err,
      );
    }
    try {
      // Nobody else has the instance yet, so no lock is needed for this first look.
      await this.#refreshPrepared(driver);
    } catch (err) {
      await driver.close().catch(() => undefined);
      throw unavailable(this.name, 'could not read pg_prepared_xacts after opening', err);
    }
    if (this.#prepared.total > 0) {
      logger.warn({ participant: this.name, ...this.#prepared }, 'PGlite opened with prepared transactions: begin waits for recovery');
    }
    return driver;
  }

  async #run(driver: PgliteDriver, statement: string, params?: unknown[]): Promise<{ rows: Record<string, unknown>[]; affectedRows?: number }> {
    try {
      return await driver.query(statement, params);
    } catch (err) {
      throw queryFailed(this.name, err);
    }
  }
}
