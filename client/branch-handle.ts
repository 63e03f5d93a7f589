import type { WireBranch } from './wire-types.js';

/** Rows and row count of one statement run through a branch helper. */
export interface BranchQueryResult<R extends Record<string, unknown> = Record<string, unknown>> {
  readonly rows: R[];
  /** Rows returned, or rows affected for statements that return none. */
  readonly rowCount: number;
}

/**
 * One branch of a client-driven transaction, run by the application on its own connection.
 * `pgBranch` and `mysqlBranch` return one; for another driver, write an object of this shape
 * (prepare with the branch's xid, roll back an unprepared branch) and pass it to `tx.attach`.
 */
export interface BranchHandle {
  readonly branch: WireBranch;
  /**
   * Phase one. Resolves only when the branch is prepared; rejects (TXC_PREPARE_FAILED) when it is
   * not, or may not be, after which the transaction must be aborted through the server.
   */
  prepare(): Promise<void>;
  /**
   * Rolls back a branch that is not prepared. A prepared branch belongs to the coordinator and
   * is left alone: abort the transaction (`client.abort(id)`) to roll it back.
   */
  rollback(): Promise<void>;
}
