import type { Logger } from 'pino';
import { TxcError } from '../../coordinator/errors.js';
import { xidKey, type Xid } from '../../coordinator/xid.js';
import type { BarrierRange, Capabilities, MarkerRow, Participant, ResolveResult } from '../participant.js';
import { checkBarrierRange, checkGtrid, isMarkerOutcome, markerPrefixPattern } from '../bookkeeping.js';
import { onceUntilFailure } from '../once-until-failure.js';
import { PooledSessions } from '../pooled-sessions.js';
import { OracleBranch, type OracleBranchHost } from './branch.js';
import { OUT_FORMAT_OBJECT, TPC_BEGIN_NEW, type OracleConnection, type OracleExecuteOptions, type OraclePool } from './driver.js';
import { classifyOracleError, type OracleErrorClass } from './errors.js';
import {
  BARRIER_EXISTS,
  BOOKKEEPING_EXISTS,
  CREATE_BARRIER,
  CREATE_MARKERS,
  DELETE_BARRIERS,
  DELETE_BATCH,
  LIST_MARKERS,
  PREFLIGHT,
  deleteMarkersSql,
  fromOracleRecoverRow,
  toOracleXid,
} from './sql.js';

/** Settings the participant needs besides its pool. */
export interface OracleParticipantOptions {
  /** How long to wait for a pooled connection before TXC_POOL_TIMEOUT. */
  readonly acquireTimeoutMs: number;
  /**
   * Set as every connection's `callTimeout`, and (rounded up to seconds) as the tpcBegin
   * timeout: how long a detached, unprepared branch may sit between tpcEnd and tpcPrepare
   * before the server ends it, so a coordinator that dies there leaves no locks for long.
   */
  readonly queryTimeoutMs: number;
  readonly logger: Logger;
  /** Seconds close() waits for checked-out connections before closing them anyway. Default 5. */
  readonly closeDrainSeconds?: number;
}

/** Grants whose absence preflight reports, by the failing check. */
const GRANT_FORCE_ANY = 'FORCE ANY TRANSACTION';
const GRANT_PENDING = 'SELECT ON SYS.DBA_PENDING_TRANSACTIONS';

const AUTOCOMMIT: OracleExecuteOptions = { outFormat: OUT_FORMAT_OBJECT, autoCommit: true };
const NO_COMMIT: OracleExecuteOptions = { outFormat: OUT_FORMAT_OBJECT, autoCommit: false };

function uncertain(c: OracleErrorClass): boolean {
  return c.kind === 'connection' || c.kind === 'timeout' || c.kind === 'unknown-state';
}

/**
 * An Oracle Database driven with node-oracledb's Thin-mode TPC calls (tpcBegin / tpcEnd /
 * tpcPrepare / tpcCommit / tpcRollback, and tpcRecover for recovery). No `localStatus`: nothing
 * ties a finished TPC branch to a queryable local transaction id once it is forgotten.
 */
export class OracleParticipant implements Participant {
  readonly driver = 'oracle';
  readonly capabilities: Capabilities = { twoPhase: true, localTransactions: true };
  private readonly host: OracleBranchHost;
  private readonly tpcTimeoutSeconds: number;
  private pool: Promise<OraclePool> | undefined;
  private closing: Promise<void> | undefined;
  private readonly sessions: PooledSessions<OracleConnection, OracleErrorClass>;
  /** Checks (creating if missing) the bookkeeping tables: once per instance, again after a failure. */
  private readonly bookkeeping = onceUntilFailure(() => this.createBookkeeping());

  constructor(
    readonly name: string,
    /** Creates the pool; called on first use (a database down at start-up fails no constructor), again after a failure. */
    private readonly openPool: () => Promise<OraclePool>,
    private readonly options: OracleParticipantOptions,
  ) {
    this.tpcTimeoutSeconds = Math.max(1, Math.ceil(options.queryTimeoutMs / 1000));
    this.sessions = new PooledSessions({
      participant: name,
      acquireTimeoutMs: options.acquireTimeoutMs,
      connect: async () => {
        const conn = await (await this.getPool()).getConnection();
        // Set on every checkout: a pooled connection may come back with another value.
        conn.callTimeout = options.queryTimeoutMs;
        return conn;
      },
      giveBack: (conn, discard) => this.release(conn, discard),
      classify: classifyOracleError,
      discards: uncertain,
      fields: (c) => ({ errorNum: c.errorNum, code: c.code }),
    });
    this.host = {
      name,
      logger: options.logger,
      resolve: (xid, action, pinned) => this.resolve(xid, action, pinned),
      ensureBookkeeping: () => this.ensureBookkeeping(),
    };
  }

