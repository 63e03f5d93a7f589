import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { TxcError } from '../../coordinator/errors.js';
import { gtridPrefix } from '../../coordinator/xid.js';
import type { SharedDecisionLog, TakeOver } from '../decision-log.js';
import type { LogRecord } from '../log-record.js';
import { compactEnded } from './compact-ended.js';
import { GroupCommit, type BatchOutcome, type QueuedItem } from './group-commit.js';
import { expireLeases, ownersOf, renewLeases, type Renewed } from './instance-lease.js';
import { LiveView } from './live-view.js';
import { IdentityLostError, type LogIdentity } from './log-identity.js';
import type { LogPool } from './log-pool.js';
import type { LogTables } from './log-tables.js';
import { LogTransactionError } from './log-transaction.js';
import { isRetryable } from './pg-error-kind.js';
import { encodeLogRecord } from './record-codec.js';
import { releaseClaim, takeOverExpired } from './take-over.js';
import { writeBatch, type RefusedTransaction } from './write-batch.js';
import { xactOutcome } from './xact-outcome.js';

/** Counters of a PostgreSQL log, for tests, benchmarks and metrics. */
export interface PostgresLogStats {
  /** Records accepted by append() since open. */
  readonly appends: number;
  /** Database transactions the writer committed (each holding one or more records). */
  readonly batches: number;
  /** Records those transactions wrote. */
  readonly written: number;
  /** Writer transactions that failed as a whole. */
  readonly failedBatches: number;
  /** Writer transactions whose COMMIT answer was lost and could not be settled at once. */
  readonly commitsInDoubt: number;
  readonly liveTransactions: number;
  /** A lost COMMIT is being settled: live() throws and appends are refused meanwhile. */
  readonly inDoubt: boolean;
  /** Another process claimed this coordinator id: the log refuses everything. */
  readonly identityLost: boolean;
}

/** The PostgreSQL decision log, with its extras. */
export interface PostgresDecisionLog extends SharedDecisionLog {
  /** The schema holding the tables. */
  readonly schema: string;
  /** A snapshot of the counters. */
  stats(): PostgresLogStats;
  /**
   * Renews the leases now (a timer does it every third of the lease) and drops from live() what
   * another process has taken over meanwhile. Throws TXC_LOG_IO when the database cannot be reached.
   */
  renewLeases(): Promise<void>;
}

/** Tunables of the running log (see PostgresLogOptions for their meaning and defaults). */
export interface PostgresLogSettings {
  readonly flushDelayMs: number;
  readonly maxBatch: number;
  readonly commitCheckMs: number;
  readonly retentionMs: number;
  readonly reclaimAfterMs: number;
  readonly autoRenew: boolean;
  /** The server's synchronous_commit is off: forced batches turn it on for themselves. */
  readonly serverSyncOff: boolean;
}

/** Everything {@link PostgresLog} is built from, once the instance is registered. */
export interface PostgresLogParts {
  readonly pool: LogPool;
  readonly tables: LogTables;
  readonly identity: LogIdentity;
  readonly logger: Logger;
  readonly settings: PostgresLogSettings;
  /** The live records of the transactions this id owns, read at registration, oldest first. */
  readonly records: readonly LogRecord[];
  /** performance.now() until which the instance lease registered is certainly valid. */
  readonly leaseValidUntil: number;
}

interface PendingRecord {
  readonly id: number;
  readonly record: LogRecord;
  readonly json: string;
}

interface Doubt {
  readonly txid: string;
  readonly ids: readonly number[];
  readonly gtrids: readonly string[];
  readonly cause: unknown;
}

/** Most gtrids remembered as taken over (so owns() answers false while a late append is refused). */
const LOST_MEMORY = 10_000;

/**
 * A decision log in PostgreSQL shared by several coordinator processes. Appends go through a
 * group commit (one database transaction per batch); live() is the {@link LiveView}; a timer
 * renews the leases and notices take-overs; takeOver() claims what expired elsewhere.
 */
