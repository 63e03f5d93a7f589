/**
 * The slice of node-postgres this adapter uses. Typing only this slice keeps `pg` out of the
 * branch and participant code, so unit tests drive them with small recording fakes.
 */

/** Transaction status from the server's last ReadyForQuery: idle, in a block, in a failed block. */
export type PgTransactionStatus = 'I' | 'T' | 'E' | null;

/** One statement's result as node-postgres reports it. */
export interface PgResult {
  /** Command tag: 'SELECT', 'INSERT', 'PREPARE', 'ROLLBACK'… */
  readonly command: string;
  /** Rows returned or affected; null for utility statements. */
  readonly rowCount: number | null;
  readonly rows: Record<string, unknown>[];
}

/** A client checked out of the pool. */
export interface PgClient {
  /** Text without values may hold several statements; it then resolves to one result per statement. */
  query(text: string, values?: unknown[]): Promise<PgResult | PgResult[]>;
  /**
   * Accurate after a statement succeeds; right after a failure it may still show the status
   * from before (pg rejects on ErrorResponse, before ReadyForQuery arrives).
   */
  getTransactionStatus(): PgTransactionStatus;
  /** A checked-out client emits 'error' when its socket breaks between statements. */
  on(event: 'error', listener: (err: Error) => void): unknown;
  removeListener(event: 'error', listener: (err: Error) => void): unknown;
  /** Returns the client to the pool; a truthy argument closes the connection instead. */
  release(destroy?: boolean | Error): void;
}

/** The pool. */
export interface PgPool {
  /** Checks out a client, opening a connection when none is idle. */
  connect(): Promise<PgClient>;
  /** Idle clients that fail are reported here; without a listener Node would crash. */
  on(event: 'error', listener: (err: Error) => void): unknown;
  /** Each new connection, once: the place to give every client a permanent 'error' listener. */
  on(event: 'connect', listener: (client: PgClient) => void): unknown;
  end(): Promise<void>;
}
