import type { Xid } from '../coordinator/xid.js';

/** A statement's result in a driver-neutral shape. */
export interface QueryResult {
  /** Rows returned (empty for statements that return none). */
  readonly rows: Record<string, unknown>[];
  /** Rows returned, or rows affected for INSERT/UPDATE/DELETE. */
  readonly rowCount: number;
}

/** What an adapter can do; the coordinator chooses the protocol from this, never from the driver name. */
export interface Capabilities {
  /** The database can prepare a branch and commit or roll it back later (2PC). */
  readonly twoPhase: boolean;
}

/** Outcome of a branch's prepare. */
export interface PrepareResult {
  /**
   * The database's own id of the local transaction, when it can later tell that transaction's
   * fate (PostgreSQL `pg_xact_status`): stored in the commit record to detect heuristic outcomes.
   */
  readonly localTxId?: string;
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
}
