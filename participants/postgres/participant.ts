import type { Logger } from 'pino';
import { TxcError } from '../../coordinator/errors.js';
import { fromPgGid, toPgGid, xidKey, type Xid } from '../../coordinator/xid.js';
import type { BarrierRange, Capabilities, LocalTxStatus, MarkerRow, Participant, ResolveResult } from '../participant.js';
import { checkBarrierRange, checkGtrid, isMarkerOutcome, markerPrefixPattern } from '../bookkeeping.js';
import { onceUntilFailure } from '../once-until-failure.js';
import { PooledSessions } from '../pooled-sessions.js';
import { PostgresBranch, type PostgresBranchHost } from './branch.js';
import type { PgClient, PgPool, PgResult } from './driver.js';
import { classifyPgError, type PgErrorClass } from './errors.js';
import {
  BARRIER_EXISTS,
  BEGIN,
  BOOKKEEPING_EXISTS,
  CREATE_BARRIER,
  CREATE_MARKERS,
  DELETE_BARRIERS,
  DELETE_MARKERS,
  LIST_MARKERS,
  LIST_PREPARED,
  PING,
  SHOW_MAX_PREPARED,
  XACT_STATUS,
  commitPreparedSql,
  rollbackPreparedSql,
} from './sql.js';

/** Settings the participant needs besides its pool. */
export interface PostgresParticipantOptions {
  /** How long to wait for a pooled client before TXC_POOL_TIMEOUT. */
  readonly acquireTimeoutMs: number;
  readonly logger: Logger;
  /** Local transactions only (no PREPARE TRANSACTION): the participant is then one-phase. */
  readonly localOnly?: boolean;
}

const XACT_STATUS_MAP: Readonly<Record<string, LocalTxStatus>> = {
  committed: 'committed',
  aborted: 'aborted',
  'in progress': 'in-progress',
};

// Concurrent CREATE TABLE IF NOT EXISTS of the same table: the losers fail, measured on
// PostgreSQL 15, with 23505 (unique violation in pg_type) or 42710 ("type … already exists"),
// or with 42P07. The tables are checked again afterwards, so these codes cannot hide a failure.
const CREATED_CONCURRENTLY: ReadonlySet<string> = new Set(['23505', '42710', '42P07']);

/**
 * A PostgreSQL database driven with BEGIN / PREPARE TRANSACTION / COMMIT PREPARED, or, with
 * `localOnly`, with local transactions only (standing in for a database that cannot prepare).
 */
export class PostgresParticipant implements Participant {
  readonly driver = 'postgres';
  readonly capabilities: Capabilities;
  private readonly host: PostgresBranchHost;
  private closing: Promise<void> | undefined;
  private readonly sessions: PooledSessions<PgClient, PgErrorClass>;
  /** Checks (creating if missing) the bookkeeping tables: once per instance, again after a failure. */
  private readonly bookkeeping = onceUntilFailure(() => this.createBookkeeping());

  constructor(
    readonly name: string,
    private readonly pool: PgPool,
    private readonly options: PostgresParticipantOptions,
  ) {
    pool.on('error', (err) => options.logger.warn({ err, participant: name }, 'idle PostgreSQL connection failed'));
    // pg-pool drops its own listener from a checked-out client, and a FATAL (e.g. 57P01 after
    // pg_terminate_backend or a restart) can arrive with a statement's answer, before any branch
    // has added one: an 'error' with no listener would crash the whole process. Every client
    // keeps this one for life; branches add theirs to mark the connection broken.
    pool.on('connect', (client) =>
      client.on('error', (err) => options.logger.warn({ err, participant: name }, 'PostgreSQL connection failed')),
    );
    this.capabilities = { twoPhase: options.localOnly !== true, localTransactions: true };
    this.sessions = new PooledSessions({
      participant: name,
      acquireTimeoutMs: options.acquireTimeoutMs,
      connect: () => pool.connect(),
      // pg's release(true) destroys the client instead of reusing it.
      giveBack: (client, discard) => client.release(discard ? true : undefined),
      classify: classifyPgError,
      discards: (c) => c.kind === 'connection',
      fields: (c) => ({ sqlState: c.sqlState, code: c.code }),
    });
    this.host = {
      name,
      logger: options.logger,
      resolve: (xid, action, pinned) => this.resolve(xid, action, pinned),
      ensureBookkeeping: () => this.ensureBookkeeping(),
    };
  }

