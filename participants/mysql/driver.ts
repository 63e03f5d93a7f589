/**
 * The slice of mysql2 this adapter uses, as promises (see timedPool). Typing only this slice keeps
 * mysql2 out of the branch and participant code, so unit tests drive them with small recording fakes.
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

/** The slice of mysql2's callback-API pool connection that {@link timedPool} uses. */
interface CallbackConnection {
  query(sql: string, values: unknown[], callback: (err: Error | null, result?: unknown, fields?: unknown) => void): unknown;
  on(event: 'error', listener: (err: Error) => void): unknown;
  removeListener(event: 'error', listener: (err: Error) => void): unknown;
  release(): void;
  destroy(): void;
}

/** The slice of mysql2's callback-API pool that {@link timedPool} uses. */
interface CallbackPool {
  getConnection(callback: (err: Error | null, conn: CallbackConnection) => void): void;
  end(callback: (err?: Error | null) => void): void;
}

const NO_VALUES: unknown[] = [];

/**
 * The error a statement fails with when its answer does not come in time: mysql2's own code for
 * it, marked fatal, because the connection is left with a statement still running on it.
 */
function statementTimeout(timeoutMs: number): Error {
  return Object.assign(new Error(`no answer to the statement within ${timeoutMs} ms`), {
    code: 'PROTOCOL_SEQUENCE_TIMEOUT',
    fatal: true,
  });
}

/**
 * A promise pool over mysql2's callback API in which every statement has a deadline: past it the
 * statement fails with PROTOCOL_SEQUENCE_TIMEOUT (fatal), the branch destroys the connection, and
 * a network that silently drops packets cannot hang a branch forever.
 *
 * Not mysql2/promise with its per-query `timeout` option: mysql2 merges a `{ sql, timeout }`
 * argument with object spreads, ~4 µs per statement on Node 20 (six statements per transaction),
 * and its promise wrapper adds another promise per call. A string statement takes neither path.
 */
export function timedPool(pool: CallbackPool, timeoutMs: number): MysqlPool {
  const wrap = (conn: CallbackConnection): MysqlConnection => ({
    query: (sql, values) =>
      new Promise<[unknown, unknown]>((resolve, reject) => {
        // A promise settles once: an answer after the deadline resolves or rejects nothing.
        const timer = setTimeout(() => reject(statementTimeout(timeoutMs)), timeoutMs);
        try {
          conn.query(sql, values ?? NO_VALUES, (err, result, fields) => {
            clearTimeout(timer);
            if (err) reject(err);
            else resolve([result, fields]);
          });
        } catch (err) {
          // A synchronous throw rejects the promise anyway; the timer must not outlive it.
          clearTimeout(timer);
          throw err;
        }
      }),
    on: (event, listener) => conn.on(event, listener),
    removeListener: (event, listener) => conn.removeListener(event, listener),
    release: () => conn.release(),
    destroy: () => conn.destroy(),
  });
  return {
    getConnection: () =>
      new Promise<MysqlConnection>((resolve, reject) => {
        pool.getConnection((err, conn) => (err ? reject(err) : resolve(wrap(conn))));
      }),
    end: () => new Promise<void>((resolve, reject) => pool.end((err) => (err ? reject(err) : resolve()))),
  };
}
