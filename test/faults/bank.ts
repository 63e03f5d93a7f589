/**
 * The shared bank-transfer workload of the fault-injection suite, and the invariant checker every
 * fault scenario ends with.
 *
 * Model: two banks with the same account ids, `erp` on PostgreSQL and `crm` on MariaDB/MySQL.
 * A transfer moves `amount` from erp account `from` to crm account `to` and records its id in a
 * transfers table on BOTH sides, in one `coord.transaction`. So after any fault, the databases'
 * own contents must show: the same transfer ids on both sides (or neither), erp's money down and
 * crm's money up by exactly the sum of those transfers, total money unchanged, every acknowledged
 * transfer present, and no prepared branch of the coordinator left behind.
 *
 * The admin connections used here go straight to the servers (never through a fault proxy), so
 * checks and clean-up work while a scenario is breaking the coordinator's connections.
 */
import type { BreakerConfig } from '../../participants/participant-config.js';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { pino } from 'pino';
import type { CreateCoordinatorOptions, Coordinator, TransactionResult } from '../../coordinator/types.js';
import { mysqlUrl, pgUrl } from '../integration/db-env.js';

/** Participant name of the PostgreSQL (debit) side. */
export const ERP = 'erp';
/** Participant name of the MariaDB/MySQL (credit) side. */
export const CRM = 'crm';

/** Options of {@link createBank}. */
export interface BankOptions {
  /** Table prefix, unique per test file (e.g. `fnet`): tables are `<name>_accounts` and `<name>_transfers`. `[a-z0-9_]+`. */
  readonly name: string;
  /** Number of accounts on each side (ids 0..accounts-1). Default 10. */
  readonly accounts?: number;
  /** Starting balance of every account on each side. Default 1 000 000 (transfers never go negative in practice; balances are not constrained). */
  readonly initialBalance?: number;
  /** PostgreSQL URL for set-up and checks (not the proxy). Default TXCOORD_PG_URL. */
  readonly pgUrl?: string;
  /** MariaDB/MySQL URL for set-up and checks (not the proxy). Default TXCOORD_MYSQL_URL. */
  readonly mysqlUrl?: string;
  /**
   * Coordinator ids whose prepared branches are rolled back before the tables are (re)created:
   * leftovers of an aborted earlier run hold locks that would block `drop table`. Only list ids
   * your own file uses.
   */
  readonly cleanupCoordinatorIds?: readonly string[];
}

/** A prepared branch of some coordinator, as the database itself reports it. */
export interface PreparedBranch {
  readonly side: typeof ERP | typeof CRM;
  readonly gtrid: string;
  readonly bqual: string;
  /** MySQL formatID (PostgreSQL has none: 0). */
  readonly formatId: number;
}

/** Input of {@link Bank.checkInvariants}. */
export interface InvariantInput {
  /** Coordinator id whose prepared branches must all be gone. */
  readonly coordinatorId: string;
  /** Transfer ids whose `coord.transaction` resolved: each must be on both sides. */
  readonly acknowledged: ReadonlySet<string>;
  /** Transfer ids that were refused (rejected without doubt, e.g. the callback threw): each must be absent. Optional. */
  readonly refused?: ReadonlySet<string>;
}

/** What {@link Bank.checkInvariants} found; `ok` is true when `problems` is empty. */
export interface InvariantReport {
  readonly ok: boolean;
  /** One human-readable line per violated invariant. */
  readonly problems: readonly string[];
  /** Prepared branches of the coordinator still in `pg_prepared_xacts` / `XA RECOVER`. */
  readonly preparedLeft: readonly PreparedBranch[];
  /** Transfer ids present on one side only. */
  readonly oneSided: readonly string[];
  /** Acknowledged transfer ids not present on both sides. */
  readonly missingAcknowledged: readonly string[];
  /** Refused transfer ids present on either side. */
  readonly presentRefused: readonly string[];
  /** Transfer ids whose amount differs between the sides. */
  readonly amountMismatch: readonly string[];
  /** Transfers found: on erp, on crm, on both. */
  readonly transfers: { readonly erp: number; readonly crm: number; readonly both: number };
  /** Money: each side's total now, and the total at creation. */
  readonly money: { readonly erp: number; readonly crm: number; readonly start: number };
}

