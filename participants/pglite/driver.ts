import { resolve } from 'node:path';

/**
 * The slice of PGlite this adapter uses. Typing only this slice keeps `@electric-sql/pglite` (a
 * WASM build that takes ~0.2-4 s to start) out of the branch and participant code: unit tests
 * drive them with a small fake, and the real module is imported only on first use.
 */

/** One statement's result as PGlite's `query` reports it. */
export interface PgliteResults {
  readonly rows: Record<string, unknown>[];
  /** Rows changed by INSERT/UPDATE/DELETE/MERGE. */
  readonly affectedRows?: number;
  /**
   * Command tag: 'SELECT', 'INSERT', 'PREPARE'… PostgreSQL answers PREPARE TRANSACTION and
   * COMMIT with the tag 'ROLLBACK' (and no error) when the transaction had failed.
   */
  readonly command?: string;
}

/** The single in-process connection. */
export interface PgliteDriver {
  /** One statement (extended protocol; `$1` parameters). Rejects with an error carrying the SQLSTATE as `code`. */
  query(sql: string, params?: unknown[]): Promise<PgliteResults>;
  /** Whether the session is inside a transaction block, failed or not (synchronous, no round trip). */
  isInTransaction(): boolean;
  close(): Promise<void>;
}

/** What opening a data directory needs. */
export interface PgliteOpenOptions {
  readonly dataDir: string;
  readonly maxPreparedTransactions: number;
}

/** Opens (and, the first time, initialises) a data directory; rejects when PostgreSQL does not start. */
export type PgliteOpener = (options: PgliteOpenOptions) => Promise<PgliteDriver>;

/**
 * The `postgresqlconf` lines. PGlite writes them over `<dataDir>/postgresql.conf` on every
 * open, so they must be given each time: a data directory holding prepared transactions does
 * not start with `max_prepared_transactions = 0`.
 *
 * No `lock_timeout`/`statement_timeout`: PGlite 0.5 never fires PostgreSQL's timers (measured,
 * see docs/pglite-durability.md), so they would promise a protection that does not exist.
 */
export function pgliteConf(maxPreparedTransactions: number): string[] {
  return [`max_prepared_transactions = ${maxPreparedTransactions}`];
}

// Data directories open in this process. PGlite takes no lock on its directory (measured: a
// second instance opens the same directory without complaint), and two writers would corrupt it.
const openDirs = new Set<string>();

/**
 * Opens a real PGlite on a directory of the local file system (NodeFS). Refuses a directory
 * this process already has open; other processes are not detected.
 */
export const openPglite: PgliteOpener = async ({ dataDir, maxPreparedTransactions }) => {
  const key = resolve(dataDir);
  if (openDirs.has(key)) throw new Error(`PGlite data directory ${key} is already open in this process`);
  openDirs.add(key);
  try {
    const { PGlite } = await import('@electric-sql/pglite');
    const pg = new PGlite(dataDir, { postgresqlconf: pgliteConf(maxPreparedTransactions) });
    try {
      await pg.waitReady;
    } catch (err) {
      // A half-started instance still holds the WASM heap and open files.
      await pg.close().catch(() => undefined);
      throw err;
    }
    return {
      query: (sql, params) => pg.query(sql, params),
      // A closed instance has no transaction (and its WASM module may be gone).
      isInTransaction: () => !pg.closed && pg.isInTransaction(),
      close: async () => {
        try {
          await pg.close();
        } finally {
          openDirs.delete(key);
        }
      },
    };
  } catch (err) {
    openDirs.delete(key);
    throw err;
  }
};