export class PostgresLog implements PostgresDecisionLog {
  readonly shared = true as const;
  readonly owner: string;
  readonly schema: string;

  private readonly pool: LogPool;
  private readonly tables: LogTables;
  private readonly identity: LogIdentity;
  private readonly logger: Logger;
  private readonly settings: PostgresLogSettings;
  private readonly view = new LiveView();
  private readonly committer: GroupCommit<PendingRecord>;
  private nextId = 0;
  private appends = 0;
  private commitsInDoubt = 0;

  private leaseValidUntil: number;
  private renewTimer: NodeJS.Timeout | undefined;
  private renewing: Promise<void> | undefined;
  /** Gtrids whose state changed while a renewal was out (its answer is stale for them). */
  private touched: Set<string> | undefined;
  private readonly lost = new Set<string>();

  private doubt: Doubt | undefined;
  private doubtTimer: NodeJS.Timeout | undefined;
  private doubtDelayMs = 200;
  private identityLost = false;
  private closing = false;
  private closePromise: Promise<void> | undefined;

  constructor(parts: PostgresLogParts) {
    this.pool = parts.pool;
    this.tables = parts.tables;
    this.identity = parts.identity;
    this.logger = parts.logger;
    this.settings = parts.settings;
    this.owner = parts.identity.coordinatorId;
    this.schema = parts.tables.schema;
    this.leaseValidUntil = parts.leaseValidUntil;
    this.view.load(parts.records);
    this.committer = new GroupCommit<PendingRecord>({
      write: (batch) => this.writeItems(batch),
      flushDelayMs: parts.settings.flushDelayMs,
      maxBatch: parts.settings.maxBatch,
      onUnforcedFailure: (item, err) =>
        this.logger.warn({ err, txid: item.record.gtrid, type: item.record.type }, 'an unforced decision log record was not written'),
    });
    if (parts.settings.autoRenew) {
      this.renewTimer = setInterval(() => {
        this.renewLeases().catch((err: unknown) => this.logger.warn({ err }, 'decision log lease renewal failed; retrying at the next tick'));
      }, Math.max(1, Math.floor(this.identity.leaseMs / 3)));
      this.renewTimer.unref();
    }
  }

  // ---- DecisionLog ---------------------------------------------------------------------------

  append(record: LogRecord, force: boolean): Promise<void> {
    if (this.closing) return Promise.reject(this.closedError());
    if (this.identityLost) return Promise.reject(this.identityError());
    if (this.doubt) return Promise.reject(this.doubtError('not-written'));
    let encoded;
    try {
      encoded = encodeLogRecord(record);
    } catch (err) {
      return Promise.reject(err as Error);
    }
    const item: PendingRecord = { id: this.nextId++, record: encoded.record, json: encoded.json };
    this.appends++;
    this.view.accept(item.id, item.record);
    return this.committer.submit(item, force);
  }

  live(): readonly LogRecord[] {
    // Recovery acts on what live() lacks (presumed abort): a view that may miss a durable commit
    // record, or that belongs to an id another process now recovers, must not be handed out.
    if (this.identityLost) throw this.identityError();
    if (this.doubt) throw this.doubtError('unknown');
    return this.view.records();
  }

  compact(): Promise<void> {
    return this.guarded('compact', async () => {
      const done = await compactEnded(this.pool, this.tables, this.settings.retentionMs);
      if (done.transactions > 0 || done.instances > 0) this.logger.debug({ ...done, schema: this.schema }, 'decision log compacted');
    });
  }

  close(): Promise<void> {
    return (this.closePromise ??= this.doClose());
  }

  // ---- SharedDecisionLog ---------------------------------------------------------------------

  owns(gtrid: string): boolean {
    if (this.identityLost || this.closing || this.lost.has(gtrid)) return false;
    // Past the lease this process last renewed, another may already have taken over.
    if (performance.now() >= this.leaseValidUntil) return false;
    return this.view.has(gtrid);
  }

