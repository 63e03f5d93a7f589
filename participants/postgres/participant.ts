import type { Logger } from 'pino';
import { TxcError } from '../../coordinator/errors.js';
import { acquireWithTimeout } from '../acquire-with-timeout.js';
import { fromPgGid, toPgGid, xidKey, type Xid } from '../../coordinator/xid.js';
import type { Capabilities, LocalTxStatus, Participant, ResolveResult } from '../participant.js';
import { PostgresBranch, type PostgresBranchHost } from './branch.js';
import type { PgClient, PgPool, PgResult } from './driver.js';
import { classifyPgError, type PgErrorClass } from './errors.js';
import {
  BEGIN,
  LIST_PREPARED,
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
}

const XACT_STATUS_MAP: Readonly<Record<string, LocalTxStatus>> = {
  committed: 'committed',
  aborted: 'aborted',
  'in progress': 'in-progress',
};

/** A PostgreSQL database driven with BEGIN / PREPARE TRANSACTION / COMMIT PREPARED. */
export class PostgresParticipant implements Participant {
  readonly driver = 'postgres';
  readonly capabilities: Capabilities = { twoPhase: true };
  private readonly host: PostgresBranchHost;
  private closing: Promise<void> | undefined;

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
    this.host = { name, logger: options.logger, resolve: (xid, action, pinned) => this.resolve(xid, action, pinned) };
  }

  /** Reachable, and max_prepared_transactions is not 0. */
  async preflight(): Promise<void> {
    const value = await this.withClient('preflight', async (client) => {
      return lastOf(await client.query(SHOW_MAX_PREPARED))?.rows[0]?.max_prepared_transactions;
    });
    if (Number(value) === 0) {
      throw new TxcError('TXC_PREPARED_TRANSACTIONS_DISABLED', `Participant ${this.name} has max_prepared_transactions = 0`, {
        details: { participant: this.name },
      });
    }
  }

  /** BEGIN on a pooled client that the branch keeps until it prepares or commits. */
  async begin(xid: Xid): Promise<PostgresBranch> {
    toPgGid(xid); // an invalid xid fails before a connection is taken
    const client = await this.acquire();
    try {
      await client.query(BEGIN);
    } catch (err) {
      client.release(true);
      throw this.unavailable('could not start a transaction', err, classifyPgError(err));
    }
    return new PostgresBranch(xid, client, this.host);
  }

  /** Prepared transactions of this database whose gid is txcoord's. */
  listInDoubt(): Promise<Xid[]> {
    return this.withClient('list in-doubt', async (client) => {
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
    const client = await this.acquire();
    let out: PgResult | PgResult[];
    try {
      out = await client.query(XACT_STATUS, [localTxId]);
    } catch (err) {
      const c = classifyPgError(err);
      client.release(c.kind === 'connection' ? true : undefined);
      // 22023: an xid from the future, i.e. from another cluster or before a restore.
      if (c.sqlState === '22023') return 'unknown';
      throw this.unavailable(`could not read the status of local transaction ${localTxId}`, err, c);
    }
    client.release();
    const status = lastOf(out)?.rows[0]?.status;
    return (typeof status === 'string' && XACT_STATUS_MAP[status]) || 'unknown';
  }

  /** Ends the pool; clients still pinned by branches close when released. */
  close(): Promise<void> {
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
    const client = pinned ?? (await this.acquire());
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

  private async withClient<T>(operation: string, fn: (client: PgClient) => Promise<T>): Promise<T> {
    const client = await this.acquire();
    let result: T;
    try {
      result = await fn(client);
    } catch (err) {
      const c = classifyPgError(err);
      client.release(c.kind === 'connection' ? true : undefined);
      throw this.unavailable(`${operation} failed`, err, c);
    }
    client.release();
    return result;
  }

  /** A pooled client, or TXC_POOL_TIMEOUT after acquireTimeoutMs (pg-pool's own timeout error has no code). */
  private acquire(): Promise<PgClient> {
    if (this.closing) {
      return Promise.reject(new TxcError('TXC_PARTICIPANT_UNAVAILABLE', `Participant ${this.name} is closed`, { details: { participant: this.name } }));
    }
    return acquireWithTimeout<PgClient>({
      participant: this.name,
      acquireTimeoutMs: this.options.acquireTimeoutMs,
      connect: () => this.pool.connect(),
      giveBack: (client) => client.release(),
      onError: (err) => this.unavailable('could not connect', err, classifyPgError(err)),
    });
  }

  private unavailable(why: string, err: unknown, c: PgErrorClass): TxcError {
    return new TxcError('TXC_PARTICIPANT_UNAVAILABLE', `Participant ${this.name}: ${why}`, {
      cause: err,
      retryable: c.retryable,
      details: { participant: this.name, sqlState: c.sqlState, code: c.code },
    });
  }
}

function lastOf(out: PgResult | PgResult[]): PgResult | undefined {
  return Array.isArray(out) ? out[out.length - 1] : out;
}