/** One bank pair: its tables in both databases and admin connections to them. */
export interface Bank {
  /** Table holding `(id, balance)`, same name on both sides. */
  readonly accountsTable: string;
  /** Table holding `(transfer_id primary key, amount)`, same name on both sides. */
  readonly transfersTable: string;
  readonly accounts: number;
  readonly initialBalance: number;
  /** Direct (non-proxied) admin connections, for scenario-specific checks. */
  readonly pg: pg.Pool;
  readonly mysql: mysql.Pool;
  /** {@link transfer} on this bank: `bank.transfer(coord, id, from, to, amount)`. */
  transfer(coord: Coordinator, id: string, from: number, to: number, amount: number, options?: Parameters<Coordinator['transaction']>[1]): Promise<TransactionResult<void>>;
  /** Empties both tables and resets every balance (between scenarios). */
  reset(): Promise<void>;
  /** Checks every invariant against the databases' own views. Never throws on a violation: see {@link assertInvariants}. */
  checkInvariants(input: InvariantInput): Promise<InvariantReport>;
  /** Prepared branches whose gtrid belongs to `coordinatorId`, on both sides. */
  listPrepared(coordinatorId: string): Promise<PreparedBranch[]>;
  /** Rolls back every prepared branch of `coordinatorId` (clean-up in afterAll); returns how many. Best effort per branch. */
  rollbackPrepared(coordinatorId: string): Promise<number>;
  /** Drops both tables on both sides and closes the admin pools. */
  drop(): Promise<void>;
}

const NAME = /^[a-z0-9_]{1,40}$/;

/**
 * Creates (dropping any leftovers) `<name>_accounts` and `<name>_transfers` in PostgreSQL and in
 * MariaDB/MySQL, with `accounts` accounts of `initialBalance` on each side.
 */
