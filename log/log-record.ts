/** One branch of a committed global transaction, as the decision log remembers it. */
export interface BranchRecord {
  /** Participant name from the configuration. */
  readonly participant: string;
  /** Branch qualifier (`b<n>`); with the gtrid it rebuilds the xid. */
  readonly bqual: string;
  /** The database's local transaction id, where it can later report that transaction's fate. */
  readonly localTxId?: string;
}

/** Audit facts stored with every decision. */
export interface AuditFields {
  readonly coordinatorId: string;
  readonly host: string;
  readonly pid: number;
  /** Caller-supplied metadata (user id, request id...). */
  readonly meta?: Readonly<Record<string, string | number | boolean | null>>;
  /** When the transaction started (ms since epoch). */
  readonly startedAt: number;
}

/** The forced record: from the moment it is durable, the transaction is committed. */
export interface CommitRecord extends AuditFields {
  readonly type: 'commit';
  readonly gtrid: string;
  readonly branches: readonly BranchRecord[];
  /** When the decision was taken (ms since epoch). */
  readonly decidedAt: number;
}

/** A branch that reached a different outcome than the log decided. */
export interface HeuristicRecord {
  readonly type: 'heuristic';
  readonly gtrid: string;
  readonly participant: string;
  readonly bqual: string;
  readonly expected: 'commit' | 'rollback';
  readonly actual: 'committed' | 'rolled-back' | 'unknown';
  readonly at: number;
}

/** Written (not forced) once every branch acknowledged: the transaction needs nothing more. */
export interface EndRecord {
  readonly type: 'end';
  readonly gtrid: string;
  readonly at: number;
}

/** Every record the decision log holds. Each names the transaction (`gtrid`) it belongs to. */
export type LogRecord = CommitRecord | HeuristicRecord | EndRecord;
