import type { LogRecord } from '../log-record.js';
import type { LogPool } from './log-pool.js';
import type { LogTables } from './log-tables.js';
import { IdentityLostError, leaseUntil, type LogIdentity } from './log-identity.js';
import { logTransaction } from './log-transaction.js';

/** What one {@link takeOverExpired} pass claimed. */
export interface Claimed {
  /** Claimed transactions, each with the owner whose lease had expired. */
  readonly transactions: ReadonlyArray<{ readonly gtrid: string; readonly previousOwner: string }>;
  /** All records of the claimed transactions, oldest first. */
  readonly records: LogRecord[];
  /** Claimed dead coordinator ids. */
  readonly coordinators: string[];
}

/** Options of {@link takeOverExpired}. */
export interface TakeOverOptions {
  /** Transactions, and separately coordinator ids, to claim at most. */
  readonly limit: number;
  /** A released coordinator id can be claimed again after this long (a pass may have failed). */
  readonly reclaimAfterMs: number;
  readonly commitCheckMs: number;
}

/**
 * One take-over pass, in one transaction:
 * 1. fences this process (its instances row must still carry its token: a process presumed dead
 *    must not take anything over);
 * 2. claims up to `limit` non-ended transactions whose owner's lease expired, picked
 *    `FOR UPDATE SKIP LOCKED` and re-checked under the lock, so two processes never claim the
 *    same one and an owner still writing to it (its batch holds the row lock and extends the
 *    lease) keeps it; reads their records;
 * 3. claims dead coordinator ids: lease expired, not claimed by a live process, not released
 *    within `reclaimAfterMs`, and none of their transactions left unclaimed (so every commit
 *    record of the id is owned by a live process before anyone rolls its branches back by
 *    presumed abort). Claiming clears the id's token, fencing the old process for good should it
 *    only have been paused.
 */
export async function takeOverExpired(pool: LogPool, t: LogTables, me: LogIdentity, opts: TakeOverOptions): Promise<Claimed> {
  return logTransaction(
    pool,
    async ({ client }) => {
      const fence = await client.query(`update ${t.instances} set lease_until = greatest(lease_until, ${leaseUntil(3)}), updated_at = now() where coordinator_id = $1 and token = $2`, [
        me.coordinatorId,
        me.token,
        me.leaseMs,
      ]);
      if (fence.rowCount !== 1) throw new IdentityLostError(me.coordinatorId);

      const claimed = await client.query<{ gtrid: string; previous: string }>(
        `with picked as (
           select gtrid, owner from ${t.owners}
            where not ended and lease_until < now() and owner <> $1
            order by lease_until
            limit $3
            for update skip locked)
         update ${t.owners} o set owner = $1, lease_until = ${leaseUntil(2)}, updated_at = now()
           from picked where o.gtrid = picked.gtrid
         returning o.gtrid, picked.owner as previous`,
        [me.coordinatorId, me.leaseMs, opts.limit],
      );
      const gtrids = claimed.rows.map((r) => r.gtrid);
      const records =
        gtrids.length === 0
          ? []
          : (await client.query<{ record: LogRecord }>(`select record from ${t.records} where gtrid = any($1::text[]) order by seq`, [gtrids])).rows.map((r) => r.record);

      // Runs after step 2 in the same transaction, so an id whose last transactions were just
      // claimed here counts as fully taken over.
      const coordinators = await client.query<{ coordinator_id: string }>(
        `with picked as (
           select i.coordinator_id from ${t.instances} i
            where i.coordinator_id <> $1
              and i.lease_until < now()
              and (i.released_at is null or i.released_at < now() - $3::int * interval '1 millisecond')
              and (i.claimed_by is null or not exists (
                     select 1 from ${t.instances} c
                      where c.coordinator_id = i.claimed_by and c.token is not null and c.lease_until > now()))
              and not exists (select 1 from ${t.owners} o where o.owner = i.coordinator_id and not o.ended)
            order by i.released_at nulls first, i.lease_until
            limit $2
            for update of i skip locked)
         update ${t.instances} i set claimed_by = $1, token = null, updated_at = now()
           from picked where i.coordinator_id = picked.coordinator_id
         returning i.coordinator_id`,
        [me.coordinatorId, opts.limit, opts.reclaimAfterMs],
      );
      return {
        transactions: claimed.rows.map((r) => ({ gtrid: r.gtrid, previousOwner: r.previous })),
        records,
        coordinators: coordinators.rows.map((r) => r.coordinator_id),
      };
    },
    { commitCheckMs: opts.commitCheckMs },
  );
}

/** Gives up this process's claim on a dead coordinator id; false when it held none. */
export async function releaseClaim(pool: LogPool, t: LogTables, me: LogIdentity, coordinatorId: string): Promise<boolean> {
  const res = await pool.query(`update ${t.instances} set claimed_by = null, released_at = now(), updated_at = now() where coordinator_id = $1 and claimed_by = $2`, [
    coordinatorId,
    me.coordinatorId,
  ]);
  return res.rowCount === 1;
}
