import type { Xid } from '../coordinator/xid.js';

/** A statement's result in a driver-neutral shape. */
export interface QueryResult {
  /** Rows returned (empty for statements that return none). */
  readonly rows: Record<string, unknown>[];
  /** Rows returned, or rows affected for INSERT/UPDATE/DELETE. */
  readonly rowCount: number;
}

/**
 * What an adapter can do; the coordinator chooses the protocol from this, never from the driver
 * name. Two-phase implies local transactions. Neither means compensation only (an HTTP service).
 */
export interface Capabilities {
  /** The database can prepare a branch and commit or roll it back later (2PC). */
  readonly twoPhase: boolean;
  /**
   * The participant runs local (one-phase) transactions: it can be the commit-marked last
   * resource, and saga steps on it run exactly once behind the barrier table.
   */
  readonly localTransactions: boolean;
}

/** The three kinds of participant, from the strongest guarantee they can take part in. */
export type ParticipantKind = 'two-phase' | 'one-phase' | 'compensation-only';

/** A participant's kind, from its capabilities. */
export function participantKind(c: Capabilities): ParticipantKind {
  if (c.twoPhase) return 'two-phase';
  return c.localTransactions ? 'one-phase' : 'compensation-only';
}

/** Outcome a commit marker row records (`txcoord_markers`, one row per global transaction). */
export type MarkerOutcome = 'commit' | 'abort';

/** One row of `txcoord_markers`. */
export interface MarkerRow {
  readonly gtrid: string;
  readonly outcome: MarkerOutcome;
  /** When the row was written (ms since epoch, the database's clock). */
  readonly createdAt: number;
}

/** Operations a saga barrier row can record. */
export type BarrierOp = 'action' | 'compensate';

/**
 * Key of one `txcoord_barrier` row, unique per global id, step and operation. `origin` says
 * who wrote it: the operation itself, or a compensation that found no action before it and
 * wrote the action's row as a placeholder (a "null compensation"), so a late action does nothing.
 */
export interface BarrierRow {
  readonly gid: string;
  readonly step: string;
  readonly op: BarrierOp;
  readonly origin: 'action' | 'compensate';
}

/**
 * The `txcoord_barrier` rows of one coordinator's sagas started before some time: gids in
 * `[from, before)`, compared byte by byte. Gids are `txc1.<coordinator>.<uuid v7 hex>`, whose
 * first 12 hex digits are the start time, so `from` is `txc1.<coordinator>.` and `before` is
 * `from` followed by a 12-digit hex time.
 */
export interface BarrierRange {
  readonly from: string;
  readonly before: string;
}

/** Outcome of a branch's prepare. */
export interface PrepareResult {
  /**
   * The database's own id of the local transaction, when it can later tell that transaction's
   * fate (PostgreSQL `pg_xact_status`): stored in the commit record to detect heuristic outcomes.
   */
  readonly localTxId?: string;
  /**
   * The database found the branch read-only at prepare and already ended it (Oracle
   * `tpcPrepare` answering false): it must not be committed or rolled back.
   */
  readonly readOnly?: boolean;
}

/** What resolving a prepared branch found. */
export type ResolveResult =
  /** The branch was prepared and is now committed / rolled back. */
  | 'done'
  /** The database does not know the xid (already resolved, or never prepared). */
  | 'unknown'
  /** The database had already rolled the branch back itself (MySQL XA_RB*), so a commit is impossible. */
  | 'rolled-back';

/** Fate of a finished local transaction, where the database can tell it. */
export type LocalTxStatus = 'committed' | 'aborted' | 'in-progress' | 'unknown';

/**
 * One participant's work inside one global transaction, on one pinned connection.
 * Methods are called in protocol order by the coordinator only.
 */