export async function createBank(options: BankOptions): Promise<Bank> {
  if (!NAME.test(options.name)) throw new Error(`bank name ${JSON.stringify(options.name)} must match ${NAME}`);
  const accountsTable = `${options.name}_accounts`;
  const transfersTable = `${options.name}_transfers`;
  const accounts = options.accounts ?? 10;
  const initialBalance = options.initialBalance ?? 1_000_000;
  const pgPool = new pg.Pool({ connectionString: options.pgUrl ?? pgUrl, max: 4 });
  // A pool error (server restart, killed backend) must not crash the test process.
  pgPool.on('error', () => undefined);
  const myPool = mysql.createPool({ uri: options.mysqlUrl ?? mysqlUrl, connectionLimit: 4 });

  // Set up below, once listPrepared/rollbackPrepared exist; DDL waits at most this long for locks.
  const ddl = async () => {
    await pgPool.query(`set lock_timeout = '20s'; drop table if exists ${accountsTable}, ${transfersTable}`);
    await pgPool.query(`create table ${accountsTable} (id int primary key, balance bigint not null)`);
    await pgPool.query(`create table ${transfersTable} (transfer_id text primary key, amount bigint not null)`);
    await myPool.query(`drop table if exists ${accountsTable}, ${transfersTable}`);
    await myPool.query(`create table ${accountsTable} (id int primary key, balance bigint not null) engine=InnoDB`);
    await myPool.query(`create table ${transfersTable} (transfer_id varchar(100) primary key, amount bigint not null) engine=InnoDB`);
  };

  const reset = (): Promise<void> => retryingConnection(resetOnce);
  const resetOnce = async (): Promise<void> => {
    const ids = Array.from({ length: accounts }, (_v, i) => i);
    await pgPool.query(`delete from ${transfersTable}`);
    await pgPool.query(`delete from ${accountsTable}`);
    await pgPool.query(`insert into ${accountsTable} select i, $1 from unnest($2::int[]) i`, [initialBalance, ids]);
    await myPool.query(`delete from ${transfersTable}`);
    await myPool.query(`delete from ${accountsTable}`);
    await myPool.query(`insert into ${accountsTable} (id, balance) values ${ids.map(() => '(?, ?)').join(', ')}`, ids.flatMap((i) => [i, initialBalance]));
  };
  const listPrepared = (coordinatorId: string): Promise<PreparedBranch[]> => retryingConnection(() => listPreparedOnce(coordinatorId));
  const listPreparedOnce = async (coordinatorId: string): Promise<PreparedBranch[]> => {
    const prefix = `txc1.${coordinatorId}.`;
    const out: PreparedBranch[] = [];
    // PostgreSQL gid is `<gtrid>.<bqual>`; the bqual never contains a dot.
    const r = await pgPool.query<{ gid: string }>(`select gid from pg_prepared_xacts where starts_with(gid, $1)`, [prefix]);
    for (const { gid } of r.rows) {
      const dot = gid.lastIndexOf('.');
      out.push({ side: ERP, gtrid: gid.slice(0, dot), bqual: gid.slice(dot + 1), formatId: 0 });
    }
    out.push(...(await xaRecover(myPool)).filter((b) => b.gtrid.startsWith(prefix)));
    return out;
  };

  const rollbackPrepared = async (coordinatorId: string): Promise<number> => {
    let n = 0;
    for (const b of await listPrepared(coordinatorId)) {
      try {
        // Ids come from the database and were filtered to txcoord's ASCII shape, but quote them anyway.
        if (b.side === ERP) await pgPool.query(`rollback prepared '${`${b.gtrid}.${b.bqual}`.replace(/'/g, "''")}'`);
        else await myPool.query(`xa rollback X'${hex(b.gtrid)}',X'${hex(b.bqual)}',${b.formatId}`);
        n++;
      } catch {
        // Best effort: a branch still attached to a live session (MariaDB) or resolved meanwhile.
      }
    }
    return n;
  };

  for (const id of options.cleanupCoordinatorIds ?? []) await rollbackPrepared(id);
  await retryingConnection(ddl);
  await reset();

  const checkInvariants = (input: InvariantInput): Promise<InvariantReport> => retryingConnection(() => checkOnce(input));
  const checkOnce = async (input: InvariantInput): Promise<InvariantReport> => {
    const preparedLeft = await listPrepared(input.coordinatorId);
    const pgT = await pgPool.query<{ transfer_id: string; amount: string }>(`select transfer_id, amount from ${transfersTable}`);
    const [myRows] = await myPool.query(`select transfer_id, amount from ${transfersTable}`);
    const erpT = new Map(pgT.rows.map((r) => [r.transfer_id, Number(r.amount)]));
    const crmT = new Map((myRows as { transfer_id: string; amount: number | string }[]).map((r) => [r.transfer_id, Number(r.amount)]));
    const pgSum = await pgPool.query<{ s: string }>(`select coalesce(sum(balance), 0)::text s from ${accountsTable}`);
    const [mySum] = await myPool.query(`select cast(coalesce(sum(balance), 0) as char) s from ${accountsTable}`);
    const erpMoney = Number(pgSum.rows[0]?.s);
    const crmMoney = Number((mySum as { s: string }[])[0]?.s);
    const start = 2 * accounts * initialBalance;

    const all = new Set([...erpT.keys(), ...crmT.keys()]);
    const oneSided = [...all].filter((id) => erpT.has(id) !== crmT.has(id)).sort();
    const amountMismatch = [...all].filter((id) => erpT.has(id) && crmT.has(id) && erpT.get(id) !== crmT.get(id)).sort();
    const missingAcknowledged = [...input.acknowledged].filter((id) => !(erpT.has(id) && crmT.has(id))).sort();
    const presentRefused = [...(input.refused ?? [])].filter((id) => all.has(id)).sort();
    const sum = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);
    const both = [...all].filter((id) => erpT.has(id) && crmT.has(id)).length;

    const problems: string[] = [];
    const list = (ids: readonly string[]) => ids.slice(0, 10).join(', ') + (ids.length > 10 ? `, … (${ids.length})` : '');
    if (preparedLeft.length) problems.push(`prepared branches of ${input.coordinatorId} left: ${list(preparedLeft.map((b) => `${b.side}:${b.gtrid}.${b.bqual}`))}`);
    if (oneSided.length) problems.push(`transfers on one side only: ${list(oneSided)}`);
    if (amountMismatch.length) problems.push(`transfers with different amounts per side: ${list(amountMismatch)}`);
    if (missingAcknowledged.length) problems.push(`acknowledged transfers missing: ${list(missingAcknowledged)}`);
    if (presentRefused.length) problems.push(`refused transfers present: ${list(presentRefused)}`);
    if (erpMoney + crmMoney !== start) problems.push(`total money ${erpMoney + crmMoney} != ${start} at the start`);
    // Stronger than the total: a balance update applied without its transfer row would show here.
    if (erpMoney !== start / 2 - sum(erpT)) problems.push(`erp money ${erpMoney} != ${start / 2} - sum of erp transfers ${sum(erpT)}`);
    if (crmMoney !== start / 2 + sum(crmT)) problems.push(`crm money ${crmMoney} != ${start / 2} + sum of crm transfers ${sum(crmT)}`);

    return {
      ok: problems.length === 0,
      problems,
      preparedLeft,
      oneSided,
      missingAcknowledged,
      presentRefused,
      amountMismatch,
      transfers: { erp: erpT.size, crm: crmT.size, both },
      money: { erp: erpMoney, crm: crmMoney, start },
    };
  };

  return {
    accountsTable,
    transfersTable,
    accounts,
    initialBalance,
    pg: pgPool,
    mysql: myPool,
    transfer: (coord, id, from, to, amount, opts) => transfer(coord, { accountsTable, transfersTable }, id, from, to, amount, opts),
    reset,
    checkInvariants,
    listPrepared,
    rollbackPrepared,
    async drop() {
      try {
        await pgPool.query(`drop table if exists ${accountsTable}, ${transfersTable}`);
        await myPool.query(`drop table if exists ${accountsTable}, ${transfersTable}`);
      } finally {
        await pgPool.end().catch(() => undefined);
        await myPool.end().catch(() => undefined);
      }
    },
  };
}

