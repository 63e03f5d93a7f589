import type { PostgresLogConfig } from '../decision-log.js';
import { LiveSet } from '../live-set.js';
import type { LogRecord } from '../log-record.js';
import type { LogPool } from './log-pool.js';
import { readOnlyLog } from './read-only-log.js';

/** A coordinator id registered on the log. */
export interface InspectedInstance {
  readonly coordinatorId: string;
  readonly host: string | null;
  readonly pid: number | null;
  readonly startedAt: string;
  readonly leaseUntil: string;
  /** Its lease has not expired and no other process claimed it. */
  readonly alive: boolean;
  /** The process recovering it, when it was presumed dead. */
  readonly claimedBy: string | null;
}

/** A transaction that has not ended, and who drives it. */
export interface InspectedTransaction {
  readonly gtrid: string;
  readonly owner: string;
  readonly leaseUntil: string;
  /** The owner's lease ran out: the next take-over pass of any process claims it. */
  readonly expired: boolean;
  readonly idempotencyKey: string | null;
}

/** Result of {@link inspectPostgresLog}. */
export interface PostgresLogInspection {
  /** Rows in the records table (ended transactions kept for the retention included). */
  readonly records: number;
  /** The records of every transaction that has not ended, whoever owns it, oldest first. */
  readonly live: LogRecord[];
  readonly transactions: InspectedTransaction[];
  readonly instances: InspectedInstance[];
}

/**
 * Reads the shared log in one consistent snapshot, without registering, taking anything over or
 * creating tables: what `txcoord log inspect` and `txcoord status` show. Unlike a coordinator's
 * live(), `live` holds the live records of every owner. Throws TXC_LOG_IO when it cannot read.
 */
export async function inspectPostgresLog(config: PostgresLogConfig, opts: { readonly pool?: LogPool } = {}): Promise<PostgresLogInspection> {
  return readOnlyLog(
    config,
    async (client, t) => {
      const count = await client.query<{ n: string }>(`select count(*) as n from ${t.records}`);
      const txs = await client.query<{ gtrid: string; owner: string; lease_until: Date; expired: boolean; idempotency_key: string | null }>(
        `select gtrid, owner, lease_until, lease_until < now() as expired, idempotency_key from ${t.owners} where not ended order by lease_until`,
      );
      const recs = await client.query<{ record: LogRecord }>(
        `select r.record from ${t.records} r join ${t.owners} o on o.gtrid = r.gtrid where not o.ended order by r.seq`,
      );
      const inst = await client.query<{
        coordinator_id: string;
        host: string | null;
        pid: number | null;
        started_at: Date;
        lease_until: Date;
        alive: boolean;
        claimed_by: string | null;
      }>(
        `select coordinator_id, host, pid, started_at, lease_until, (lease_until > now() and token is not null) as alive, claimed_by
           from ${t.instances} order by coordinator_id`,
      );
      // The same liveness rules as every backend (an end record inside ends the transaction).
      const live = new LiveSet();
      for (const r of recs.rows) live.apply(r.record);
      return {
        records: Number(count.rows[0]?.n ?? 0),
        live: [...live.records()],
        transactions: txs.rows.map((r) => ({
          gtrid: r.gtrid,
          owner: r.owner,
          leaseUntil: r.lease_until.toISOString(),
          expired: r.expired,
          idempotencyKey: r.idempotency_key,
        })),
        instances: inst.rows.map((r) => ({
          coordinatorId: r.coordinator_id,
          host: r.host,
          pid: r.pid,
          startedAt: r.started_at.toISOString(),
          leaseUntil: r.lease_until.toISOString(),
          alive: r.alive,
          claimedBy: r.claimed_by,
        })),
      };
    },
    opts.pool,
  );
}
