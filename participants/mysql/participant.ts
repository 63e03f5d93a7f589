import type { Logger } from 'pino';
import { TxcError } from '../../coordinator/errors.js';
import { fromMysqlRecoverRow, toMysqlXid, xidKey, type Xid } from '../../coordinator/xid.js';
import type { BarrierRange, Capabilities, MarkerRow, Participant, ResolveResult } from '../participant.js';
import { checkBarrierRange, checkGtrid, isMarkerOutcome, markerPrefixPattern } from '../bookkeeping.js';
import { onceUntilFailure } from '../once-until-failure.js';
import { PooledSessions } from '../pooled-sessions.js';
import { MysqlBranch, type MysqlBranchHost } from './branch.js';
import type { MysqlConnection, MysqlPool } from './driver.js';
import { classifyMysqlError, type MysqlErrorClass } from './errors.js';
import {
  BARRIER_EXISTS,
  BOOKKEEPING_TABLES,
  CREATE_BARRIER,
  CREATE_MARKERS,
  DELETE_BARRIERS,
  DELETE_MARKERS,
  DELETE_MARKERS_BATCH,
  INNODB_SUPPORT,
  LIST_MARKERS,
  START_TRANSACTION,
  XA_RECOVER,
  xaCommitSql,
  xaRollbackSql,
  xaStartSql,
} from './sql.js';

/** Settings the participant needs besides its pool. */
export interface MysqlParticipantOptions {
  /** How long to wait for a pooled connection before TXC_POOL_TIMEOUT. */
  readonly acquireTimeoutMs: number;
  readonly logger: Logger;
  /** Local transactions only (no XA): the participant is then one-phase. */
  readonly localOnly?: boolean;
}

type RecoverRow = Parameters<typeof fromMysqlRecoverRow>[0];

/**
 * A MySQL 8 / MariaDB database driven with XA statements, or, with `localOnly`, with plain
 * transactions only (standing in for a database that cannot prepare). No `localStatus`: neither
 * server can tell the fate of a finished XA branch.
 */
export class MysqlParticipant implements Participant {
  readonly driver = 'mysql';
  readonly capabilities: Capabilities;
  private readonly host: MysqlBranchHost;
  private closing: Promise<void> | undefined;
  private readonly sessions: PooledSessions<MysqlConnection, MysqlErrorClass>;
  /** Checks (creating if missing) the bookkeeping tables: once per instance, again after a failure. */
  private readonly bookkeeping = onceUntilFailure(() => this.createBookkeeping());

  constructor(
    readonly name: string,
    private readonly pool: MysqlPool,
    private readonly options: MysqlParticipantOptions,
  ) {
    this.capabilities = { twoPhase: options.localOnly !== true, localTransactions: true };
    this.sessions = new PooledSessions({
      participant: name,
      acquireTimeoutMs: options.acquireTimeoutMs,
      connect: () => pool.getConnection(),
      giveBack: (conn, discard) => (discard ? conn.destroy() : conn.release()),
      classify: classifyMysqlError,
      discards: (c) => c.kind === 'connection',
      fields: (c) => ({ errno: c.errno, code: c.code }),
      refine: (operation, err, c) =>
        c.kind === 'access-denied' && operation === 'XA RECOVER'
          ? new TxcError('TXC_XA_RECOVER_DENIED', `Participant ${name} refused XA RECOVER`, {
              cause: err,
              details: { participant: name, errno: c.errno, code: c.code },
            })
          : undefined,
    });
    this.host = {
      name,
      logger: options.logger,
      resolve: (xid, action) => this.resolve(xid, action),
      ensureBookkeeping: () => this.ensureBookkeeping(),
    };
  }

  /**
   * Reachable, InnoDB available, and this user may run XA RECOVER; local-only: reachable,
   * InnoDB available, and the bookkeeping tables exist (no XA privilege needed).
   */
  async preflight(): Promise<void> {
    const support = await this.sessions.use('preflight', async (conn) => {
      const [rows] = await conn.query(INNODB_SUPPORT);
      return Array.isArray(rows) ? (rows[0] as Record<string, unknown> | undefined)?.support : undefined;
    });
    if (support !== 'YES' && support !== 'DEFAULT') {
      throw new TxcError('TXC_PARTICIPANT_UNAVAILABLE', `Participant ${this.name} cannot do XA: InnoDB is not available (support = ${String(support)})`, {
        details: { participant: this.name },
      });
    }
    if (this.options.localOnly) await this.ensureBookkeeping();
    else await this.listInDoubt();
  }

