import type { LogRecord } from '../log-record.js';
import type { LogClient, LogPool } from './log-pool.js';
import type { LogTables } from './log-tables.js';
import { IdentityLostError, leaseUntil, type LogIdentity } from './log-identity.js';
import { logTransaction } from './log-transaction.js';

/** One record of a batch, already encoded. */
export interface BatchRecord {
  readonly record: LogRecord;
  readonly json: string;
}

/** Why the records of one transaction in a batch were refused. */
export interface RefusedTransaction {
  readonly reason: 'owned-elsewhere' | 'idempotency-key-taken';
  /** The coordinator owning it now (owned-elsewhere). */
  readonly owner?: string;
}

/** What {@link writeBatch} did: every record was written except those of the refused gtrids. */
export interface BatchWritten {
  readonly refused: ReadonlyMap<string, RefusedTransaction>;
  readonly txid: string;
}

/** Options of {@link writeBatch}. */
export interface WriteBatchOptions {
  /** No record in the batch is forced: the commit need not wait for the WAL flush. */
  readonly unforcedOnly: boolean;
  /** The server default is synchronous_commit=off: forced batches must turn it on. */
  readonly serverSyncOff: boolean;
  readonly commitCheckMs: number;
}

interface OwnerChange {
  gtrid: string;
  ended: boolean;
  status: string | null;
  key: string | null;
}

function ownerChanges(records: readonly BatchRecord[]): OwnerChange[] {
  const byGtrid = new Map<string, OwnerChange>();
  for (const { record } of records) {
    let c = byGtrid.get(record.gtrid);
    if (!c) byGtrid.set(record.gtrid, (c = { gtrid: record.gtrid, ended: false, status: null, key: null }));
    if (record.type === 'end') {
      c.ended = true;
      c.status = record.status ?? c.status;
    }
    if (record.type === 'saga' && record.idempotencyKey !== undefined) c.key = record.idempotencyKey;
  }
  // A fixed order, so that two transactions touching the same rows lock them alike.
  return [...byGtrid.values()].sort((a, b) => (a.gtrid < b.gtrid ? -1 : a.gtrid > b.gtrid ? 1 : 0));
}

/**
 * Creates the owners rows of new sagas that carry an idempotency key, before the main statement:
 * a duplicate key must refuse that saga alone, while inside the main statement the unique
 * violation would fail the whole batch. Returns the gtrids refused for their key.
 */
async function insertKeyedSagas(client: LogClient, t: LogTables, me: LogIdentity, keyed: readonly OwnerChange[]): Promise<Set<string>> {
  const gtrids = keyed.map((c) => c.gtrid);
  const inserted = await client.query<{ gtrid: string }>(
    `insert into ${t.owners} (gtrid, owner, lease_until, idempotency_key)
     select g, $1, ${leaseUntil(2)}, k from unnest($3::text[], $4::text[]) as u(g, k)
     on conflict do nothing returning gtrid`,
    [me.coordinatorId, me.leaseMs, gtrids, keyed.map((c) => c.key)],
  );
  const done = new Set(inserted.rows.map((r) => r.gtrid));
  const skipped = gtrids.filter((g) => !done.has(g));
  if (skipped.length === 0) return new Set();
  // Skipped because the row exists (a retried append: the main statement fences it) or the key is taken.
  const existing = await client.query<{ gtrid: string }>(`select gtrid from ${t.owners} where gtrid = any($1::text[])`, [skipped]);
  const present = new Set(existing.rows.map((r) => r.gtrid));
  return new Set(skipped.filter((g) => !present.has(g)));
}

/**
 * Writes a batch of records in ONE transaction (one commit, one WAL flush for all of them), in
 * three round trips (BEGIN, one statement, COMMIT). The statement:
 * 1. fences this process: its instances row must still carry its token (else
 *    IdentityLostError), and its row lock keeps a take-over of the id out until the commit;
 * 2. upserts the owners row of every transaction in the batch: a new one is created (owner =
 *    this id), an existing one has its lease renewed and its ended flag/status set, but only
 *    where this id is still the owner; one taken over meanwhile is refused, not written;
 * 3. inserts the records of the accepted transactions with one multi-row insert, in batch order.
 * Throws LogTransactionError (with durability) when the transaction fails as a whole.
 */
export async function writeBatch(pool: LogPool, t: LogTables, me: LogIdentity, records: readonly BatchRecord[], opts: WriteBatchOptions): Promise<BatchWritten> {
  const changes = ownerChanges(records);
  const sync = opts.unforcedOnly ? 'off' : opts.serverSyncOff ? 'on' : undefined;
  return logTransaction(
    pool,
    async ({ client, txid }) => {
      const keyed = changes.filter((c) => c.key !== null);
      const keyTaken = keyed.length > 0 ? await insertKeyedSagas(client, t, me, keyed) : new Set<string>();
      const upserts = changes.filter((c) => !keyTaken.has(c.gtrid));
      const res = await client.query<{ fenced: number; accepted: string[]; written: number }>(
        `with fence as (
           update ${t.instances} set lease_until = greatest(lease_until, ${leaseUntil(3)}), updated_at = now()
            where coordinator_id = $1 and token = $2
           returning 1),
         up as (
           insert into ${t.owners} as o (gtrid, owner, lease_until, ended, ended_at, status)
           select u.g, $1, ${leaseUntil(3)}, u.e, case when u.e then now() end, u.s
             from unnest($4::text[], $5::bool[], $6::text[]) as u(g, e, s)
            where exists (select 1 from fence)
           on conflict (gtrid) do update
              set lease_until = excluded.lease_until,
                  ended = o.ended or excluded.ended,
                  ended_at = case when excluded.ended and not o.ended then now() else o.ended_at end,
                  status = coalesce(excluded.status, o.status),
                  updated_at = now()
            where o.owner = excluded.owner
           returning o.gtrid),
         rec as (
           insert into ${t.records} (gtrid, type, record)
           select x.e->>'gtrid', x.e->>'type', x.e
             from jsonb_array_elements($7::jsonb) with ordinality as x(e, n)
            where x.e->>'gtrid' in (select gtrid from up)
            order by x.n
           returning 1)
         select (select count(*) from fence)::int as fenced,
                array(select gtrid from up) as accepted,
                (select count(*) from rec)::int as written`,
        [
          me.coordinatorId,
          me.token,
          me.leaseMs,
          upserts.map((c) => c.gtrid),
          upserts.map((c) => c.ended),
          upserts.map((c) => c.status),
          `[${records.map((r) => r.json).join(',')}]`,
        ],
      );
      const row = res.rows[0];
      if (!row || row.fenced !== 1) throw new IdentityLostError(me.coordinatorId);
      const accepted = new Set(row.accepted);

      const refused = new Map<string, RefusedTransaction>();
      for (const g of keyTaken) refused.set(g, { reason: 'idempotency-key-taken' });
      const elsewhere = upserts.map((c) => c.gtrid).filter((g) => !accepted.has(g));
      if (elsewhere.length > 0) {
        const rows = await client.query<{ gtrid: string; owner: string }>(`select gtrid, owner from ${t.owners} where gtrid = any($1::text[])`, [elsewhere]);
        const owners = new Map(rows.rows.map((r) => [r.gtrid, r.owner]));
        for (const g of elsewhere) {
          const owner = owners.get(g);
          refused.set(g, owner === undefined ? { reason: 'owned-elsewhere' } : { reason: 'owned-elsewhere', owner });
        }
      }
      return { refused, txid };
    },
    { commitCheckMs: opts.commitCheckMs, ...(sync ? { synchronousCommit: sync } : {}) },
  );
}