  /**
   * Reachable, and this user can recover: FORCE ANY TRANSACTION enabled in the session (to
   * finish branches another session prepared) and SELECT on DBA_PENDING_TRANSACTIONS (what
   * tpcRecover reads). Every missing grant is named, with the GRANT statement to run.
   */
  async preflight(): Promise<void> {
    const missing: string[] = [];
    const user = await this.sessions.use('preflight', async (conn) => {
      const row = (await conn.execute(PREFLIGHT, [], NO_COMMIT)).rows?.[0];
      if (!(Number(row?.FORCE_ANY) > 0)) missing.push(GRANT_FORCE_ANY);
      try {
        await conn.tpcRecover(false);
      } catch (err) {
        if (classifyOracleError(err).kind !== 'privilege') throw err;
        missing.push(GRANT_PENDING);
      }
      return typeof row?.SESSION_USER === 'string' ? row.SESSION_USER : 'the configured user';
    });
    if (missing.length > 0) {
      throw new TxcError(
        'TXC_PERMISSION_DENIED',
        `Participant ${this.name}: Oracle user ${user} lacks ${missing.join(' and ')}, without which prepared branches cannot be listed or finished after a crash; as a DBA run ${missing.map((g) => `GRANT ${g} TO ${user}`).join('; ')}`,
        { details: { participant: this.name, missingGrants: missing.join(', ') } },
      );
    }
  }

  /** tpcBegin(xid, TPC_BEGIN_NEW) on a pooled connection that the branch keeps until phase two. */
  async begin(xid: Xid): Promise<OracleBranch> {
    const oxid = toOracleXid(xid); // an invalid xid fails before a connection is taken
    const conn = await this.sessions.acquire();
    try {
      await conn.tpcBegin(oxid, TPC_BEGIN_NEW, this.tpcTimeoutSeconds);
    } catch (err) {
      const c = classifyOracleError(err);
      this.release(conn, true);
      throw this.sessions.unavailable(`could not start TPC branch ${xidKey(xid)}`, err, c);
    }
    return new OracleBranch(xid, conn, this.host, 'two-phase');
  }

  /**
   * A plain local transaction on a pinned connection (no round trip: Oracle starts it at the
   * first change), for commit markers and saga barrier rows. The bookkeeping tables are ensured
   * first, from a pooled connection, so that the branch never needs a second one while it holds one.
   */
  async beginLocal(xid: Xid): Promise<OracleBranch> {
    toOracleXid(xid);
    await this.ensureBookkeeping();
    return new OracleBranch(xid, await this.sessions.acquire(), this.host, 'local');
  }

  /** Prepared branches (tpcRecover, raw ids) whose xid is txcoord's, any coordinator. */
  listInDoubt(): Promise<Xid[]> {
    return this.sessions.use('tpcRecover', async (conn) => {
      let rows: unknown[];
      try {
        rows = await conn.tpcRecover(false);
      } catch (err) {
        const c = classifyOracleError(err);
        if (c.kind !== 'privilege') throw err;
        throw new TxcError('TXC_PERMISSION_DENIED', `Participant ${this.name}: the Oracle user may not read DBA_PENDING_TRANSACTIONS; as a DBA run GRANT ${GRANT_PENDING} TO <user>`, {
          cause: err,
          details: { participant: this.name, errorNum: c.errorNum, code: c.code, missingGrants: GRANT_PENDING },
        });
      }
      const xids: Xid[] = [];
      for (const row of rows) {
        const xid = fromOracleRecoverRow(row);
        if (xid) xids.push(xid);
      }
      return xids;
    });
  }

