/**
 * Concurrency races: several coordinators (own ids, own log directories, one process) run
 * transfers on the SAME two hot accounts per side, each transfer locking both rows of a side in
 * a random order and visiting the two databases in a random order. That produces deadlocks each
 * database detects (PostgreSQL 40P01, MariaDB 1213) and distributed deadlocks none of them can
 * see, which end in lock timeouts (kept short: `lock_timeout`, `innodb_lock_wait_timeout`).
 * Every failure must abort cleanly everywhere: nothing prepared left behind (without any
 * recovery pass), failed transfers absent on both sides, acknowledged ones present on both.
 *
 * TXCOORD_FAULTS_LONG=1 runs the workload for 60 s instead of 12 s.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCoordinator } from '../../coordinator/create-coordinator.js';
import { TxcError } from '../../coordinator/errors.js';
import type { Coordinator } from '../../coordinator/types.js';
import { requireDbOrSkip } from '../integration/db-env.js';
import { assertInvariants, coordinatorConfig, createBank, CRM, ERP, makeLogDir, type Bank } from './bank.js';
import { seededRandom } from '../../api/demo/prng.js';

const TAG = '[faults/races]';
const IDS = ['frace1', 'frace2', 'frace3'] as const;
const LOOPS_PER_COORDINATOR = 3;
/** Hot accounts per side: few enough that most transfers collide. */
const ACCOUNTS = 4;
const DURATION_MS = process.env['TXCOORD_FAULTS_LONG'] === '1' ? 60_000 : 12_000;
const SEED = Number(process.env['TXCOORD_FAULTS_SEED'] ?? Date.now() % 1_000_000);

const serversReady = (await requireDbOrSkip('postgres')) && (await requireDbOrSkip('mysql'));

/** What a failed transfer ran into, from the database error anywhere in its cause chain. */
type FailureKind = 'pg-deadlock' | 'pg-lock-timeout' | 'mysql-deadlock' | 'mysql-lock-timeout' | 'other';

function classify(err: unknown): FailureKind {
  for (let e: unknown = err, depth = 0; e && typeof e === 'object' && depth < 8; e = (e as { cause?: unknown }).cause, depth++) {
    const o = e as { code?: unknown; errno?: unknown; details?: Record<string, unknown> };
    const sqlState = typeof o.code === 'string' ? o.code : o.details?.['sqlState'];
    const errno = typeof o.errno === 'number' ? o.errno : o.details?.['errno'];
    if (sqlState === '40P01') return 'pg-deadlock';
    // 55P03 lock_not_available is what lock_timeout raises.
    if (sqlState === '55P03') return 'pg-lock-timeout';
    if (errno === 1213) return 'mysql-deadlock';
    if (errno === 1205) return 'mysql-lock-timeout';
  }
  return 'other';
}

/** The rows a side updates, `[account, delta]`: the real one gets `amount`, the extra one (if distinct) 0. */
function order(real: number, extra: number, extraFirst: boolean): (amount: number) => Array<[number, number]> {
  return (amount) => {
    if (extra === real) return [[real, amount]];
    return extraFirst ? [[extra, 0], [real, amount]] : [[real, amount], [extra, 0]];
  };
}

