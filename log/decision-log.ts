import type { LogRecord } from './log-record.js';

/**
 * The durable memory of the coordinator. A transaction is live from its first record until its
 * `end` record; the log itself tracks this, so compaction can keep exactly the live records.
 */
export interface DecisionLog {
  /**
   * Appends one record. With `force`, resolves only once the record is on stable storage
   * (concurrent forced appends share one flush: group commit); without, once it is buffered.
   * Rejects with TXC_LOG_IO when it cannot write; nothing is then durable.
   */
  append(record: LogRecord, force: boolean): Promise<void>;
  /** The records of every live transaction, oldest first (what recovery must finish). */
  live(): readonly LogRecord[];
  /** Rewrites storage so it holds only the live records; bounded by live transactions, not history. */
  compact(): Promise<void>;
  /** Flushes anything buffered and releases the log (its lock). */
  close(): Promise<void>;
}

/** Configuration of the file backend. */
export interface FileLogConfig {
  readonly type: 'file';
  /** Directory holding the segments and the lock file; created if missing. */
  readonly dir: string;
  /** Roll to a new segment (and compact) past this many bytes. Default 16 MiB. */
  readonly segmentBytes?: number;
}

/**
 * The decision log in PostgreSQL tables, shared by several coordinator processes (each with its
 * own coordinator id). Tables are created on first use; only bound parameters are sent.
 */
export interface PostgresLogConfig {
  readonly type: 'postgres';
  /** e.g. `postgres://txcoord:${TXCOORD_LOG_PASSWORD}@logdb:5432/txcoord`. */
  readonly connectionString: string;
  /** Schema holding the log tables. Default `public`. */
  readonly schema?: string;
  /** How long a lease lasts without renewal; renewed every third of it. Default 15 000 ms. */
  readonly leaseMs?: number;
}

/** An in-memory log: nothing survives the process. Only for tests and throwaway demos. */
export interface MemoryLogConfig {
  readonly type: 'memory';
}

/** Every log backend's configuration. */
export type LogConfig = FileLogConfig | MemoryLogConfig | PostgresLogConfig;

/** What one take-over pass claimed. */
export interface TakeOver {
  /** Transactions and sagas whose owner's lease had expired, now owned here (their records are in live()). */
  readonly transactions: readonly string[];
  /**
   * Coordinator ids whose process is gone (instance lease expired), claimed by this process for
   * this recovery pass: their prepared branches without a commit record are rolled back here.
   */
  readonly coordinators: readonly string[];
}

/**
 * A decision log several coordinator processes share. Every transaction (commit record) and saga
 * is owned by the process that wrote its first record, through a lease it renews while alive;
 * when a lease expires another process takes the transaction over (a conditional update, so two
 * never do), and live() then holds its records there. live() holds only what this process owns.
 */
export interface SharedDecisionLog extends DecisionLog {
  readonly shared: true;
  /** This process's coordinator id (the instance whose lease it renews). */
  readonly owner: string;
  /** Whether this process still owns `gtrid`: false once another took it over (stop driving it). */
  owns(gtrid: string): boolean;
  /** Takes over expired transactions and dead coordinators (at most `limit` transactions). */
  takeOver(limit?: number): Promise<TakeOver>;
  /** Gives up a dead coordinator id claimed by takeOver, once its pass is done. */
  releaseCoordinator(coordinatorId: string): Promise<void>;
  /** Every record ever written for `gtrid` (live or ended), oldest first: status queries. */
  history(gtrid: string): Promise<LogRecord[]>;
  /** The saga started with this caller idempotency key, if any. */
  findByIdempotencyKey(key: string): Promise<string | undefined>;
  /**
   * The oldest gtrid of `coordinatorId` (by its time-ordered uuid) that has not ended, whoever
   * drives it now (this process, or another after a take-over); undefined when none.
   */
  oldestUnended(coordinatorId: string): Promise<string | undefined>;
}

/** Whether `log` is shared by several processes. */
export function isSharedLog(log: DecisionLog): log is SharedDecisionLog {
  return (log as Partial<SharedDecisionLog>).shared === true;
}