  takeOver(limit = 100): Promise<TakeOver> {
    if (!Number.isSafeInteger(limit) || limit < 1) {
      return Promise.reject(new TxcError('TXC_USAGE', `takeOver limit must be a positive integer, not ${String(limit)}`));
    }
    return this.guarded('take over expired transactions', async () => {
      const claimed = await takeOverExpired(this.pool, this.tables, this.identity, {
        limit,
        reclaimAfterMs: this.settings.reclaimAfterMs,
        commitCheckMs: this.settings.commitCheckMs,
      });
      this.view.load(claimed.records);
      for (const { gtrid } of claimed.transactions) {
        this.lost.delete(gtrid);
        this.touched?.add(gtrid);
      }
      if (claimed.transactions.length > 0 || claimed.coordinators.length > 0) {
        this.logger.info(
          { transactions: claimed.transactions, coordinators: claimed.coordinators },
          'took over from coordinators whose lease expired',
        );
      }
      return { transactions: claimed.transactions.map((c) => c.gtrid), coordinators: claimed.coordinators };
    });
  }

  releaseCoordinator(coordinatorId: string): Promise<void> {
    return this.guarded('release a claimed coordinator id', async () => {
      if (!(await releaseClaim(this.pool, this.tables, this.identity, coordinatorId))) {
        this.logger.debug({ coordinatorId }, 'released a coordinator id this process did not hold');
      }
    });
  }

  history(gtrid: string): Promise<LogRecord[]> {
    return this.guarded('read the history of a transaction', async () => {
      const res = await this.pool.query<{ record: LogRecord }>(`select record from ${this.tables.records} where gtrid = $1 order by seq`, [gtrid]);
      return res.rows.map((r) => r.record);
    }, { allowWhenLost: true });
  }

  findByIdempotencyKey(key: string): Promise<string | undefined> {
    return this.guarded('look up an idempotency key', async () => {
      const res = await this.pool.query<{ gtrid: string }>(`select gtrid from ${this.tables.owners} where idempotency_key = $1`, [key]);
      return res.rows[0]?.gtrid;
    }, { allowWhenLost: true });
  }

  oldestUnended(coordinatorId: string): Promise<string | undefined> {
    return this.guarded('find the oldest unfinished transaction', async () => {
      // Byte order (collation "C"): gtrids of one coordinator sort by their uuid v7 time, and a
      // longer coordinator id sharing the prefix falls outside [from, to).
      const from = gtridPrefix(coordinatorId);
      // '/' is the byte after '.': [from, to) holds exactly the gtrids that start with `from`.
      const to = `${from.slice(0, -1)}/`;
      const res = await this.pool.query<{ gtrid: string | null }>(
        `select min(gtrid collate "C") as gtrid from ${this.tables.owners} where not ended and gtrid collate "C" >= $1 and gtrid collate "C" < $2`,
        [from, to],
      );
      return res.rows[0]?.gtrid ?? undefined;
    }, { allowWhenLost: true });
  }

  // ---- extras --------------------------------------------------------------------------------

  stats(): PostgresLogStats {
    const c = this.committer.stats();
    return {
      appends: this.appends,
      batches: c.batches,
      written: c.items,
      failedBatches: c.failedBatches,
      commitsInDoubt: this.commitsInDoubt,
      liveTransactions: this.view.transactions,
      inDoubt: this.doubt !== undefined,
      identityLost: this.identityLost,
    };
  }

  renewLeases(): Promise<void> {
    if (this.closing || this.identityLost) return Promise.resolve();
    return (this.renewing ??= this.renew().finally(() => {
      this.renewing = undefined;
    }));
  }

  // ---- writing -------------------------------------------------------------------------------