  /** tpcCommit(xid, false) from a fresh pooled connection. */
  commitPrepared(xid: Xid): Promise<ResolveResult> {
    return this.resolve(xid, 'commit');
  }

  /** tpcRollback(xid) from a fresh pooled connection. */
  rollbackPrepared(xid: Xid): Promise<ResolveResult> {
    return this.resolve(xid, 'rollback');
  }

  /**
   * Creates txcoord_markers and txcoord_barrier unless both exist (checked first, so tables a DBA
   * created work for a user without CREATE TABLE). Safe against other processes doing the same
   * (ORA-00955 "name already used" is success); done once per instance, retried after a failure.
   */
  ensureBookkeeping(): Promise<void> {
    return this.bookkeeping();
  }

  /** Marker rows whose gtrid starts with `prefix`, oldest first, at most `limit`, from a pooled connection. */
  async listMarkers(prefix: string, limit: number): Promise<MarkerRow[]> {
    const pattern = markerPrefixPattern(this.name, prefix, limit);
    await this.ensureBookkeeping();
    const rows = await this.sessions.use('listing markers', async (conn) => (await conn.execute(LIST_MARKERS, [pattern, limit], NO_COMMIT)).rows ?? []);
    const out: MarkerRow[] = [];
    for (const row of rows) {
      const { GTRID: gtrid, OUTCOME: outcome } = row;
      const createdAt = typeof row.CREATED_AT === 'string' ? Date.parse(row.CREATED_AT) : NaN;
      if (typeof gtrid === 'string' && isMarkerOutcome(outcome) && Number.isFinite(createdAt)) out.push({ gtrid, outcome, createdAt });
      else this.options.logger.warn({ participant: this.name, gtrid }, 'skipping a txcoord_markers row that txcoord did not write');
    }
    return out;
  }

  /** Deletes the barrier rows in `range` in one statement that commits, from a pooled connection. */
  async deleteBarriers(range: BarrierRange): Promise<number> {
    checkBarrierRange(this.name, range);
    return this.sessions.use('deleting barrier rows', async (conn) => {
      if (Number((await conn.execute(BARRIER_EXISTS, [], NO_COMMIT)).rows?.[0]?.N) !== 1) return 0;
      return (await conn.execute(DELETE_BARRIERS, [range.from, range.before], AUTOCOMMIT)).rowsAffected ?? 0;
    });
  }

  /** Deletes these marker rows from a pooled connection, in batches that each commit. */
  async deleteMarkers(gtrids: readonly string[]): Promise<void> {
    for (const gtrid of gtrids) checkGtrid(this.name, gtrid);
    if (gtrids.length === 0) return;
    await this.ensureBookkeeping();
    await this.sessions.use('deleting markers', async (conn) => {
      for (let i = 0; i < gtrids.length; i += DELETE_BATCH) {
        const batch = gtrids.slice(i, i + DELETE_BATCH);
        await conn.execute(deleteMarkersSql(batch.length), batch, AUTOCOMMIT);
      }
    });
  }

  /** Closes the pool, waiting a few seconds for connections still checked out. */
  close(): Promise<void> {
    this.sessions.close();
    this.closing ??= (async () => {
      const pending = this.pool;
      if (!pending) return;
      const pool = await pending.catch(() => undefined);
      await pool?.close(this.options.closeDrainSeconds ?? 5);
    })();
    return this.closing;
  }

  /**
   * tpcCommit(xid, false) / tpcRollback(xid) on the branch's own `pinned` connection when it
   * still has one (phase two must never wait for a pooled connection: under contention every
   * pooled one can be blocked on this branch's row locks), else on a fresh pooled connection.
   */
  private async resolve(xid: Xid, action: 'commit' | 'rollback', pinned?: OracleConnection): Promise<ResolveResult> {
    const oxid = toOracleXid(xid);
    const conn = pinned ?? (await this.sessions.acquire());
    try {
      if (action === 'commit') await conn.tpcCommit(oxid, false);
      else await conn.tpcRollback(oxid);
    } catch (err) {
      const c = classifyOracleError(err);
      if (!pinned) this.release(conn, uncertain(c));
      const outcome = this.resolvedBy(xid, action, c, err);
      if (outcome) return outcome;
      // No error code names a failed phase-two call; UNAVAILABLE carries `retryable`.
      throw new TxcError('TXC_PARTICIPANT_UNAVAILABLE', `${action === 'commit' ? 'tpcCommit' : 'tpcRollback'} of ${xidKey(xid)} failed on participant ${this.name}`, {
        cause: err,
        retryable: c.retryable,
        details: { participant: this.name, operation: `${action}-prepared`, errorNum: c.errorNum, code: c.code },
      });
    }
    if (!pinned) this.release(conn, false);
    return 'done';
  }

