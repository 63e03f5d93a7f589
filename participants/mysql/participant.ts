import type { Logger } from 'pino';
import { TxcError } from '../../coordinator/errors.js';
import { acquireWithTimeout } from '../acquire-with-timeout.js';
import { fromMysqlRecoverRow, toMysqlXid, xidKey, type Xid } from '../../coordinator/xid.js';
import type { Capabilities, Participant, ResolveResult } from '../participant.js';
import { MysqlBranch, type MysqlBranchHost } from './branch.js';
import type { MysqlConnection, MysqlPool } from './driver.js';
import { classifyMysqlError, type MysqlErrorClass } from './errors.js';
import { INNODB_SUPPORT, XA_RECOVER, xaCommitSql, xaRollbackSql, xaStartSql } from './sql.js';

/** Settings the participant needs besides its pool. */
export interface MysqlParticipantOptions {
  /** How long to wait for a pooled connection before TXC_POOL_TIMEOUT. */
  readonly acquireTimeoutMs: number;
  readonly logger: Logger;
}

type RecoverRow = Parameters<typeof fromMysqlRecoverRow>[0];

/**
 * A MySQL 8 / MariaDB database driven with XA statements. No `localStatus`: neither server can
 * tell the fate of a finished XA branch.
 */
export class MysqlParticipant implements Participant {
  readonly driver = 'mysql';
  readonly capabilities: Capabilities = { twoPhase: true };
  private readonly host: MysqlBranchHost;
  private closing: Promise<void> | undefined;

  constructor(
    readonly name: string,
    private readonly pool: MysqlPool,
    private readonly options: MysqlParticipantOptions,
  ) {
    this.host = { name, logger: options.logger, resolve: (xid, action) => this.resolve(xid, action) };
  }

  /** Reachable, InnoDB available, and this user may run XA RECOVER. */
  async preflight(): Promise<void> {
    const support = await this.withConnection('preflight', async (conn) => {
      const [rows] = await conn.query(INNODB_SUPPORT);
      return Array.isArray(rows) ? (rows[0] as Record<string, unknown> | undefined)?.support : undefined;
    });
    if (support !== 'YES' && support !== 'DEFAULT') {
      throw new TxcError('TXC_PARTICIPANT_UNAVAILABLE', `Participant ${this.name} cannot do XA: InnoDB is not available (support = ${String(support)})`, {
        details: { participant: this.name },
      });
    }
    await this.listInDoubt();
  }

  /** XA START on a pooled connection that the branch keeps until phase two. */
  async begin(xid: Xid): Promise<MysqlBranch> {
    toMysqlXid(xid); // an invalid xid fails before a connection is taken
    const conn = await this.acquire();
    try {
      await conn.query(xaStartSql(xid));
    } catch (err) {
      conn.destroy();
      throw this.unavailable('could not start an XA transaction', err, classifyMysqlError(err));
    }
    return new MysqlBranch(xid, conn, this.host);
  }

  /** Prepared branches (XA RECOVER) whose xid is txcoord's. */
  listInDoubt(): Promise<Xid[]> {
    return this.withConnection('XA RECOVER', async (conn) => {
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
    this.closing ??= this.pool.end();
    return this.closing;
  }

  private async resolve(xid: Xid, action: 'commit' | 'rollback'): Promise<ResolveResult> {
    const sql = action === 'commit' ? xaCommitSql(xid) : xaRollbackSql(xid);
    const conn = await this.acquire();
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

  private async withConnection<T>(operation: string, fn: (conn: MysqlConnection) => Promise<T>): Promise<T> {
    const conn = await this.acquire();
    let result: T;
    try {
      result = await fn(conn);
    } catch (err) {
      const c = classifyMysqlError(err);
      if (c.kind === 'connection') conn.destroy();
      else conn.release();
      if (c.kind === 'access-denied' && operation === 'XA RECOVER') {
        throw new TxcError('TXC_XA_RECOVER_DENIED', `Participant ${this.name} refused XA RECOVER`, {
          cause: err,
          details: { participant: this.name, errno: c.errno, code: c.code },
        });
      }
      throw this.unavailable(`${operation} failed`, err, c);
    }
    conn.release();
    return result;
  }

  /** A pooled connection, or TXC_POOL_TIMEOUT after acquireTimeoutMs (mysql2's pool waits forever). */
  private acquire(): Promise<MysqlConnection> {
    if (this.closing) {
      return Promise.reject(new TxcError('TXC_PARTICIPANT_UNAVAILABLE', `Participant ${this.name} is closed`, { details: { participant: this.name } }));
    }
    return acquireWithTimeout<MysqlConnection>({
      participant: this.name,
      acquireTimeoutMs: this.options.acquireTimeoutMs,
      connect: () => this.pool.getConnection(),
      giveBack: (conn) => conn.release(),
      onError: (err) => this.unavailable('could not connect', err, classifyMysqlError(err)),
    });
  }

  private unavailable(why: string, err: unknown, c: MysqlErrorClass): TxcError {
    return new TxcError('TXC_PARTICIPANT_UNAVAILABLE', `Participant ${this.name}: ${why}`, {
      cause: err,
      retryable: c.retryable,
      details: { participant: this.name, errno: c.errno, code: c.code },
    });
  }
}

function isRecoverRow(row: unknown): row is RecoverRow {
  if (typeof row !== 'object' || row === null) return false;
  const r = row as Record<string, unknown>;
  const numeric = (v: unknown) => typeof v === 'number' || typeof v === 'string';
  return numeric(r.formatID) && numeric(r.gtrid_length) && numeric(r.bqual_length) && (typeof r.data === 'string' || Buffer.isBuffer(r.data));
}
