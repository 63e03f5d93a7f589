import mysql from 'mysql2/promise';
import pg from 'pg';
import { redactUrl } from '../../coordinator/logger.js';
import { coordinatorOf, fromMysqlRecoverRow, fromPgGid, toMysqlXid, toPgGid, type Xid } from '../../coordinator/xid.js';

/** PostgreSQL for integration tests (trust auth, max_prepared_transactions > 0). */
export const pgUrl = process.env.TXCOORD_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** MySQL 8 / MariaDB for integration tests. */
export const mysqlUrl = process.env.TXCOORD_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test';

/** With TXCOORD_REQUIRE_DB=1 (CI), an unreachable database fails the run instead of skipping it. */
export const dbRequired = process.env.TXCOORD_REQUIRE_DB === '1';

/** The database kinds the integration tests use. */
export type DbKind = 'postgres' | 'mysql';

const PROBE_TIMEOUT_MS = 3_000;

async function probe(kind: DbKind): Promise<void> {
  if (kind === 'postgres') {
    const client = new pg.Client({ connectionString: pgUrl, connectionTimeoutMillis: PROBE_TIMEOUT_MS });
    try {
      await client.connect();
      await client.query('select 1');
    } finally {
      await client.end().catch(() => undefined);
    }
    return;
  }
  const conn = await mysql.createConnection({ uri: mysqlUrl, connectTimeout: PROBE_TIMEOUT_MS });
  try {
    await conn.query('select 1');
  } finally {
    await conn.end().catch(() => undefined);
  }
}

/**
 * Whether `kind` answers. When it does not: prints a notice and returns false (the caller skips
 * its suite), or throws under TXCOORD_REQUIRE_DB=1. Use with top-level await:
 * `describe.skipIf(!(await requireDbOrSkip('postgres')))(…)`.
 */
export async function requireDbOrSkip(kind: DbKind): Promise<boolean> {
  try {
    await probe(kind);
    return true;
  } catch (err) {
    const url = redactUrl(kind === 'postgres' ? pgUrl : mysqlUrl);
    const reason = err instanceof Error ? err.message : String(err);
    if (dbRequired) throw new Error(`${kind} at ${url} is unreachable and TXCOORD_REQUIRE_DB=1: ${reason}`, { cause: err });
    process.stderr.write(`\n[txcoord] skipping ${kind} integration tests: ${url} is unreachable (${reason}). Set TXCOORD_REQUIRE_DB=1 to fail instead.\n`);
    return false;
  }
}


/**
 * Rolls back every prepared branch of `coordinatorId` in both databases. An earlier run that was
 * interrupted (a killed test process, a restarted server) can leave branches prepared, and their
 * locks would block this run's setup forever; the databases outlive test runs.
 */
export async function rollbackLeftovers(coordinatorId: string): Promise<void> {
  const ours = (xid: Xid | undefined): xid is Xid => xid !== undefined && coordinatorOf(xid.gtrid) === coordinatorId;
  const client = new pg.Client({ connectionString: pgUrl });
  await client.connect();
  try {
    const { rows } = await client.query<{ gid: string }>('select gid from pg_prepared_xacts where database = current_database()');
    for (const xid of rows.map((r) => fromPgGid(r.gid)).filter(ours)) await client.query(`ROLLBACK PREPARED '${toPgGid(xid)}'`);
  } finally {
    await client.end();
  }
  const conn = await mysql.createConnection({ uri: mysqlUrl });
  try {
    const [rows] = await conn.query('XA RECOVER');
    const xids = (rows as Parameters<typeof fromMysqlRecoverRow>[0][]).map((r) => fromMysqlRecoverRow(r)).filter(ours);
    for (const xid of xids) await conn.query(`XA ROLLBACK ${toMysqlXid(xid)}`);
  } finally {
    await conn.end();
  }
}