  private async writeItems(batch: readonly QueuedItem<PendingRecord>[]): Promise<BatchOutcome<PendingRecord>> {
    const items = batch.map((b) => b.item);
    // Queued before the log stopped accepting: never sent.
    if (this.identityLost || this.doubt) {
      this.view.discard(items.map((i) => i.id));
      throw this.identityLost ? this.identityError() : this.doubtError('not-written');
    }
    let written;
    try {
      written = await writeBatch(this.pool, this.tables, this.identity, items, {
        unforcedOnly: !batch.some((b) => b.force),
        serverSyncOff: this.settings.serverSyncOff,
        commitCheckMs: this.settings.commitCheckMs,
      });
    } catch (err) {
      throw this.batchFailed(items, err);
    }
    const refused = new Map<PendingRecord, Error>();
    const ok: number[] = [];
    const bad: number[] = [];
    for (const item of items) {
      const why = written.refused.get(item.record.gtrid);
      if (why) {
        refused.set(item, this.refusedError(item.record.gtrid, why));
        bad.push(item.id);
      } else {
        ok.push(item.id);
        this.touched?.add(item.record.gtrid);
      }
    }
    this.view.commit(ok);
    if (bad.length > 0) {
      this.view.discard(bad);
      for (const [gtrid, why] of written.refused) if (why.reason === 'owned-elsewhere') this.markLost(gtrid, why.owner);
    }
    return refused;
  }

  /** Turns a failed batch into the error its appends get, and sets the view straight. */
  private batchFailed(items: readonly PendingRecord[], err: unknown): Error {
    const ids = items.map((i) => i.id);
    const cause = err instanceof LogTransactionError ? err.cause : err;
    if (cause instanceof IdentityLostError) {
      this.loseIdentity();
      return this.identityError();
    }
    if (err instanceof LogTransactionError && err.durability === 'unknown' && err.txid !== undefined) {
      this.enterDoubt({ txid: err.txid, ids, gtrids: items.map((i) => i.record.gtrid), cause });
      return new TxcError(
        'TXC_LOG_IO',
        `the connection to the decision log database broke during COMMIT of ${items.length} record(s) (PostgreSQL transaction ${err.txid}); they may or may not be durable, and the log refuses work until the server tells`,
        { cause, retryable: true, details: { schema: this.schema, durability: 'unknown', txid: err.txid } },
      );
    }
    this.view.discard(ids);
    return new TxcError('TXC_LOG_IO', `writing ${items.length} record(s) to the decision log in PostgreSQL failed; they were not written`, {
      cause,
      retryable: isRetryable(cause),
      details: { schema: this.schema, durability: 'not-written' },
    });
  }

  private refusedError(gtrid: string, why: RefusedTransaction): TxcError {
    const fact =
      why.reason === 'owned-elsewhere'
        ? `transaction ${gtrid} is owned by coordinator ${why.owner ?? '?'} now (it took it over after this process's lease expired); this record was not written`
        : `another saga already holds the idempotency key of ${gtrid}; this record was not written`;
    return new TxcError('TXC_LOG_IO', fact, { details: { gtrid, reason: why.reason, owner: why.owner ?? null, durability: 'not-written' } });
  }

  // ---- a lost COMMIT -------------------------------------------------------------------------

  /**
   * The writer's COMMIT was sent and no answer came back, and the server could not be asked in
   * time. Until it can (pg_xact_status of the batch's transaction), live() throws and appends
   * are refused: a view without those records could make recovery roll back branches whose
   * commit record is durable, and one with them could make it commit branches on a decision
   * that was never stored. Appends queued behind the batch are refused too (never sent).
   */
  private enterDoubt(doubt: Doubt): void {
    this.doubt = doubt;
    this.commitsInDoubt++;
    this.logger.error({ err: doubt.cause, pgTxid: doubt.txid, records: doubt.ids.length }, 'decision log COMMIT outcome unknown; refusing work until the database answers');
    const dropped = this.committer.failQueued(this.doubtError('not-written'));
    this.view.discard(dropped.map((d) => d.id));
    this.doubtDelayMs = 200;
    this.scheduleDoubtCheck(0);
  }

