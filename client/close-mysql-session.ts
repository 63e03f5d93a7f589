/** The parts of a mysql2/promise connection needed to close it. */
export interface MysqlSession {
  /** Graceful close (COM_QUIT). On a mysql2 PoolConnection it releases into the pool instead, so it is never called on one. */
  end(): Promise<void>;
  /** Closes the socket; on a PoolConnection also removes it from the pool. */
  destroy(): void;
  /** Present on a PoolConnection (and on mysql2's plain promise Connection too, where it throws). */
  release?(): void;
  /** 'end': the server closed its side of the connection. */
  once(event: 'end', listener: () => void): unknown;
  removeListener(event: 'end', listener: () => void): unknown;
  on(event: 'error', listener: (err: Error) => void): unknown;
}

/**
 * Closes a MySQL session so that nothing of it can reach a pool: `destroy()` when it may be a
 * pool's connection, `end()` only when it certainly is not. Waits up to `waitMs` for the server
 * to close its side, and never throws (every caller is cleaning up or done).
 */
export async function closeMysqlSession(conn: MysqlSession, waitMs: number): Promise<void> {
  // A socket error after we asked to close (a reset) is expected, and an 'error' event nobody
  // listens to would crash the process. The listener stays: the connection is dead anyway.
  conn.on('error', () => undefined);
  let onEnd: () => void = () => undefined;
  let timer: NodeJS.Timeout | undefined;
  const ended =
    waitMs > 0
      ? new Promise<void>((resolve) => {
          onEnd = resolve;
          timer = setTimeout(resolve, waitMs);
          conn.once('end', onEnd);
        })
      : Promise.resolve();
  try {
    if (mayBePooled(conn)) conn.destroy();
    else await conn.end();
  } catch {
    try {
      conn.destroy();
    } catch {
      // Nothing more can be done: the socket is gone or going.
    }
  }
  await ended;
  clearTimeout(timer);
  conn.removeListener('end', onEnd);
}

/**
 * mysql2's plain promise Connection also has a `release` method, so that alone does not tell:
 * the wrapped core connection of a plain one has none. When unsure, answer yes: destroying a
 * plain connection is harmless, ending a pooled one would put it back in the pool.
 */
function mayBePooled(conn: MysqlSession): boolean {
  if (typeof conn.release !== 'function') return false;
  const inner = (conn as { connection?: unknown }).connection;
  if (typeof inner !== 'object' || inner === null) return true;
  return typeof (inner as { release?: unknown }).release === 'function';
}