  /** What a refused phase-two call says about the branch's fate, when it says anything. */
  private resolvedBy(xid: Xid, action: 'commit' | 'rollback', c: OracleErrorClass, err: unknown): ResolveResult | undefined {
    switch (c.kind) {
      case 'unknown-xid':
        return 'unknown';
      case 'rolled-back':
      case 'heuristic-rollback':
        return action === 'commit' ? 'rolled-back' : 'done';
      case 'heuristic-commit':
        if (action === 'commit') return 'done';
        break;
      case 'heuristic-mixed':
        // Closest to the truth the contract can say for a commit: not (all) committed.
        if (action === 'commit') return 'rolled-back';
        break;
      default:
        return undefined;
    }
    const how = c.kind === 'heuristic-mixed' ? 'partly committed by hand' : 'committed by hand (COMMIT FORCE)';
    this.options.logger.error({ participant: this.name, xid: xidKey(xid), errorNum: c.errorNum }, `prepared branch was ${how} although the decision is rollback`);
    throw new TxcError('TXC_HEURISTIC_OUTCOME', `Participant ${this.name}: branch ${xidKey(xid)} was ${how} but the decision is rollback`, {
      cause: err,
      details: { participant: this.name, errorNum: c.errorNum, code: c.code },
    });
  }

  private async createBookkeeping(): Promise<void> {
    const present = async (conn: OracleConnection) => Number((await conn.execute(BOOKKEEPING_EXISTS, [], NO_COMMIT)).rows?.[0]?.N) === 2;
    const created = await this.sessions.use('creating the bookkeeping tables txcoord_markers and txcoord_barrier', async (conn) => {
      if (await present(conn)) return true;
      for (const ddl of [CREATE_MARKERS, CREATE_BARRIER]) {
        try {
          await conn.execute(ddl, [], AUTOCOMMIT);
        } catch (err) {
          const c = classifyOracleError(err);
          if (c.kind === 'exists') continue;
          if (c.kind !== 'privilege') throw err;
          throw new TxcError(
            'TXC_PERMISSION_DENIED',
            `Participant ${this.name}: the Oracle user may not create the bookkeeping tables; as a DBA run GRANT CREATE TABLE TO <user> (with a tablespace quota), or create txcoord_markers and txcoord_barrier in its schema as docs/oracle.md shows`,
            { cause: err, details: { participant: this.name, errorNum: c.errorNum, code: c.code, missingGrants: 'CREATE TABLE' } },
          );
        }
      }
      return present(conn);
    });
    if (!created) {
      // ORA-00955 for another kind of object with that name (a view, a synonym…).
      throw new TxcError('TXC_PARTICIPANT_UNAVAILABLE', `Participant ${this.name}: txcoord_markers / txcoord_barrier could not be created (the name is taken by another object)`, {
        details: { participant: this.name },
      });
    }
  }

  /** The pool, created on first use; a failed creation is retried by the next caller. */
  private getPool(): Promise<OraclePool> {
    if (!this.pool) {
      const created = this.openPool();
      this.pool = created;
      created.catch(() => {
        if (this.pool === created) this.pool = undefined;
      });
    }
    return this.pool;
  }

  private release(conn: OracleConnection, drop: boolean): void {
    const warn = (err: unknown) => this.options.logger.warn({ err, participant: this.name }, 'closing an Oracle connection failed');
    try {
      conn.close(drop ? { drop: true } : undefined).catch(warn);
    } catch (err) {
      warn(err);
    }
  }
}