/** Throws an Error listing every problem unless `report.ok`. */
export function assertInvariants(report: InvariantReport): void {
  if (!report.ok) throw new Error(`bank invariants violated:\n- ${report.problems.join('\n- ')}`);
}

/**
 * One atomic transfer through the public API: debit erp account `from`, credit crm account `to`,
 * and record `id` with `amount` on both sides. Resolves/rejects exactly as `coord.transaction`.
 * `id` must be unique per bank (it is the transfers tables' primary key) and at most 100 chars.
 */
export function transfer(
  coord: Coordinator,
  bank: Pick<Bank, 'accountsTable' | 'transfersTable'>,
  id: string,
  from: number,
  to: number,
  amount: number,
  options?: Parameters<Coordinator['transaction']>[1],
): Promise<TransactionResult<void>> {
  return coord.transaction(async (tx) => {
    await tx.query(ERP, `update ${bank.accountsTable} set balance = balance - $1 where id = $2`, [amount, from]);
    await tx.query(ERP, `insert into ${bank.transfersTable} (transfer_id, amount) values ($1, $2)`, [id, amount]);
    await tx.query(CRM, `update ${bank.accountsTable} set balance = balance + ? where id = ?`, [amount, to]);
    await tx.query(CRM, `insert into ${bank.transfersTable} (transfer_id, amount) values (?, ?)`, [id, amount]);
  }, options);
}

/** Options of {@link coordinatorConfig}. */
export interface CoordinatorConfigOptions {
  /** Coordinator id, unique per test file (1-24 of A-Z a-z 0-9 _ -). */
  readonly id: string;
  /** Decision-log directory; see {@link makeLogDir}. */
  readonly logDir: string;
  /** Where the coordinator reaches PostgreSQL (e.g. a proxy). Default TXCOORD_PG_URL. */
  readonly pgUrl?: string;
  /** Where the coordinator reaches MariaDB/MySQL (e.g. a proxy). Default TXCOORD_MYSQL_URL. */
  readonly mysqlUrl?: string;
  /** Pool settings of both participants. Default `{ max: 8, acquireTimeoutMs: 5000 }` (queryTimeoutMs: the adapters' default). */
  readonly pool?: { readonly max?: number; readonly acquireTimeoutMs?: number; readonly queryTimeoutMs?: number };
  readonly prepareTimeoutMs?: number;
  /** Background recovery period. Default 0 (off: scenarios call `coord.recover()` themselves). */
  readonly recoveryIntervalMs?: number;
  /** Recover at start. Default true. */
  readonly recoverOnStart?: boolean;
  /**
   * Circuit breaker of both participants. Default: off, because these scenarios test what the
   * protocol does under each fault, and a breaker would turn many of them into a fast refusal
   * (the breaker has its own scenario in network.test.ts).
   */
  readonly breaker?: BreakerConfig;
  /** Fields merged last (hooks such as `onProtocolPoint`, `logger`, `backoff`). */
  readonly extra?: Partial<CreateCoordinatorOptions>;
}