describe.skipIf(!serversReady)('races between coordinators on hot rows', () => {
  let bank: Bank;
  const dirs: Array<{ dir: string; remove: () => Promise<void> }> = [];
  const coords: Coordinator[] = [];

  /** PostgreSQL only detects deadlocks after deadlock_timeout (1 s): shortened where allowed, so it fires before lock_timeout. */
  let pgDeadlockSetting = '';

  beforeAll(async () => {
    bank = await createBank({ name: 'txc_frace', accounts: ACCOUNTS });
    const su = await bank.pg.query<{ s: string }>(`select current_setting('is_superuser') s`);
    if (su.rows[0]?.s === 'on') pgDeadlockSetting = `set local deadlock_timeout = '50ms'`;
    for (const id of IDS) {
      await bank.rollbackPrepared(id);
      const d = await makeLogDir(`txc-${id}-`);
      dirs.push(d);
      coords.push(await createCoordinator(coordinatorConfig({ id, logDir: d.dir, pool: { max: LOOPS_PER_COORDINATOR, acquireTimeoutMs: 10_000 }, prepareTimeoutMs: 10_000 })));
    }
  });

  afterAll(async () => {
    for (const c of coords) await c.close({ timeoutMs: 10_000 }).catch(() => undefined);
    for (const id of IDS) await bank?.rollbackPrepared(id).catch(() => 0);
    await bank?.drop().catch(() => undefined);
    for (const d of dirs) await d.remove();
  });

  it('deadlocks and lock timeouts inside branches abort cleanly everywhere', async () => {
    const t0 = Date.now();
    const random = seededRandom(SEED);
    const acknowledged = new Set<string>();
    const refused = new Set<string>();
    const kinds = new Map<string, number>();
    const codes = new Map<string, number>();
    const unexpected: string[] = [];
    const deadline = Date.now() + DURATION_MS;
    let n = 0;

    const runOne = async (coord: Coordinator): Promise<void> => {
      const id = `${coord.id}-${n++}`;
      const amount = 1 + Math.floor(random() * 50);
      const pick = () => Math.floor(random() * ACCOUNTS);
      const from = pick();
      const to = pick();
      // Half the transfers also lock a second row of a side, before or after the real one: its
      // update adds 0, so the bank's money invariants still hold, but it is what makes cycles.
      const erpRows = order(from, random() < 0.5 ? pick() : from, random() < 0.5);
      const crmRows = order(to, random() < 0.5 ? pick() : to, random() < 0.5);
      const pgFirst = random() < 0.9;
      const erp = async (tx: Parameters<Parameters<Coordinator['transaction']>[0]>[0]) => {
        await tx.query(ERP, `set local lock_timeout = '800ms'`);
        if (pgDeadlockSetting) await tx.query(ERP, pgDeadlockSetting);
        for (const [acct, delta] of erpRows(amount)) {
          await tx.query(ERP, `update ${bank.accountsTable} set balance = balance - $1 where id = $2`, [delta, acct]);
        }
        await tx.query(ERP, `insert into ${bank.transfersTable} (transfer_id, amount) values ($1, $2)`, [id, amount]);
      };
      const crm = async (tx: Parameters<Parameters<Coordinator['transaction']>[0]>[0]) => {
        await tx.query(CRM, 'set session innodb_lock_wait_timeout = 1');
        for (const [acct, delta] of crmRows(amount)) {
          await tx.query(CRM, `update ${bank.accountsTable} set balance = balance + ? where id = ?`, [delta, acct]);
        }
        await tx.query(CRM, `insert into ${bank.transfersTable} (transfer_id, amount) values (?, ?)`, [id, amount]);
      };
      try {
        await coord.transaction(async (tx) => {
          if (pgFirst) (await erp(tx), await crm(tx));
          else (await crm(tx), await erp(tx));
        });
        acknowledged.add(id);
      } catch (err) {
        const code = TxcError.is(err) ? err.code : 'not a TxcError';
        codes.set(code, (codes.get(code) ?? 0) + 1);
        kinds.set(classify(err), (kinds.get(classify(err)) ?? 0) + 1);
        // All of these end in a rollback everywhere, so the transfer must be absent; anything
        // else (say TXC_OUTCOME_UNKNOWN) would leave it undetermined and is a finding.
        if (['TXC_QUERY_FAILED', 'TXC_PREPARE_FAILED', 'TXC_PREPARE_TIMEOUT', 'TXC_POOL_TIMEOUT'].includes(code)) refused.add(id);
        else if (unexpected.length < 5) unexpected.push(`${id}: ${String(err)}`);
      }
    };

    await Promise.all(
      coords.flatMap((coord) =>
        Array.from({ length: LOOPS_PER_COORDINATOR }, async () => {
          while (Date.now() < deadline) await runOne(coord);
        }),
      ),
    );

    // No recovery pass has run: a clean abort leaves nothing prepared by itself.
    for (const id of IDS) expect(await bank.listPrepared(id), `prepared branches of ${id}`).toEqual([]);
    expect(unexpected).toEqual([]);
    let both = 0;
    for (const id of IDS) {
      const inv = await bank.checkInvariants({ coordinatorId: id, acknowledged, refused });
      assertInvariants(inv);
      both = inv.transfers.both;
    }
    const count = (k: FailureKind) => kinds.get(k) ?? 0;
    console.log(
      `${TAG} seed ${SEED}: ${IDS.length} coordinators x ${LOOPS_PER_COORDINATOR} loops on ${ACCOUNTS} hot accounts per side for ${DURATION_MS / 1000} s: ${n} transfers, ${acknowledged.size} acknowledged, ${refused.size} aborted (${[...codes].map(([c, k]) => `${c} ${k}`).join(', ') || 'none'}); deadlocks: PostgreSQL ${count('pg-deadlock')}, MariaDB ${count('mysql-deadlock')}; lock timeouts: PostgreSQL ${count('pg-lock-timeout')}, MariaDB ${count('mysql-lock-timeout')}; other ${count('other')}; ${both} transfers on both sides, invariants hold for every coordinator id (${Date.now() - t0} ms)`,
    );
    expect(count('pg-deadlock') + count('mysql-deadlock') + count('pg-lock-timeout') + count('mysql-lock-timeout'), 'the workload never hit a deadlock or lock timeout').toBeGreaterThan(0);
  });
});
