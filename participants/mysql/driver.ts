/**
 * The slice of mysql2/promise this adapter uses. Typing only this slice keeps mysql2 out of the
 * branch and participant code, so unit tests drive them with small recording fakes.
 */

/** What mysql2 answers for a statement that returns no rows (its ResultSetHeader). */
export interface MysqlOkPacket {
  readonly affectedRows: number;
  readonly serverStatus: number;
}

/** A connection checked out of the pool. */
export interface MysqlConnection {
  /**
   * Text protocol, values interpolated client-side: XA statements must go through here, never
   * through `execute()`, whose prepared-statement protocol rejects them. Resolves to
   * `[rows | MysqlOkPacket | one of those per result for multi-result calls, fields]`.
   */
  query(sql: string, values?: unknown[]): Promise<[unknown, unknown]>;
  /** Emitted when the connection fails with no statement waiting for an answer. */
  on(event: 'error', listener: (err: Error) => void): unknown;
  removeListener(event: 'error', listener: (err: Error) => void): unknown;
  /** Returns the connection to the pool as it is. */
  release(): void;
  /**
   * Removes the connection from the pool and closes it. mysql2 half-closes the socket, so a
   * statement already running still answers; the server acts on the disconnect afterwards.
   */
  destroy(): void;
}

/** The pool. */
export interface MysqlPool {
  getConnection(): Promise<MysqlConnection>;
  end(): Promise<void>;
}

/** The real mysql2 promise connection's query, which also takes `{ sql, timeout }`. */
interface TimedQueryConnection extends Omit<MysqlConnection, 'query'> {
  query(options: { sql: string; timeout: number }, values?: unknown[]): Promise<[unknown, unknown]>;
}

/**
 * A pool whose connections give every statement mysql2's per-query `timeout`: past it mysql2
 * fails the statement (PROTOCOL_SEQUENCE_TIMEOUT, fatal) and closes the connection, so a network
 * that silently drops packets cannot hang a branch forever.
 */
export function withQueryTimeout(pool: { getConnection(): Promise<TimedQueryConnection>; end(): Promise<void> }, timeoutMs: number): MysqlPool {
  return {
    async getConnection() {
      const conn = await pool.getConnection();
      return {
        query: (sql, values) => conn.query({ sql, timeout: timeoutMs }, values),
        on: (event, listener) => conn.on(event, listener),
        removeListener: (event, listener) => conn.removeListener(event, listener),
        release: () => conn.release(),
        destroy: () => conn.destroy(),
      };
    },
    end: () => pool.end(),
  };
}