  /** XA START on a pooled connection that the branch keeps until phase two; local-only: {@link beginLocal}. */
  async begin(xid: Xid): Promise<MysqlBranch> {
    if (this.options.localOnly) return this.beginLocal(xid);
    toMysqlXid(xid); // an invalid xid fails before a connection is taken
    return new MysqlBranch(xid, await this.startOnPooledConnection(xaStartSql(xid)), this.host);
  }

  /**
   * A plain transaction (START TRANSACTION … COMMIT, never XA, whatever the mode) on a pinned
   * connection, for commit markers and saga barrier rows. The bookkeeping tables are ensured
   * first, from a pooled connection: DDL on the branch's own would commit its transaction.
   */
  async beginLocal(xid: Xid): Promise<MysqlBranch> {
    await this.ensureBookkeeping();
    return new MysqlBranch(xid, await this.startOnPooledConnection(START_TRANSACTION), this.host, true);
  }

  /**
   * Creates txcoord_markers and txcoord_barrier unless both exist (checked first, so tables a
   * DBA created work for a user without CREATE). Concurrent creators are serialized by the
   * server's metadata locks. Done once per instance, retried after a failure.
   */
  ensureBookkeeping(): Promise<void> {
    return this.bookkeeping();
  }

  /** Marker rows whose gtrid starts with `prefix`, oldest first, from a pooled connection. */
  async listMarkers(prefix: string, limit: number): Promise<MarkerRow[]> {
    const pattern = markerPrefixPattern(this.name, prefix, limit);
    await this.ensureBookkeeping();
    const rows = await this.sessions.use('list markers', async (conn) => (await conn.query(LIST_MARKERS, [pattern, limit]))[0]);
    const markers: MarkerRow[] = [];
    for (const row of Array.isArray(rows) ? (rows as Record<string, unknown>[]) : []) {
      const { gtrid, outcome } = row;
      const createdAt = Number(row.created_ms);
      if (typeof gtrid === 'string' && isMarkerOutcome(outcome) && Number.isFinite(createdAt)) markers.push({ gtrid, outcome, createdAt });
      else this.options.logger.warn({ participant: this.name, gtrid }, 'skipping a txcoord_markers row that txcoord did not write');
    }
    return markers;
  }

  /** Deletes the barrier rows in `range` in one autocommit statement on a pooled connection. */
  async deleteBarriers(range: BarrierRange): Promise<number> {
    checkBarrierRange(this.name, range);
    return this.sessions.use('delete barrier rows', async (conn) => {
      const [rows] = await conn.query(BARRIER_EXISTS);
      if (!Array.isArray(rows) || Number((rows[0] as Record<string, unknown> | undefined)?.n) !== 1) return 0;
      const [ok] = await conn.query(DELETE_BARRIERS, [range.from, range.before]);
      return typeof ok === 'object' && ok !== null && 'affectedRows' in ok ? Number(ok.affectedRows) : 0;
    });
  }

  /** Deletes these marker rows, in autocommit statements of at most DELETE_MARKERS_BATCH keys, on a pooled connection. */
  async deleteMarkers(gtrids: readonly string[]): Promise<void> {
    for (const gtrid of gtrids) checkGtrid(this.name, gtrid);
    if (gtrids.length === 0) return;
    await this.ensureBookkeeping();
    await this.sessions.use('delete markers', async (conn) => {
      for (let i = 0; i < gtrids.length; i += DELETE_MARKERS_BATCH) {
        await conn.query(DELETE_MARKERS, [gtrids.slice(i, i + DELETE_MARKERS_BATCH)]);
      }
    });
  }

