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

/** An in-memory log: nothing survives the process. Only for tests and throwaway demos. */
export interface MemoryLogConfig {
  readonly type: 'memory';
}

/** Every log backend's configuration. */
export type LogConfig = FileLogConfig | MemoryLogConfig;