/** pino at level silent: fault scenarios produce expected errors by the hundred. */
export const silentLogger = pino({ level: 'silent' });

/**
 * `createCoordinator` options for the bank: a file log in `logDir`, `erp` (postgres) and `crm`
 * (mysql) participants, short phase-two backoff, no background recovery, a silent logger.
 */
export function coordinatorConfig(o: CoordinatorConfigOptions): CreateCoordinatorOptions {
  const pool = {
    max: o.pool?.max ?? 8,
    acquireTimeoutMs: o.pool?.acquireTimeoutMs ?? 5_000,
    ...(o.pool?.queryTimeoutMs !== undefined ? { queryTimeoutMs: o.pool.queryTimeoutMs } : {}),
  };
  return {
    id: o.id,
    log: { type: 'file', dir: o.logDir },
    participants: {
      [ERP]: { driver: 'postgres', connectionString: o.pgUrl ?? pgUrl, pool, breaker: o.breaker ?? { enabled: false } },
      [CRM]: { driver: 'mysql', uri: o.mysqlUrl ?? mysqlUrl, pool, breaker: o.breaker ?? { enabled: false } },
    },
    ...(o.prepareTimeoutMs !== undefined ? { prepareTimeoutMs: o.prepareTimeoutMs } : {}),
    recovery: { onStart: o.recoverOnStart ?? true, intervalMs: o.recoveryIntervalMs ?? 0 },
    backoff: { initialMs: 10, maxMs: 200 },
    logger: silentLogger,
    ...o.extra,
  };
}

/** A fresh temporary directory for a decision log, and a function removing it. */
export async function makeLogDir(prefix = 'txc-faults-'): Promise<{ dir: string; remove: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

/** `XA RECOVER` decoded with gtrid_length/bqual_length (the `data` column is gtrid then bqual). */
async function xaRecover(pool: mysql.Pool): Promise<PreparedBranch[]> {
  const [rows] = await pool.query('xa recover');
  return (rows as { formatID: number | string; gtrid_length: number | string; bqual_length: number | string; data: Buffer | string }[]).map((r) => {
    const data = Buffer.isBuffer(r.data) ? r.data : Buffer.from(r.data, 'latin1');
    const g = Number(r.gtrid_length);
    const b = Number(r.bqual_length);
    return { side: CRM, gtrid: data.subarray(0, g).toString('latin1'), bqual: data.subarray(g, g + b).toString('latin1'), formatId: Number(r.formatID) };
  });
}

const CONNECTION_ERROR = /ECONNREFUSED|ECONNRESET|EPIPE|shutting down|starting up|terminating connection|Connection terminated|closed state|PROTOCOL_CONNECTION_LOST|server has gone away/i;
const RETRY_FOR_MS = 30_000;

/**
 * Runs `fn` again while it fails with a connection error, for up to 30 s: other fault scenarios
 * restart the database servers, and a check must not fail because its admin connection died.
 * `fn` must be safe to repeat (each operation here is read-only or rewrites the same state).
 */
async function retryingConnection<T>(fn: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + RETRY_FOR_MS;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      const text = `${(err as { code?: unknown }).code ?? ''} ${err instanceof Error ? err.message : String(err)}`;
      if (!CONNECTION_ERROR.test(text) || Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

function hex(s: string): string {
  return Buffer.from(s, 'latin1').toString('hex');
}