  private scheduleDoubtCheck(delayMs: number): void {
    if (this.closing || this.doubtTimer) return;
    this.doubtTimer = setTimeout(() => {
      this.doubtTimer = undefined;
      void this.settleDoubt();
    }, delayMs);
    this.doubtTimer.unref();
  }

  private async settleDoubt(): Promise<void> {
    const doubt = this.doubt;
    if (!doubt || this.closing) return;
    const outcome = await xactOutcome(this.pool, doubt.txid, { budgetMs: this.settings.commitCheckMs });
    if (outcome === 'unknown') {
      this.doubtDelayMs = Math.min(this.doubtDelayMs * 2, 5_000);
      this.scheduleDoubtCheck(this.doubtDelayMs);
      return;
    }
    if (outcome === 'committed') {
      this.view.commit(doubt.ids);
      for (const g of doubt.gtrids) this.touched?.add(g);
    } else {
      this.view.discard(doubt.ids);
    }
    this.doubt = undefined;
    this.logger.warn({ pgTxid: doubt.txid, outcome }, 'decision log COMMIT outcome settled; accepting work again');
  }

  // ---- leases --------------------------------------------------------------------------------

  private async renew(): Promise<void> {
    const started = performance.now();
    const known = this.view.durableGtrids();
    const touched = (this.touched = new Set<string>());
    let renewed: Renewed;
    try {
      renewed = await renewLeases(this.pool, this.tables, this.identity, this.settings.commitCheckMs);
    } catch (err) {
      this.touched = undefined;
      if (err instanceof LogTransactionError && err.cause instanceof IdentityLostError) {
        this.loseIdentity();
        return;
      }
      const cause = err instanceof LogTransactionError ? err.cause : err;
      throw new TxcError('TXC_LOG_IO', `renewing the decision log leases of coordinator ${this.owner} failed`, {
        cause,
        retryable: true,
        details: { schema: this.schema },
      });
    }
    try {
      this.leaseValidUntil = started + this.identity.leaseMs;
      const durable = this.view.durableGtrids();
      // Owned before the renewal yet not renewed: taken over, or ended by a batch racing it.
      const gone = [...known].filter((g) => !renewed.owned.has(g) && durable.has(g) && !touched.has(g));
      if (gone.length > 0) {
        const owners = await ownersOf(this.pool, this.tables, gone);
        for (const g of gone) {
          const row = owners.get(g);
          if (row?.owner !== this.owner) this.markLost(g, row?.owner);
        }
      }
      // Owned yet unknown here: a take-over whose COMMIT answer was lost but which committed.
      const pending = this.view.pendingGtrids();
      const orphans = [...renewed.owned].filter((g) => !durable.has(g) && !pending.has(g) && !touched.has(g));
      if (orphans.length > 0) await this.adopt(orphans, touched);
    } finally {
      if (this.touched === touched) this.touched = undefined;
    }
  }

  private async adopt(gtrids: readonly string[], touched: ReadonlySet<string>): Promise<void> {
    const res = await this.pool.query<{ record: LogRecord }>(
      `select r.record from ${this.tables.records} r join ${this.tables.owners} o on o.gtrid = r.gtrid
        where r.gtrid = any($1::text[]) and o.owner = $2 and not o.ended order by r.seq`,
      [gtrids, this.owner],
    );
    // Decided before loading: once a gtrid's first record is in, has() is true for the rest.
    const skip = new Set(gtrids.filter((g) => touched.has(g) || this.view.has(g)));
    const adopted = gtrids.filter((g) => !skip.has(g));
    this.view.load(res.rows.map((r) => r.record).filter((r) => !skip.has(r.gtrid)));
    for (const g of adopted) this.lost.delete(g);
    if (adopted.length > 0) this.logger.warn({ gtrids: adopted }, 'found transactions this coordinator owns but had not loaded; loaded them');
  }