  /**
   * Reachable, and max_prepared_transactions is not 0; local-only: reachable, and the
   * bookkeeping tables exist (2PC settings do not matter then).
   */
  async preflight(): Promise<void> {
    if (this.options.localOnly) {
      await this.sessions.use('preflight', (client) => client.query(PING));
      await this.ensureBookkeeping();
      return;
    }
    const value = await this.sessions.use('preflight', async (client) => {
      return lastOf(await client.query(SHOW_MAX_PREPARED))?.rows[0]?.max_prepared_transactions;
    });
    if (Number(value) === 0) {
      throw new TxcError('TXC_PREPARED_TRANSACTIONS_DISABLED', `Participant ${this.name} has max_prepared_transactions = 0`, {
        details: { participant: this.name },
      });
    }
  }

  /** BEGIN on a pooled client that the branch keeps until it prepares or commits; local-only: {@link beginLocal}. */
  async begin(xid: Xid): Promise<PostgresBranch> {
    if (this.options.localOnly) return this.beginLocal(xid);
    toPgGid(xid); // an invalid xid fails before a connection is taken
    return new PostgresBranch(xid, await this.startOnPooledClient(), this.host);
  }

  /**
   * A plain local transaction (BEGIN, later COMMIT; it never prepares) on a pinned client, for
   * commit markers and saga barrier rows. The bookkeeping tables are ensured first, from a
   * pooled client, so that the branch never needs a second client while it holds one.
   */
  async beginLocal(xid: Xid): Promise<PostgresBranch> {
    await this.ensureBookkeeping();
    return new PostgresBranch(xid, await this.startOnPooledClient(), this.host, true);
  }

  /**
   * Creates txcoord_markers and txcoord_barrier unless both exist (checked first, so tables a
   * DBA created work for a role without CREATE). Safe against other processes doing the same;
   * done once per instance, retried after a failure.
   */
  ensureBookkeeping(): Promise<void> {
    return this.bookkeeping();
  }

  /** Marker rows whose gtrid starts with `prefix`, oldest first, from a pooled client. */
  async listMarkers(prefix: string, limit: number): Promise<MarkerRow[]> {
    const pattern = markerPrefixPattern(this.name, prefix, limit);
    await this.ensureBookkeeping();
    const rows = await this.sessions.use('list markers', async (client) => lastOf(await client.query(LIST_MARKERS, [pattern, limit]))?.rows ?? []);
    const markers: MarkerRow[] = [];
    for (const row of rows) {
      const { gtrid, outcome } = row;
      const createdAt = Number(row.created_ms);
      if (typeof gtrid === 'string' && isMarkerOutcome(outcome) && Number.isFinite(createdAt)) markers.push({ gtrid, outcome, createdAt });
      else this.options.logger.warn({ participant: this.name, gtrid }, 'skipping a txcoord_markers row that txcoord did not write');
    }
    return markers;
  }

  /** Deletes these marker rows in one autocommit statement on a pooled client. */
  async deleteMarkers(gtrids: readonly string[]): Promise<void> {
    for (const gtrid of gtrids) checkGtrid(this.name, gtrid);
    if (gtrids.length === 0) return;
    await this.ensureBookkeeping();
    await this.sessions.use('delete markers', (client) => client.query(DELETE_MARKERS, [[...gtrids]]));
  }

  /** Deletes the barrier rows in `range` in one autocommit statement on a pooled client. */
  async deleteBarriers(range: BarrierRange): Promise<number> {
    checkBarrierRange(this.name, range);
    return this.sessions.use('delete barrier rows', async (client) => {
      if (lastOf(await client.query(BARRIER_EXISTS))?.rows[0]?.present !== true) return 0;
      return lastOf(await client.query(DELETE_BARRIERS, [range.from, range.before]))?.rowCount ?? 0;
    });
  }

  /**
   * Prepared transactions of this database whose gid is txcoord's. Local-only too: branches
   * prepared before the participant was switched to local-only must still be found and
   * resolved, and pg_prepared_xacts is readable (empty) even with 2PC disabled.
   */
  listInDoubt(): Promise<Xid[]> {
    return this.sessions.use('list in-doubt', async (client) => {
      const xids: Xid[] = [];
      for (const row of lastOf(await client.query(LIST_PREPARED))?.rows ?? []) {
        const xid = typeof row.gid === 'string' ? fromPgGid(row.gid) : undefined;
        if (xid) xids.push(xid);
      }
      return xids;
    });
  }

