import type { Logger } from 'pino';
import { TxcError } from '../../coordinator/errors.js';
import { isTxcXid, xidKey, type Xid } from '../../coordinator/xid.js';
import type { BarrierRange, Capabilities, MarkerRow, Participant, ResolveResult } from '../participant.js';
import { checkBarrierRange } from '../bookkeeping.js';
import { PooledSessions } from '../pooled-sessions.js';
import { MssqlBranch, type MssqlBranchHost } from './branch.js';
import type { TediousTypes } from './driver.js';
import { classifyMssqlError, type MssqlErrorClass } from './errors.js';
import { varcharParameter } from './parameters.js';
import type { MssqlSessionPool } from './pool.js';
import type { MssqlSession } from './session.js';
import {
  BARRIER_EXISTS,
  BARRIER_KEY_LENGTH,
  BOOKKEEPING_PERMISSIONS,
  DELETE_BARRIERS,
  DELETE_MARKERS_CHUNK,
  ENSURE_BARRIER,
  ENSURE_MARKERS,
  GTRID_LENGTH,
  LIST_MARKERS,
  WHO_AM_I,
  deleteMarkersSql,
  likePrefix,
} from './sql.js';

/** Settings the participant needs besides its pool. */
export interface MssqlParticipantOptions {
  /** How long to wait for a pooled connection before TXC_POOL_TIMEOUT. */
  readonly acquireTimeoutMs: number;
  readonly logger: Logger;
  /** The driver's data types, for binding parameters. */
  readonly types: TediousTypes;
}

// A LIKE pattern is the prefix with escapes plus '%': room for a gtrid prefix escaped throughout.
const PATTERN_LENGTH = 2 * GTRID_LENGTH + 1;
const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;
const TABLES = ['markers', 'barrier'] as const;

/**
 * A SQL Server database (tedious + tarn). tedious implements no distributed transactions
 * (tediousjs/tedious#1137), so this participant is one-phase: it runs local transactions only,
 * and takes part in a global transaction as its commit-marked last resource, or as a saga
 * participant behind `txcoord_barrier`. Nothing is ever prepared, so there is nothing in doubt.
 */
export class MssqlParticipant implements Participant {
  readonly driver = 'mssql';
  readonly capabilities: Capabilities = { twoPhase: false, localTransactions: true };
  private readonly host: MssqlBranchHost;
  private closing: Promise<void> | undefined;
  private readonly sessions: PooledSessions<MssqlSession, MssqlErrorClass>;

  constructor(
    readonly name: string,
    private readonly pool: MssqlSessionPool,
    private readonly options: MssqlParticipantOptions,
  ) {
    this.sessions = new PooledSessions({
      participant: name,
      acquireTimeoutMs: options.acquireTimeoutMs,
      connect: () => pool.acquire(),
      giveBack: (session, discard) => pool.release(session, discard),
      classify: classifyMssqlError,
      discards: (c) => c.kind === 'connection',
      fields: (c) => ({ number: c.number, code: c.code }),
    });
    this.host = {
      name,
      logger: options.logger,
      types: options.types,
      releaseSession: (session, destroy) => pool.release(session, destroy),
      unsupported: (operation) => this.unsupported(operation),
    };
  }

  /**
   * Reachable, the bookkeeping tables exist (created when missing), and the login user may
   * read, insert and delete their rows. A missing permission is a non-retryable TxcError whose
   * message carries the GRANT to run.
   */
  async preflight(): Promise<void> {
    await this.ensureBookkeeping();
    const row = await this.sessions.use('check permissions on the bookkeeping tables', async (s) => (await s.execute(BOOKKEEPING_PERMISSIONS)).rows[0]);
    const user = stringOr(row?.db_user, 'txcoord_user');
    const defaultSchema = stringOr(row?.default_schema, 'dbo');
    const missing = TABLES.filter((t) => !['select', 'insert', 'delete'].every((p) => row?.[`${t}_${p}`] === 1));
    if (missing.length > 0) {
      const grant = missing
        .map((t) => `GRANT SELECT, INSERT, DELETE ON ${quote(stringOr(row?.[`${t}_schema`], defaultSchema))}.${quote(`txcoord_${t}`)} TO ${quote(user)};`)
        .join(' ');
      throw this.denied(`user ${user} may not read, insert and delete rows of ${missing.map((t) => `txcoord_${t}`).join(' and ')}`, grant);
    }
  }

  /** BEGIN on a pooled session that the branch keeps until COMMIT or ROLLBACK. */
  begin(xid: Xid): Promise<MssqlBranch> {
    return this.beginLocal(xid);
  }

  /** Same as {@link begin}: every transaction on SQL Server is a local one; `xid` only names it in logs. */
  async beginLocal(xid: Xid): Promise<MssqlBranch> {
    if (!isTxcXid(xid)) throw new TxcError('TXC_ID_INVALID', `Not a txcoord xid: ${JSON.stringify(xid)}`);
    const session = await this.sessions.acquire();
    try {
      await session.begin();
    } catch (err) {
      const c = classifyMssqlError(err);
      this.pool.release(session, true);
      throw this.sessions.unavailable('could not start a transaction', err, c);
    }
    this.options.logger.debug({ participant: this.name, xid: xidKey(xid) }, 'SQL Server branch started');
    return new MssqlBranch(xid, session, this.host);
  }

  /** Always empty: a one-phase participant never holds a prepared branch. */
  async listInDoubt(): Promise<Xid[]> {
    return [];
  }

  /** Always TXC_UNSUPPORTED (the coordinator never calls it for a one-phase participant). */
  commitPrepared(_xid: Xid): Promise<ResolveResult> {
    return Promise.reject(this.unsupported('commit a prepared branch'));
  }

