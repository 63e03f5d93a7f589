import { TxcError } from '../../coordinator/errors.js';
import { createDefaultLogger, redactUrl } from '../../coordinator/logger.js';
import type { PostgresLogConfig } from '../decision-log.js';
import { createLogPool, type LogClient, type LogPool } from './log-pool.js';
import { TABLE_NAMES, logTables, type LogTables } from './log-tables.js';

/**
 * Runs `fn` in one read-only REPEATABLE READ transaction on the log in `config` (a consistent
 * snapshot across its statements), without creating anything: for `txcoord log inspect|verify`
 * beside running coordinators. Throws TXC_LOG_IO when the database cannot be read or the schema
 * holds no decision log tables. `pool` replaces the connection (tests).
 */
export async function readOnlyLog<T>(config: PostgresLogConfig, fn: (client: LogClient, t: LogTables) => Promise<T>, pool?: LogPool): Promise<T> {
  const t = logTables(config.schema);
  const own = pool === undefined;
  const p = pool ?? createLogPool({ connectionString: config.connectionString, logger: createDefaultLogger(), size: 1, connectTimeoutMs: 5_000 });
  let client: LogClient | undefined;
  try {
    client = await p.connect();
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    const present = await client.query<{ n: number }>(
      'select count(*)::int as n from pg_catalog.pg_tables where schemaname = $1 and tablename = any($2::text[])',
      [t.schema, Object.values(TABLE_NAMES)],
    );
    if (present.rows[0]?.n !== Object.values(TABLE_NAMES).length) {
      throw new TxcError('TXC_LOG_IO', `schema ${t.schema} holds no txcoord decision log tables (${Object.values(TABLE_NAMES).join(', ')})`, {
        details: { schema: t.schema, reason: 'no-tables' },
      });
    }
    const result = await fn(client, t);
    await client.query('COMMIT');
    client.release();
    client = undefined;
    return result;
  } catch (err) {
    client?.release(true);
    if (TxcError.is(err)) throw err;
    const message = err instanceof Error ? err.message : String(err);
    throw new TxcError('TXC_LOG_IO', `cannot read the decision log in PostgreSQL schema ${t.schema}: ${redactUrl(message)}`, {
      cause: err,
      retryable: true,
      details: { schema: t.schema },
    });
  } finally {
    if (own) await p.end().catch(() => undefined);
  }
}
