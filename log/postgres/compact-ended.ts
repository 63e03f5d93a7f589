import type { LogPool } from './log-pool.js';
import type { LogTables } from './log-tables.js';

/** What {@link compactEnded} deleted. */
export interface Compacted {
  readonly transactions: number;
  readonly records: number;
  readonly instances: number;
}

/** Rows deleted per transaction: short transactions keep locks and WAL bursts small. */
const CHUNK = 1000;

/**
 * Deletes the records and owners rows of transactions that ended more than `retentionMs` ago,
 * so the tables (and a take-over's reads) stay proportional to live work plus the retention
 * window kept for status queries and idempotency keys. Also deletes instance rows of
 * coordinator ids dead for longer than the retention, unclaimed and owning nothing. Rows another
 * process is deleting at the same time are skipped, so concurrent compactions do not block.
 */
export async function compactEnded(pool: LogPool, t: LogTables, retentionMs: number): Promise<Compacted> {
  let transactions = 0;
  let records = 0;
  for (;;) {
    const res = await pool.query<{ owners: number; records: number }>(
      `with gone as (
         delete from ${t.owners} where gtrid in (
           select gtrid from ${t.owners}
            where ended and coalesce(ended_at, updated_at) < now() - $1::bigint * interval '1 millisecond'
            limit ${CHUNK} for update skip locked)
         returning gtrid),
       dropped as (delete from ${t.records} r using gone where r.gtrid = gone.gtrid returning 1)
       select (select count(*) from gone)::int as owners, (select count(*) from dropped)::int as records`,
      [retentionMs],
    );
    const row = res.rows[0];
    transactions += row?.owners ?? 0;
    records += row?.records ?? 0;
    if ((row?.owners ?? 0) < CHUNK) break;
  }
  const dead = await pool.query(
    `delete from ${t.instances} i
      where i.lease_until < now() - $1::bigint * interval '1 millisecond'
        and (i.claimed_by is null or not exists (
               select 1 from ${t.instances} c where c.coordinator_id = i.claimed_by and c.token is not null and c.lease_until > now()))
        and not exists (select 1 from ${t.owners} o where o.owner = i.coordinator_id and not o.ended)`,
    [retentionMs],
  );
  return { transactions, records, instances: dead.rowCount ?? 0 };
}