  /**
   * Prepared branches (XA RECOVER) whose xid is txcoord's. Local-only too, since branches
   * prepared before the switch to local-only must still be resolved; but there a user without
   * the XA RECOVER privilege (which local-only does not require) simply has none to list.
   */
  async listInDoubt(): Promise<Xid[]> {
    try {
      return await this.recoverXids();
    } catch (err) {
      if (!this.options.localOnly || !TxcError.is(err, 'TXC_XA_RECOVER_DENIED')) throw err;
      this.options.logger.debug({ participant: this.name }, 'local-only participant may not run XA RECOVER; listing no in-doubt branches');
      return [];
    }
  }

  private recoverXids(): Promise<Xid[]> {
    return this.sessions.use('XA RECOVER', async (conn) => {
      const [rows] = await conn.query(XA_RECOVER);
      const xids: Xid[] = [];
      for (const row of Array.isArray(rows) ? rows : []) {
        const xid = isRecoverRow(row) ? fromMysqlRecoverRow(row) : undefined;
        if (xid) xids.push(xid);
      }
      return xids;
    });
  }

  /** XA COMMIT from a fresh pooled connection. */
  commitPrepared(xid: Xid): Promise<ResolveResult> {
    return this.resolve(xid, 'commit');
  }

  /** XA ROLLBACK from a fresh pooled connection. */
  rollbackPrepared(xid: Xid): Promise<ResolveResult> {
    return this.resolve(xid, 'rollback');
  }

  /** Ends the pool. */
  close(): Promise<void> {
    this.sessions.close();
    this.closing ??= this.pool.end();
    return this.closing;
  }

  private async resolve(xid: Xid, action: 'commit' | 'rollback'): Promise<ResolveResult> {
    const sql = action === 'commit' ? xaCommitSql(xid) : xaRollbackSql(xid);
    const conn = await this.sessions.acquire();
    try {
      await conn.query(sql);
    } catch (err) {
      const c = classifyMysqlError(err);
      if (c.kind === 'connection') conn.destroy();
      else conn.release(); // a failed XA COMMIT/ROLLBACK leaves this session holding nothing
      // On MariaDB 1397 also answers while the preparing session is still connected; callers
      // that just dropped that session see the branch again through listInDoubt.
      if (c.kind === 'unknown-xid') return 'unknown';
      if (c.kind === 'rolled-back') return action === 'commit' ? 'rolled-back' : 'done';
      // No error code names a failed phase-two statement; UNAVAILABLE carries `retryable`.
      throw new TxcError('TXC_PARTICIPANT_UNAVAILABLE', `XA ${action.toUpperCase()} of ${xidKey(xid)} failed on participant ${this.name}`, {
        cause: err,
        retryable: c.retryable,
        details: { participant: this.name, operation: `${action}-prepared`, errno: c.errno, code: c.code },
      });
    }
    conn.release();
    return 'done';
  }

  /** A fresh pooled connection on which `start` (XA START or START TRANSACTION) ran; the caller owns it. */
  private async startOnPooledConnection(start: string): Promise<MysqlConnection> {
    const conn = await this.sessions.acquire();
    try {
      await conn.query(start);
    } catch (err) {
      conn.destroy();
      const what = start === START_TRANSACTION ? 'a transaction' : 'an XA transaction';
      throw this.sessions.unavailable(`could not start ${what}`, err, classifyMysqlError(err));
    }
    return conn;
  }

  private async createBookkeeping(): Promise<void> {
    await this.sessions.use('create the bookkeeping tables txcoord_markers and txcoord_barrier', async (conn) => {
      const [rows] = await conn.query(BOOKKEEPING_TABLES);
      const present = Array.isArray(rows) ? Number((rows[0] as Record<string, unknown> | undefined)?.n) : 0;
      if (present === 2) return;
      for (const ddl of [CREATE_MARKERS, CREATE_BARRIER]) await conn.query(ddl);
    });
  }
}

function isRecoverRow(row: unknown): row is RecoverRow {
  if (typeof row !== 'object' || row === null) return false;
  const r = row as Record<string, unknown>;
  const numeric = (v: unknown) => typeof v === 'number' || typeof v === 'string';
  return numeric(r.formatID) && numeric(r.gtrid_length) && numeric(r.bqual_length) && (typeof r.data === 'string' || Buffer.isBuffer(r.data));
}
