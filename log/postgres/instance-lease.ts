import { TxcError } from '../../coordinator/errors.js';
import type { LogRecord } from '../log-record.js';
import type { LogPool } from './log-pool.js';
import type { LogTables } from './log-tables.js';
import { IdentityLostError, leaseUntil, type LogIdentity } from './log-identity.js';
import { logTransaction } from './log-transaction.js';

interface InstanceRow {
  token: string | null;
  alive: boolean;
  host: string | null;
  pid: number | null;
  lease_until: Date;
  claimed_by: string | null;
  claim_alive: boolean;
}

/** What {@link registerInstance} loaded: the live records of the transactions this id owns. */
export interface Registered {
  readonly records: LogRecord[];
}

/**
 * Registers this process under its coordinator id and loads what the id owns. Refuses
 * (TXC_LOG_LOCKED) while another process holds the id with an unexpired lease, or while a live
 * process is recovering the id (claimed it as dead): running beside that recovery would let it
 * roll back this process's fresh prepared branches. In one transaction: the row lock on the
 * instance keeps a take-over of the id out, and the owners rows are renewed before their
 * records are read, so no other process can take one over in between.
 */
export async function registerInstance(pool: LogPool, t: LogTables, me: LogIdentity, commitCheckMs: number): Promise<Registered> {
  for (let attempt = 0; ; attempt++) {
    const outcome = await logTransaction(
      pool,
      async ({ client }) => {
        const found = await client.query<InstanceRow>(
          `select i.token, i.lease_until > now() as alive, i.host, i.pid, i.lease_until, i.claimed_by,
                  (i.claimed_by is not null and exists (
                     select 1 from ${t.instances} c
                      where c.coordinator_id = i.claimed_by and c.token is not null and c.lease_until > now())) as claim_alive
             from ${t.instances} i where i.coordinator_id = $1 for update`,
          [me.coordinatorId],
        );
        const row = found.rows[0];
        if (row) {
          if (row.alive && row.token !== null) {
            throw new TxcError('TXC_LOG_LOCKED', `another live process uses coordinator id ${me.coordinatorId} on this log (${row.host ?? '?'} pid ${row.pid ?? '?'}, lease until ${row.lease_until.toISOString()})`, {
              retryable: true,
              details: { coordinatorId: me.coordinatorId, host: row.host, pid: row.pid, leaseUntil: row.lease_until.toISOString() },
            });
          }
          if (row.claim_alive) {
            throw new TxcError('TXC_LOG_LOCKED', `coordinator id ${me.coordinatorId} is being recovered by coordinator ${row.claimed_by ?? '?'}, which presumed it dead; start again once it is done`, {
              retryable: true,
              details: { coordinatorId: me.coordinatorId, claimedBy: row.claimed_by },
            });
          }
          await client.query(
            `update ${t.instances}
                set token = $2, lease_until = ${leaseUntil(3)}, host = $4, pid = $5, started_at = now(),
                    claimed_by = null, released_at = null, updated_at = now()
              where coordinator_id = $1`,
            [me.coordinatorId, me.token, me.leaseMs, me.host, me.pid],
          );
        } else {
          const inserted = await client.query(
            `insert into ${t.instances} (coordinator_id, token, lease_until, host, pid)
             values ($1, $2, ${leaseUntil(3)}, $4, $5) on conflict do nothing`,
            [me.coordinatorId, me.token, me.leaseMs, me.host, me.pid],
          );
          // Another process registered the same id a moment ago: look again.
          if (inserted.rowCount !== 1) return undefined;
        }
        await client.query(`update ${t.owners} set lease_until = ${leaseUntil(2)}, updated_at = now() where owner = $1 and not ended`, [me.coordinatorId, me.leaseMs]);
        const live = await client.query<{ record: LogRecord }>(
          `select r.record from ${t.records} r join ${t.owners} o on o.gtrid = r.gtrid
            where o.owner = $1 and not o.ended order by r.seq`,
          [me.coordinatorId],
        );
        return { records: live.rows.map((r) => r.record) };
      },
      { commitCheckMs },
    );
    if (outcome) return outcome;
    if (attempt >= 2) throw new TxcError('TXC_LOG_LOCKED', `coordinator id ${me.coordinatorId} is being registered by another process at the same time`, { retryable: true });
  }
}

/** What one lease renewal found. */
export interface Renewed {
  /** The non-ended transactions this id owns, according to the table. */
  readonly owned: ReadonlySet<string>;
}

/**
 * Renews this process's instance lease and the lease of every non-ended transaction it owns,
 * in one transaction. Throws (wrapped in LogTransactionError) IdentityLostError when the
 * instance row no longer carries this process's token.
 */
export async function renewLeases(pool: LogPool, t: LogTables, me: LogIdentity, commitCheckMs: number): Promise<Renewed> {
  return logTransaction(
    pool,
    async ({ client }) => {
      const inst = await client.query(
        `update ${t.instances} set lease_until = ${leaseUntil(3)}, updated_at = now() where coordinator_id = $1 and token = $2`,
        [me.coordinatorId, me.token, me.leaseMs],
      );
      if (inst.rowCount !== 1) throw new IdentityLostError(me.coordinatorId);
      const owned = await client.query<{ gtrid: string }>(
        `update ${t.owners} set lease_until = ${leaseUntil(2)}, updated_at = now() where owner = $1 and not ended returning gtrid`,
        [me.coordinatorId, me.leaseMs],
      );
      return { owned: new Set(owned.rows.map((r) => r.gtrid)) };
    },
    { commitCheckMs },
  );
}

/** Who owns each of `gtrids` now (absent: no row), and whether it ended. */
export async function ownersOf(pool: LogPool, t: LogTables, gtrids: readonly string[]): Promise<Map<string, { owner: string; ended: boolean }>> {
  const res = await pool.query<{ gtrid: string; owner: string; ended: boolean }>(`select gtrid, owner, ended from ${t.owners} where gtrid = any($1::text[])`, [gtrids]);
  return new Map(res.rows.map((r) => [r.gtrid, { owner: r.owner, ended: r.ended }]));
}

/**
 * On a clean close: expires this process's instance lease and the leases of anything it still
 * owns (so another process may take over at once rather than after a lease), and gives up the
 * dead coordinator ids it had claimed.
 */
export async function expireLeases(pool: LogPool, t: LogTables, me: LogIdentity, commitCheckMs: number): Promise<void> {
  await logTransaction(
    pool,
    async ({ client }) => {
      const inst = await client.query(`update ${t.instances} set lease_until = now(), updated_at = now() where coordinator_id = $1 and token = $2`, [
        me.coordinatorId,
        me.token,
      ]);
      // Claimed meanwhile: the rows below belong to whoever claimed the id.
      if (inst.rowCount !== 1) return;
      await client.query(`update ${t.owners} set lease_until = now(), updated_at = now() where owner = $1 and not ended`, [me.coordinatorId]);
      await client.query(`update ${t.instances} set claimed_by = null, released_at = now(), updated_at = now() where claimed_by = $1`, [me.coordinatorId]);
    },
    { commitCheckMs },
  );
}
