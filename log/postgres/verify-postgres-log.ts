import type { PostgresLogConfig } from '../decision-log.js';
import { LiveSet } from '../live-set.js';
import type { LogRecord } from '../log-record.js';
import type { LogPool } from './log-pool.js';
import { readOnlyLog } from './read-only-log.js';
import { logRecordProblem } from './record-codec.js';

/** A row of the records table that is not a valid record. */
export interface BadRecordRow {
  readonly seq: number;
  readonly gtrid: string;
  readonly reason: string;
}

/** Result of {@link verifyPostgresLog}. */
export interface PostgresLogVerification {
  /** No bad record row and no inconsistency between the tables. */
  readonly ok: boolean;
  /** Rows read from the records table. */
  readonly records: number;
  /** Records of live transactions (replaying every valid row). */
  readonly live: number;
  readonly liveTransactions: number;
  /** Rows that are not valid records of a known type, by seq (at most {@link MAX_REPORTED}). */
  readonly bad: BadRecordRow[];
  /** Inconsistencies between the tables, and harmless findings, in words. */
  readonly notes: string[];
}

/** Bad rows listed at most (the count in the notes is exact). */
export const MAX_REPORTED = 1000;
const PAGE = 5000;

/**
 * Checks the shared log without changing anything: every row of the records table must hold a
 * valid record of a known type agreeing with its gtrid and type columns; every transaction with
 * records must have an owners row, ended exactly when an end record was written. Reads one
 * consistent snapshot page by page (memory bounded by the live transactions). Throws TXC_LOG_IO
 * when it cannot read.
 */
export async function verifyPostgresLog(config: PostgresLogConfig, opts: { readonly pool?: LogPool } = {}): Promise<PostgresLogVerification> {
  return readOnlyLog(
    config,
    async (client, t) => {
      const live = new LiveSet();
      const bad: BadRecordRow[] = [];
      const notes: string[] = [];
      let badCount = 0;
      let records = 0;
      let last = '0';
      for (;;) {
        const page = await client.query<{ seq: string; gtrid: string; type: string; record: unknown }>(
          `select seq::text as seq, gtrid, type, record from ${t.records} where seq > $1::bigint order by seq limit ${PAGE}`,
          [last],
        );
        for (const row of page.rows) {
          records++;
          const problem = logRecordProblem(row.record, row);
          if (problem) {
            badCount++;
            if (bad.length < MAX_REPORTED) bad.push({ seq: Number(row.seq), gtrid: row.gtrid, reason: problem });
          } else {
            live.apply(row.record as LogRecord);
          }
        }
        if (page.rows.length < PAGE) break;
        last = page.rows[page.rows.length - 1]!.seq;
      }
      if (badCount > bad.length) notes.push(`${badCount} bad record rows, the first ${bad.length} listed`);

      const orphans = await client.query<{ n: number }>(
        `select count(distinct r.gtrid)::int as n from ${t.records} r where not exists (select 1 from ${t.owners} o where o.gtrid = r.gtrid)`,
      );
      const noOwner = orphans.rows[0]?.n ?? 0;
      if (noOwner > 0) notes.push(`${noOwner} transaction(s) have records but no owners row: no process will ever take them over`);
      const mismatch = await client.query<{ gtrid: string; ended: boolean }>(
        `select o.gtrid, o.ended from ${t.owners} o
          where o.ended <> exists (select 1 from ${t.records} r where r.gtrid = o.gtrid and r.type = 'end')
            and exists (select 1 from ${t.records} r where r.gtrid = o.gtrid)
          limit ${MAX_REPORTED}`,
      );
      for (const m of mismatch.rows) {
        notes.push(m.ended ? `transaction ${m.gtrid} is marked ended but has no end record` : `transaction ${m.gtrid} has an end record but is not marked ended: it stays live`);
      }
      return {
        ok: badCount === 0 && noOwner === 0 && mismatch.rows.length === 0,
        records,
        live: live.records().length,
        liveTransactions: live.transactions,
        bad,
        notes,
      };
    },
    opts.pool,
  );
}