  /** Always TXC_UNSUPPORTED (the coordinator never calls it for a one-phase participant). */
  rollbackPrepared(_xid: Xid): Promise<ResolveResult> {
    return Promise.reject(this.unsupported('roll back a prepared branch'));
  }

  /**
   * Creates `txcoord_markers` and `txcoord_barrier` unless they exist; safe when several
   * processes run it at once (see ENSURE_MARKERS). Without the right to create them, a
   * non-retryable TxcError names the GRANT.
   */
  async ensureBookkeeping(): Promise<void> {
    const session = await this.sessions.acquire();
    try {
      await session.execute(ENSURE_MARKERS);
      await session.execute(ENSURE_BARRIER);
    } catch (err) {
      const c = classifyMssqlError(err);
      if (c.kind === 'access-denied') {
        const who = await session.execute(WHO_AM_I).then((r) => r.rows[0]).catch(() => undefined);
        this.pool.release(session);
        const user = quote(stringOr(who?.db_user, 'txcoord_user'));
        const schema = quote(stringOr(who?.default_schema, 'dbo'));
        throw this.denied(
          `user ${stringOr(who?.db_user, '?')} cannot see the bookkeeping tables txcoord_markers and txcoord_barrier and may not create them`,
          `GRANT CREATE TABLE TO ${user}; GRANT ALTER ON SCHEMA::${schema} TO ${user};`,
          err,
          c,
        );
      }
      this.pool.release(session, c.kind === 'connection');
      throw this.sessions.unavailable('could not create the bookkeeping tables', err, c);
    }
    this.pool.release(session);
  }

  /** Committed marker rows whose gtrid starts with `prefix`, oldest first, at most `limit`; rows still being inserted are skipped. */
  async listMarkers(prefix: string, limit: number): Promise<MarkerRow[]> {
    if (!PRINTABLE_ASCII.test(prefix) || prefix.length > GTRID_LENGTH) return [];
    const top = Math.floor(limit);
    if (!(top > 0)) return [];
    const t = this.options.types;
    const rows = await this.sessions.use('list commit markers', async (s) =>
      (await s.execute(LIST_MARKERS, [varcharParameter(likePrefix(prefix), PATTERN_LENGTH, t), { type: t.Int, value: Math.min(top, 2_147_483_647) }])).rows,
    );
    const markers: MarkerRow[] = [];
    for (const row of rows) {
      const { gtrid, outcome, created_at: createdAt } = row;
      if (typeof gtrid !== 'string' || (outcome !== 'commit' && outcome !== 'abort')) {
        this.options.logger.warn({ participant: this.name, gtrid, outcome }, 'ignoring a txcoord_markers row txcoord did not write');
        continue;
      }
      markers.push({ gtrid, outcome, createdAt: createdAt instanceof Date ? createdAt.getTime() : Number(createdAt) });
    }
    return markers;
  }

  /** Deletes these marker rows, in autocommit statements of up to 500 keys; unknown gtrids are ignored. */
  async deleteMarkers(gtrids: readonly string[]): Promise<void> {
    const keys = [...new Set(gtrids)].filter((g) => typeof g === 'string' && g.length > 0 && g.length <= GTRID_LENGTH && PRINTABLE_ASCII.test(g));
    if (keys.length === 0) return;
    const t = this.options.types;
    await this.sessions.use('delete commit markers', async (s) => {
      for (let i = 0; i < keys.length; i += DELETE_MARKERS_CHUNK) {
        const chunk = keys.slice(i, i + DELETE_MARKERS_CHUNK);
        await s.execute(deleteMarkersSql(chunk.length), chunk.map((g) => varcharParameter(g, GTRID_LENGTH, t)));
      }
    });
  }

  /** Deletes the barrier rows in `range` in one autocommit statement on a pooled session. */
  async deleteBarriers(range: BarrierRange): Promise<number> {
    checkBarrierRange(this.name, range);
    const t = this.options.types;
    return this.sessions.use('delete barrier rows', async (s) => {
      if (Number((await s.execute(BARRIER_EXISTS)).rows[0]?.['present']) !== 1) return 0;
      return (await s.execute(DELETE_BARRIERS, [varcharParameter(range.from, BARRIER_KEY_LENGTH, t), varcharParameter(range.before, BARRIER_KEY_LENGTH, t)])).rowCount;
    });
  }

  /** Ends the pool; sessions still pinned by branches close when released. */
  close(): Promise<void> {
    this.sessions.close();
    this.closing ??= this.pool.end();
    return this.closing;
  }

  /** Runs `fn` on a pooled session outside any transaction; failures become TXC_PARTICIPANT_UNAVAILABLE. */
  private denied(what: string, grant: string, err?: unknown, c?: MssqlErrorClass): TxcError {
    // Not retryable: it stops the coordinator at start with the fix in the message.
    return new TxcError('TXC_PERMISSION_DENIED', `Participant ${this.name}: ${what}; run \`${grant}\` as an administrator, or create the tables as one (docs/mssql.md)`, {
      cause: err,
      retryable: false,
      details: { participant: this.name, grant, number: c?.number, code: c?.code },
    });
  }

  private unsupported(operation: string): TxcError {
    return new TxcError(
      'TXC_UNSUPPORTED',
      `Participant ${this.name} (SQL Server) cannot ${operation}: tedious implements no distributed transactions, so SQL Server takes part one-phase only (last resource or saga)`,
      { details: { participant: this.name, operation } },
    );
  }
}

function stringOr(value: unknown, fallback: string): string {
  return typeof value === 'string' && value.length > 0 ? value : fallback;
}

/** A bracket-quoted SQL Server identifier, for the GRANT statements named in error messages. */
function quote(identifier: string): string {
  return `[${identifier.replace(/]/g, ']]')}]`;
}