  private markLost(gtrid: string, owner: string | undefined): void {
    if (!this.view.has(gtrid) && this.lost.has(gtrid)) return;
    this.view.drop(gtrid);
    this.lost.add(gtrid);
    if (this.lost.size > LOST_MEMORY) this.lost.delete(this.lost.values().next().value as string);
    this.logger.warn({ txid: gtrid, owner }, 'another coordinator took this transaction over; this process stops driving it');
  }

  private loseIdentity(): void {
    if (this.identityLost) return;
    this.identityLost = true;
    this.view.clear();
    if (this.renewTimer) clearInterval(this.renewTimer);
    this.renewTimer = undefined;
    this.committer.failQueued(this.identityError());
    this.logger.error(
      { coordinatorId: this.owner, schema: this.schema },
      'another process claimed this coordinator id, presuming this one dead; the decision log refuses all work: stop this process',
    );
  }

  // ---- closing and errors --------------------------------------------------------------------

  private async doClose(): Promise<void> {
    this.closing = true;
    if (this.renewTimer) clearInterval(this.renewTimer);
    this.renewTimer = undefined;
    if (this.doubtTimer) clearTimeout(this.doubtTimer);
    this.doubtTimer = undefined;
    let failure: unknown;
    try {
      await this.committer.flush();
    } catch (cause) {
      failure = new TxcError('TXC_LOG_IO', 'unforced decision log records buffered before close were not written', {
        cause,
        details: { schema: this.schema, durability: 'not-written' },
      });
    }
    this.committer.stop();
    await this.renewing?.catch(() => undefined);
    if (!this.identityLost) {
      await expireLeases(this.pool, this.tables, this.identity, this.settings.commitCheckMs).catch((err: unknown) =>
        this.logger.warn({ err }, 'could not expire the decision log leases on close; others take over once they run out'),
      );
    }
    try {
      await this.pool.end();
    } catch (cause) {
      failure ??= new TxcError('TXC_LOG_IO', 'closing the decision log connections failed', { cause, details: { schema: this.schema } });
    }
    if (failure) throw failure;
  }

  /** Runs a database operation, refusing it after close or identity loss and wrapping failures. */
  private async guarded<T>(what: string, fn: () => Promise<T>, opts: { allowWhenLost?: boolean } = {}): Promise<T> {
    if (this.closing) throw this.closedError();
    if (this.identityLost && !opts.allowWhenLost) throw this.identityError();
    try {
      return await fn();
    } catch (err) {
      if (TxcError.is(err)) throw err;
      const cause = err instanceof LogTransactionError ? err.cause : err;
      if (cause instanceof IdentityLostError) {
        this.loseIdentity();
        throw this.identityError();
      }
      const unknown = err instanceof LogTransactionError && err.durability === 'unknown';
      throw new TxcError('TXC_LOG_IO', `could not ${what} in the decision log database`, {
        cause,
        retryable: unknown || isRetryable(cause),
        details: { schema: this.schema, ...(unknown ? { durability: 'unknown' } : {}) },
      });
    }
  }

  private closedError(): TxcError {
    return new TxcError('TXC_LOG_CLOSED', `the decision log in PostgreSQL schema ${this.schema} was closed`, { details: { schema: this.schema } });
  }

  private identityError(): TxcError {
    return new TxcError(
      'TXC_LOG_LOCKED',
      `another process claimed coordinator id ${this.owner} on this log, presuming this process dead; nothing more is written or read here, stop this process`,
      { details: { coordinatorId: this.owner, schema: this.schema, durability: 'not-written' } },
    );
  }

  private doubtError(durability: 'not-written' | 'unknown'): TxcError {
    const txid = this.doubt?.txid ?? null;
    return new TxcError(
      'TXC_LOG_IO',
      `the outcome of an earlier COMMIT to the decision log (PostgreSQL transaction ${String(txid)}) is not known yet, so the log refuses work until the database answers` +
        (durability === 'not-written' ? '; this record was not written' : ''),
      { retryable: true, details: { schema: this.schema, durability, txid } },
    );
  }
}
