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

/** A JSON value, as saga inputs, bodies and results are stored. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/**
 * The commit decision of an atomic transaction. With protocol '2pc' it is forced, and the
 * transaction is committed from the moment it is durable. With 'last-resource' the commit point
 * is the marker row committed in `markerIn`; this record is then written unforced, as an audit
 * fact and to drive phase-two retries, and recovery asks the marker when the record is missing.
 */
export interface CommitRecord extends AuditFields {
  readonly type: 'commit';
  readonly gtrid: string;
  readonly branches: readonly BranchRecord[];
  /** When the decision was taken (ms since epoch). */
  readonly decidedAt: number;
  /** Absent in logs written before last-resource support: '2pc'. */
  readonly protocol?: '2pc' | 'last-resource';
  /** Participant holding the commit marker (protocol 'last-resource'). */
  readonly markerIn?: string;
  /** Set when this decision commits the prepared branches of a saga-mode transaction. */
  readonly saga?: true;
}

/** What a saga step does on a participant: a POST to an HTTP service, or a statement in a database. */
export type SagaOperation =
  | { readonly path: string; readonly body?: JsonValue }
  | { readonly sql: string; readonly params?: readonly JsonValue[] };

/** A saga step given as data, so any coordinator process can run it from the log. */
export interface SagaStepSpec {
  /** Unique within the saga: 1-64 of A-Z a-z 0-9 _ - . */
  readonly name: string;
  readonly participant: string;
  /** Absent only for the steps of a saga-mode transaction, whose actions ran inside its callback. */
  readonly action?: SagaOperation;
  /** What undoes the action; omit for a step with nothing to undo. */
  readonly compensate?: SagaOperation | readonly SagaOperation[];
  /** Steps that must finish first; default: the step before it. `[]` runs it from the start. */
  readonly after?: readonly string[];
  /** Deadline of the action, all retries included. */
  readonly timeoutMs?: number;
}

/**
 * The forced first record of a saga: everything needed to run it again in another process.
 * kind 'steps': the steps are here as data; 'defined': a definition registered under `name`,
 * run with `input`; 'transaction': a coord.transaction in saga mode, whose steps are its local
 * branches (already done when this is written) and whose compensations are SQL.
 */
export interface SagaRecord extends AuditFields {
  readonly type: 'saga';
  readonly gtrid: string;
  readonly kind: 'steps' | 'defined' | 'transaction';
  readonly name?: string;
  readonly input?: JsonValue;
  readonly steps?: readonly SagaStepSpec[];
  /** Past this time (ms since epoch) a saga still going forward turns back and compensates. */
  readonly deadlineAt?: number;
  /** The caller's idempotency key, when submitted with one. */
  readonly idempotencyKey?: string;
}

/** A step's progress: `intent` is forced before the operation runs, its result after. */
export interface SagaStepRecord {
  readonly type: 'saga-step';
  readonly gtrid: string;
  readonly step: string;
  readonly op: 'action' | 'compensate';
  readonly phase: 'intent' | 'done' | 'failed';
  readonly result?: JsonValue;
  readonly error?: { readonly code: string; readonly message: string };
  readonly at: number;
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

/** Written once the transaction or saga needs nothing more (not forced for 2PC; forced for sagas). */
export interface EndRecord {
  readonly type: 'end';
  readonly gtrid: string;
  readonly at: number;
  /** A saga's final state. */
  readonly status?: 'committed' | 'compensated' | 'failed';
}

/** Every record the decision log holds. Each names the transaction (`gtrid`) it belongs to. */
export type LogRecord = CommitRecord | HeuristicRecord | SagaRecord | SagaStepRecord | EndRecord;