export interface Branch {
  readonly xid: Xid;
  /** Runs one statement in the branch. Driver errors are wrapped as TXC_QUERY_FAILED with the driver error as `cause`. */
  query(sql: string, params?: readonly unknown[]): Promise<QueryResult>;
  /** Whether the branch changed anything; read-only branches skip both phases. */
  hasWritten(): Promise<boolean>;
  /** Phase one. Throws TXC_PREPARE_FAILED (branch rolled back) when the database refuses. */
  prepare(): Promise<PrepareResult>;
  /** Phase two commit of a prepared branch (on the preparing connection where the database needs it). */
  commitPrepared(): Promise<ResolveResult>;
  /** Commits without prepare (single writer, or a read-only branch releasing its locks). Throws TXC_COMMIT_FAILED / TXC_OUTCOME_UNKNOWN. */
  commitOnePhase(): Promise<void>;
  /** Rolls back, whether prepared or not; never throws for an already-finished branch. */
  rollback(): Promise<void>;
  /** Returns the pinned connection to its pool, destroying it when it may be in an unknown state. Idempotent. */
  release(destroy?: boolean): void;
  /**
   * Local-transaction branches of database adapters (those with `localTransactions`): inserts
   * the `txcoord_markers` row for `gtrid` in this transaction unless one exists. An uncommitted
   * row with that key makes this wait for its transaction (the database's unique-key lock), so
   * the answer is final: 'inserted', or the outcome of the row that was already there.
   */
  insertMarker?(gtrid: string, outcome: MarkerOutcome): Promise<'inserted' | MarkerOutcome>;
  /**
   * Inserts a `txcoord_barrier` row in this transaction unless its key (gid, step, op) exists,
   * waiting for an uncommitted one as for markers; 'inserted', or the existing row's origin.
   */
  insertBarrier?(row: BarrierRow): Promise<'inserted' | BarrierRow['origin']>;
}

/**
 * A database (or service) the coordinator drives. One adapter per database kind, each in its
 * own folder under participants/ with the same file names; the 2PC SQL lives only there.
 */
export interface Participant {
  readonly name: string;
  readonly driver: string;
  readonly capabilities: Capabilities;
  /** Checks the database is reachable and able to do 2PC; throws a TxcError naming the fix. */
  preflight(): Promise<void>;
  /** Starts a branch on a pinned connection. */
  begin(xid: Xid): Promise<Branch>;
  /** Every prepared branch in this database whose xid is txcoord's (any coordinator id). */
  listInDoubt(): Promise<Xid[]>;
  /** Commits a prepared branch from a fresh connection (recovery, retries). */
  commitPrepared(xid: Xid): Promise<ResolveResult>;
  /** Rolls back a prepared branch from a fresh connection. */
  rollbackPrepared(xid: Xid): Promise<ResolveResult>;
  /** Fate of a local transaction by the id `prepare` returned, where the database can tell. */
  localStatus?(localTxId: string): Promise<LocalTxStatus>;
  /** Closes pools and connections. */
  close(): Promise<void>;

  /**
   * Database adapters with `localTransactions`: starts a plain local transaction (no XA, no
   * PREPARE) on a pinned connection; `xid` only names it in logs. Its Branch supports
   * query / hasWritten / commitOnePhase / rollback / release / insertMarker / insertBarrier.
   * For an adapter in local-only mode `begin` does the same.
   */
  beginLocal?(xid: Xid): Promise<Branch>;
  /** Creates `txcoord_markers` and `txcoord_barrier` if missing (idempotent, safe concurrently). */
  ensureBookkeeping?(): Promise<void>;
  /** Marker rows whose gtrid starts with `prefix` (e.g. `txc1.<coordinatorId>.`), oldest first, at most `limit`. */
  listMarkers?(prefix: string, limit: number): Promise<MarkerRow[]>;
  /** Deletes these marker rows (garbage collection once their transactions ended). */
  deleteMarkers?(gtrids: readonly string[]): Promise<void>;
  /**
   * Deletes the barrier rows in `range` (garbage collection of sagas ended long ago), in one
   * autocommit statement; the number deleted, 0 when the table does not exist (never creates it).
   */
  deleteBarriers?(range: BarrierRange): Promise<number>;

  /**
   * Compensation-only services (HTTP): performs one operation. Resolves on success; rejects
   * with TXC_STEP_REJECTED for a business refusal (no retry), TXC_STEP_MISCONFIGURED for a
   * request the service can never accept, TXC_PARTICIPANT_UNAVAILABLE (retryable) otherwise.
   */
  invoke?(request: InvokeRequest): Promise<InvokeResult>;
}

/** One operation sent to a compensation-only service. */
export interface InvokeRequest {
  /** Path appended to the participant's base URL. */
  readonly path: string;
  /** JSON body. */
  readonly body?: unknown;
  /** Unique per saga, step and operation, and the same on every retry. */
  readonly idempotencyKey: string;
  /** Overrides the participant's timeout for this attempt. */
  readonly timeoutMs?: number;
  /** Aborts the attempt (saga deadline, coordinator closing). */
  readonly signal?: AbortSignal;
}

/** A service's answer to a successful operation. */
export interface InvokeResult {
  readonly status: number;
  /** Parsed JSON body, or the text when it is not JSON, or null when empty. */
  readonly body: unknown;
}
