import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { TxcError } from '../../coordinator/errors.js';
import { createDefaultLogger, redactUrl } from '../../coordinator/logger.js';
import { assertCoordinatorId } from '../../coordinator/xid.js';
import type { PostgresLogConfig } from '../decision-log.js';
import { ensureLogTables } from './ensure-log-tables.js';
import { registerInstance } from './instance-lease.js';
import type { LogIdentity } from './log-identity.js';
import { createLogPool, type LogPool } from './log-pool.js';
import { logTables } from './log-tables.js';
import { LogTransactionError } from './log-transaction.js';
import { isRetryable } from './pg-error-kind.js';
import { PostgresLog, type PostgresDecisionLog } from './postgres-log.js';

/** Default {@link PostgresLogConfig.leaseMs}. */
export const DEFAULT_LEASE_MS = 15_000;
/** Default {@link PostgresLogOptions.retentionMs}: a week. */
export const DEFAULT_RETENTION_MS = 7 * 24 * 3600 * 1000;

/** Options of {@link openPostgresLog}; all but `coordinatorId` are optional. */
export interface PostgresLogOptions {
  /** The coordinator id of this process: the owner of what it writes. */
  readonly coordinatorId: string;
  /** Receives warnings (take-overs, lost commits) and errors. Default: pino to stderr. */
  readonly logger?: Logger;
  /**
   * compact() deletes transactions ended longer ago than this; until then history() and
   * findByIdempotencyKey() still find them. Default 7 days.
   */
  readonly retentionMs?: number;
  /** Longest an unforced record waits for a forced one to carry it to the database. Default 50 ms. */
  readonly flushDelayMs?: number;
  /** Records per database transaction at most. Default 500. */
  readonly maxBatch?: number;
  /** Connections to the log database. Default 4 (writer, lease renewal, take-over and reads). */
  readonly poolSize?: number;
  /** How long to wait for a connection to be made. Default 5 000 ms. */
  readonly connectTimeoutMs?: number;
  /**
   * After a COMMIT whose answer was lost, how long to ask the server whether it committed before
   * failing the append with `durability: 'unknown'`. Default 2 000 ms.
   */
  readonly commitCheckMs?: number;
  /** A coordinator id released after a recovery pass may be claimed again after this long. Default 60 000 ms. */
  readonly reclaimAfterMs?: number;
  /** Internal, for tests: renew the leases on a timer (default true); off, only renewLeases() does. */
  readonly autoRenew?: boolean;
  /** Internal, for tests: the connections to use instead of opening `config.connectionString`. */
  readonly pool?: LogPool;
}

function positiveInt(value: unknown, field: string, fallback: number, min = 1): number {
  const v = value ?? fallback;
  // Bound to int4 in SQL (milliseconds): about 24 days at most.
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > 2_000_000_000) {
    throw new TxcError('TXC_CONFIG_INVALID', `${field} must be an integer from ${min} to 2000000000, not ${String(v)}`, { details: { field } });
  }
  return v;
}

/**
 * Opens the decision log in PostgreSQL that several coordinator processes share: creates the
 * tables if missing, registers this process under its coordinator id with a lease, and loads
 * the live records of the transactions that id owns (its own, e.g. after a restart).
 *
 * Throws TXC_CONFIG_INVALID / TXC_ID_INVALID for a bad config or id, TXC_LOG_LOCKED when another
 * live process uses the same coordinator id on this log (or is recovering it), and TXC_LOG_IO
 * when the database cannot be reached or the tables cannot be created.
 */
export async function openPostgresLog(config: PostgresLogConfig, opts: PostgresLogOptions): Promise<PostgresDecisionLog> {
  if (!opts.pool && (typeof config.connectionString !== 'string' || config.connectionString === '')) {
    throw new TxcError('TXC_CONFIG_INVALID', 'log.connectionString must be a non-empty PostgreSQL connection string', { details: { field: 'log.connectionString' } });
  }
  const tables = logTables(config.schema);
  assertCoordinatorId(opts.coordinatorId);
  const leaseMs = positiveInt(config.leaseMs, 'log.leaseMs', DEFAULT_LEASE_MS, 100);
  const commitCheckMs = positiveInt(opts.commitCheckMs, 'commitCheckMs', 2_000);
  const settings = {
    flushDelayMs: positiveInt(opts.flushDelayMs, 'flushDelayMs', 50, 0),
    maxBatch: positiveInt(opts.maxBatch, 'maxBatch', 500),
    commitCheckMs,
    retentionMs: positiveInt(opts.retentionMs, 'retentionMs', DEFAULT_RETENTION_MS, 0),
    reclaimAfterMs: positiveInt(opts.reclaimAfterMs, 'reclaimAfterMs', 60_000, 0),
    autoRenew: opts.autoRenew ?? true,
  };
  const logger = opts.logger ?? createDefaultLogger();
  const pool =
    opts.pool ??
    createLogPool({
      connectionString: config.connectionString,
      logger,
      size: positiveInt(opts.poolSize, 'poolSize', 4, 2),
      connectTimeoutMs: positiveInt(opts.connectTimeoutMs, 'connectTimeoutMs', 5_000),
    });
  const identity: LogIdentity = { coordinatorId: opts.coordinatorId, token: randomUUID(), host: hostname(), pid: process.pid, leaseMs };
  try {
    await ensureLogTables(pool, tables);
    const server = await pool.query<{ s: string; v: number }>(`select current_setting('synchronous_commit') as s, current_setting('server_version_num')::int as v`);
    // pg_current_xact_id / pg_xact_status, which settle a lost COMMIT, arrived in PostgreSQL 13.
    if ((server.rows[0]?.v ?? 0) < 130000) {
      throw new TxcError('TXC_CONFIG_INVALID', `the decision log needs PostgreSQL 13 or later (server_version_num ${String(server.rows[0]?.v)})`, {
        details: { field: 'log.connectionString' },
      });
    }
    const serverSyncOff = server.rows[0]?.s === 'off';
    if (serverSyncOff) logger.warn({ schema: tables.schema }, 'synchronous_commit is off on the log database; forced decision log batches turn it on for themselves');
    const started = performance.now();
    const registered = await registerInstance(pool, tables, identity, commitCheckMs);
    return new PostgresLog({
      pool,
      tables,
      identity,
      logger,
      settings: { ...settings, serverSyncOff },
      records: registered.records,
      leaseValidUntil: started + leaseMs,
    });
  } catch (err) {
    await pool.end().catch(() => undefined);
    const cause = err instanceof LogTransactionError ? err.cause : err;
    if (TxcError.is(cause)) throw cause;
    const message = cause instanceof Error ? cause.message : String(cause);
    throw new TxcError('TXC_LOG_IO', `cannot open the decision log in PostgreSQL schema ${tables.schema}: ${redactUrl(message)}`, {
      cause,
      retryable: isRetryable(cause),
      details: { schema: tables.schema },
    });
  }
}
