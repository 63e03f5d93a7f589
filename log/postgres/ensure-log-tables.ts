import type { LogPool } from './log-pool.js';
import { TABLE_NAMES, type LogTables } from './log-tables.js';
import { isCreatedConcurrently } from './pg-error-kind.js';

function ddl(t: LogTables): string[] {
  return [
    `create schema if not exists ${t.quotedSchema}`,
    `create table if not exists ${t.records} (
       seq bigserial primary key,
       gtrid varchar(64) not null,
       type varchar(16) not null,
       record jsonb not null,
       written_at timestamptz not null default now())`,
    `create index if not exists ${TABLE_NAMES.records}_gtrid on ${t.records} (gtrid, seq)`,
    `create table if not exists ${t.owners} (
       gtrid varchar(64) primary key,
       owner varchar(24) not null,
       lease_until timestamptz not null,
       ended boolean not null default false,
       status varchar(16),
       idempotency_key varchar(200) unique,
       ended_at timestamptz,
       updated_at timestamptz not null default now())`,
    // Partial indexes: renewal and take-over only ever look at transactions that have not ended.
    `create index if not exists ${TABLE_NAMES.owners}_owner on ${t.owners} (owner) where not ended`,
    `create index if not exists ${TABLE_NAMES.owners}_lease on ${t.owners} (lease_until) where not ended`,
    `create index if not exists ${TABLE_NAMES.owners}_ended on ${t.owners} (ended_at) where ended`,
    `create table if not exists ${t.instances} (
       coordinator_id varchar(24) primary key,
       token uuid,
       lease_until timestamptz not null,
       host varchar(255),
       pid integer,
       started_at timestamptz not null default now(),
       claimed_by varchar(24),
       released_at timestamptz,
       updated_at timestamptz not null default now())`,
  ];
}

async function tablesExist(pool: LogPool, t: LogTables): Promise<boolean> {
  const res = await pool.query<{ n: number }>(
    `select count(*)::int as n from pg_catalog.pg_tables where schemaname = $1 and tablename = any($2::text[])`,
    [t.schema, Object.values(TABLE_NAMES)],
  );
  return res.rows[0]?.n === Object.values(TABLE_NAMES).length;
}

/**
 * Creates the log's schema, tables and indexes unless they all exist (so a log database whose
 * tables a DBA created needs no CREATE privilege). Safe when several processes start at once: an
 * advisory lock serializes the creators, and the errors a concurrent CREATE can still raise
 * (unique violation on the catalog, duplicate table/object/schema) are taken as success.
 */
export async function ensureLogTables(pool: LogPool, t: LogTables): Promise<void> {
  if (await tablesExist(pool, t)) return;
  const client = await pool.connect();
  let broken = false;
  try {
    await client.query('select pg_advisory_lock(hashtext($1))', [`txcoord-log:${t.schema}`]);
    try {
      for (const statement of ddl(t)) {
        try {
          await client.query(statement);
        } catch (err) {
          if (!isCreatedConcurrently(err)) throw err;
        }
      }
    } finally {
      await client.query('select pg_advisory_unlock(hashtext($1))', [`txcoord-log:${t.schema}`]).catch(() => {
        broken = true;
      });
    }
  } catch (err) {
    broken = true;
    throw err;
  } finally {
    // Destroying the session also drops a session advisory lock it may still hold.
    client.release(broken);
  }
}