  /** COMMIT PREPARED from a fresh pooled client. */
  commitPrepared(xid: Xid): Promise<ResolveResult> {
    return this.resolve(xid, 'commit');
  }

  /** ROLLBACK PREPARED from a fresh pooled client. */
  rollbackPrepared(xid: Xid): Promise<ResolveResult> {
    return this.resolve(xid, 'rollback');
  }

  /** `pg_xact_status` of the xid `prepare` returned; 'unknown' once the server no longer knows it. */
  async localStatus(localTxId: string): Promise<LocalTxStatus> {
    if (!/^[0-9]{1,20}$/.test(localTxId)) return 'unknown';
    const client = await this.sessions.acquire();
    let out: PgResult | PgResult[];
    try {
      out = await client.query(XACT_STATUS, [localTxId]);
    } catch (err) {
      const c = classifyPgError(err);
      client.release(c.kind === 'connection' ? true : undefined);
      // 22023: an xid from the future, i.e. from another cluster or before a restore.
      if (c.sqlState === '22023') return 'unknown';
      throw this.sessions.unavailable(`could not read the status of local transaction ${localTxId}`, err, c);
    }
    client.release();
    const status = lastOf(out)?.rows[0]?.status;
    return (typeof status === 'string' && XACT_STATUS_MAP[status]) || 'unknown';
  }

  /** Ends the pool; clients still pinned by branches close when released. */
  close(): Promise<void> {
    this.sessions.close();
    this.closing ??= this.pool.end();
    return this.closing;
  }

  /**
   * COMMIT/ROLLBACK PREPARED, on the branch's own `pinned` client when it still has one (phase
   * two must never wait for a pooled client: under contention every pooled client can be blocked
   * on the very row locks this prepared branch holds), else on a fresh pooled client.
   */
  private async resolve(xid: Xid, action: 'commit' | 'rollback', pinned?: PgClient): Promise<ResolveResult> {
    const sql = action === 'commit' ? commitPreparedSql(xid) : rollbackPreparedSql(xid);
    const client = pinned ?? (await this.sessions.acquire());
    try {
      await client.query(sql);
    } catch (err) {
      const c = classifyPgError(err);
      if (!pinned) client.release(c.kind === 'connection' ? true : undefined);
      if (c.kind === 'unknown-xid') return 'unknown';
      // No error code names a failed phase-two statement; UNAVAILABLE carries `retryable`.
      throw new TxcError('TXC_PARTICIPANT_UNAVAILABLE', `${action.toUpperCase()} PREPARED of ${xidKey(xid)} failed on participant ${this.name}`, {
        cause: err,
        retryable: c.retryable,
        details: { participant: this.name, operation: `${action}-prepared`, sqlState: c.sqlState, code: c.code },
      });
    }
    if (!pinned) client.release();
    return 'done';
  }

  /** BEGIN on a fresh pooled client, which the caller then owns. */
  private async startOnPooledClient(): Promise<PgClient> {
    const client = await this.sessions.acquire();
    try {
      await client.query(BEGIN);
    } catch (err) {
      client.release(true);
      throw this.sessions.unavailable('could not start a transaction', err, classifyPgError(err));
    }
    return client;
  }

  private async createBookkeeping(): Promise<void> {
    const present = async (client: PgClient) => lastOf(await client.query(BOOKKEEPING_EXISTS))?.rows[0]?.present === true;
    const created = await this.sessions.use('create the bookkeeping tables txcoord_markers and txcoord_barrier', async (client) => {
      if (await present(client)) return true;
      for (const ddl of [CREATE_MARKERS, CREATE_BARRIER]) {
        try {
          await client.query(ddl);
        } catch (err) {
          if (!CREATED_CONCURRENTLY.has(classifyPgError(err).sqlState ?? '')) throw err;
        }
      }
      return present(client);
    });
    if (!created) {
      // E.g. a type or view of that name that is not the table.
      throw new TxcError('TXC_PARTICIPANT_UNAVAILABLE', `Participant ${this.name}: txcoord_markers / txcoord_barrier could not be created`, {
        details: { participant: this.name },
      });
    }
  }
}

function lastOf(out: PgResult | PgResult[]): PgResult | undefined {
  return Array.isArray(out) ? out[out.length - 1] : out;
}
