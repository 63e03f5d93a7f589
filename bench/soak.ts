/**
 * Soak test: steady transfer load through the public API between a real PostgreSQL and a real
 * MariaDB/MySQL, with occasional injected faults, reporting throughput, latency, memory,
 * connections, file handles and decision-log size every minute, then recovering and checking
 * the invariants against the databases' own views.
 *
 *   npm run soak -- --minutes 16 [--concurrency 16] [--accounts 10000] [--fault-min-s 30] [--fault-max-s 60]
 *
 * Exit code 0 when every check passes, 1 on a failed check, 2 on bad usage or unreachable databases.
 * The script re-spawns itself with `--expose-gc` so memory is sampled after a full collection
 * (otherwise the 10% growth criterion would mostly measure when V8 last happened to collect).
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { pino } from 'pino';
import { createCoordinator } from '../coordinator/create-coordinator.js';
import type { Coordinator, RecoveryReport } from '../coordinator/types.js';
import { openFileLog, type FileDecisionLog } from '../log/file/file-log.js';

/** Command-line options of the soak. */
export interface SoakOptions {
  /** Duration of the load phase; fractional allowed (0.5 = 30 s). */
  readonly minutes: number;
  /** Transfers in flight at once. */
  readonly concurrency: number;
  /** Accounts on each side; many accounts keep hot-row lock waits rare but not absent. */
  readonly accounts: number;
  /** Fault interval bounds, seconds (uniformly random in between). */
  readonly faultMinS: number;
  readonly faultMaxS: number;
  /** Decision-log segment size: small, so compaction runs many times during the soak. */
  readonly segmentBytes: number;
  readonly pgUrl: string;
  readonly mysqlUrl: string;
}

/** One per-minute (or final partial-interval) report row. */
export interface SoakSample {
  readonly minute: number;
  readonly seconds: number;
  readonly committed: number;
  readonly aborted: number;
  readonly tps: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly rssMb: number;
  readonly heapMb: number;
  readonly pgConns: number;
  readonly myConns: number;
  readonly fds: number;
  readonly logLive: number;
  readonly logKb: number;
  readonly logSegments: number;
  readonly compactions: number;
  readonly faults: string;
  readonly errors: string;
}

const COORD_ID = 'soak';
const PG_NAME = 'soakpg';
const MY_NAME = 'soakmy';
const ACCOUNTS = 'soak_accounts';
const TRANSFERS = 'soak_transfers';
const INITIAL_BALANCE = 1_000_000;
/** Fraction of transfers whose callback throws after writing on both sides (beside the timed faults). */
const THROW_RATE = 0.002;

type FaultKind = 'pg-terminate-active' | 'my-kill-active' | 'pg-terminate-own' | 'my-kill-own' | 'callback-throws';
const FAULT_ROTATION: readonly FaultKind[] = ['pg-terminate-active', 'my-kill-active', 'callback-throws', 'pg-terminate-own', 'my-kill-own'];

/** State of each transfer id, in a preallocated array so tracking them does not grow the heap under test. */
const enum Fate {
  None = 0,
  Started = 1,
  Acknowledged = 2,
  Rejected = 3,
}

class InjectedError extends Error {
  constructor(what: string) {
    super(`injected fault: ${what}`);
    this.name = 'InjectedError';
  }
}

function usage(msg: string): never {
  process.stderr.write(`soak: ${msg}\nusage: node dist/bench/soak.js --minutes N [--concurrency 16] [--accounts 10000] [--fault-min-s 30] [--fault-max-s 60] [--segment-bytes 1048576]\n`);
  process.exit(2);
}

function parseArgs(argv: readonly string[]): SoakOptions {
  const num = (name: string, def: number): number => {
    const i = argv.indexOf(`--${name}`);
    if (i < 0) return def;
    const v = Number(argv[i + 1]);
    if (!Number.isFinite(v) || v <= 0) usage(`--${name} needs a positive number`);
    return v;
  };
  for (const a of argv) if (a.startsWith('--') && !/^--(minutes|concurrency|accounts|fault-min-s|fault-max-s|segment-bytes)$/.test(a)) usage(`unknown option ${a}`);
  const opts: SoakOptions = {
    minutes: num('minutes', 1),
    concurrency: Math.floor(num('concurrency', 16)),
    accounts: Math.floor(num('accounts', 10_000)),
    faultMinS: num('fault-min-s', 30),
    faultMaxS: num('fault-max-s', 60),
    segmentBytes: Math.floor(num('segment-bytes', 1024 * 1024)),
    pgUrl: process.env.TXCOORD_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test',
    mysqlUrl: process.env.TXCOORD_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test',
  };
  if (opts.faultMaxS < opts.faultMinS) usage('--fault-max-s must be >= --fault-min-s');
  return opts;
}

function percentile(sorted: Float64Array, n: number, p: number): number {
  if (n === 0) return 0;
  return sorted[Math.min(n - 1, Math.floor((p / 100) * n))] ?? 0;
}

async function dirBytes(dir: string): Promise<{ bytes: number; segments: number }> {
  let bytes = 0;
  let segments = 0;
  for (const name of await readdir(dir)) {
    const s = await stat(join(dir, name)).catch(() => undefined);
    if (!s?.isFile()) continue;
    bytes += s.size;
    if (name !== 'LOCK') segments++;
  }
  return { bytes, segments };
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const mb = (n: number) => Math.round((n / 1048576) * 10) / 10;

/** Counts the coordinator's pino output by level, keeping a few distinct messages for the report. */
function countingLogger() {
  const byLevel = new Map<number, number>();
  const messages = new Map<string, number>();
  let minuteWarnings = 0;
  const stream = {
    write(line: string) {
      try {
        const o = JSON.parse(line) as { level?: number; msg?: string; err?: { code?: string } };
        const level = o.level ?? 0;
        byLevel.set(level, (byLevel.get(level) ?? 0) + 1);
        minuteWarnings++;
        const key = `${level >= 50 ? 'error' : 'warn'}: ${o.msg ?? '?'}${o.err?.code ? ` (${o.err.code})` : ''}`;
        // Bounded: distinct messages are few; beyond 50 something is badly wrong anyway.
        if (messages.has(key) || messages.size < 50) messages.set(key, (messages.get(key) ?? 0) + 1);
      } catch {
        // not JSON: ignore
      }
    },
  };
  return {
    logger: pino({ level: 'warn' }, stream),
    byLevel,
    messages,
    takeMinute: () => {
      const n = minuteWarnings;
      minuteWarnings = 0;
      return n;
    },
  };
}

/** An 'error' event a pg Client emitted with nobody listening: without the hook below, the process would have died. */
interface UnhandledClientError {
  readonly at: string;
  readonly message: string;
  readonly code: string;
  /** The last statement sent on that client: tells which code path held it without a listener. */
  readonly lastSql: string;
}

/**
 * Diagnostic hook, bench only: records the last statement of every pg Client and turns an
 * unlistened 'error' event (which Node would throw, killing the process) into a recorded failure,
 * so one soak run can show how often and where it happens instead of dying at the first.
 */
function hookPgClientErrors(): UnhandledClientError[] {
  const seen: UnhandledClientError[] = [];
  type Hooked = pg.Client & { soakLastSql?: string };
  const proto = pg.Client.prototype as unknown as {
    query: (this: Hooked, ...args: unknown[]) => unknown;
    emit: (this: Hooked, event: string | symbol, ...args: unknown[]) => boolean;
  };
  const query = proto.query;
  proto.query = function (this: Hooked, ...args: unknown[]) {
    const first = args[0];
    const text = typeof first === 'string' ? first : (first as { text?: unknown } | undefined)?.text;
    this.soakLastSql = typeof text === 'string' ? text.slice(0, 60) : '?';
    return query.apply(this, args);
  };
  const emit = proto.emit;
  proto.emit = function (this: Hooked, event: string | symbol, ...args: unknown[]) {
    if (event === 'error' && this.listenerCount('error') === 0) {
      const err = args[0] as { message?: string; code?: string } | undefined;
      seen.push({ at: new Date().toISOString(), message: String(err?.message), code: String(err?.code ?? ''), lastSql: this.soakLastSql ?? '(none)' });
      return true;
    }
    return emit.call(this, event, ...args);
  };
  return seen;
}

async function main(): Promise<number> {
  const unlistened = hookPgClientErrors();
  const opts = parseArgs(process.argv.slice(2));
  const out = (s: string) => process.stdout.write(`${s}\n`);
  const gc = (globalThis as { gc?: () => void }).gc;

  // Pools, not single connections: the shared test servers get restarted by other suites (the
  // db-restart fault test), and an idle lone client whose server goes away is an unhandled 'error'
  // event that kills the process; a pool drops the dead connection and opens a new one.
  const admin = new pg.Pool({ connectionString: opts.pgUrl, application_name: 'txcoord-soak-admin', max: 2 });
  admin.on('error', () => undefined);
  const myAdmin = mysql.createPool({ uri: opts.mysqlUrl, connectionLimit: 2 });
  myAdmin.on('connection', (c) => c.on('error', () => undefined));
  const waitForServers = async (what: string): Promise<void> => {
    const until = Date.now() + 180_000;
    for (let announced = false; ; ) {
      const up = await Promise.all([admin.query('select 1').then(() => true, () => false), myAdmin.query('select 1').then(() => true, () => false)]);
      if (up[0] && up[1]) return;
      if (Date.now() > until) throw new Error(`${what}: servers unreachable for 180 s (pg ${up[0]}, mariadb ${up[1]})`);
      if (!announced) out(`waiting for the servers (${what}): pg ${up[0] ? 'up' : 'down'}, mariadb ${up[1] ? 'up' : 'down'}`);
      announced = true;
      await sleep(1_000);
    }
  };
  await waitForServers('start');
  const serverStarts = async (): Promise<{ pg: string; my: number }> => ({
    pg: await admin.query<{ t: Date }>('select pg_postmaster_start_time() as t').then((r) => String(r.rows[0]?.t?.getTime()), () => '?'),
    my: await myAdmin.query(`select variable_value as v from information_schema.global_status where variable_name = 'UPTIME'`).then(
      ([rows]) => Date.now() / 1000 - Number((rows as { v: string }[])[0]?.v),
      () => Number.NaN,
    ),
  });
  let starts = await serverStarts();
  const externalRestarts: string[] = [];
  let unlistenedShown = 0;

  const workDir = await mkdtemp(join(tmpdir(), 'txc-soak-'));
  const logDir = join(workDir, 'log');
  const counted = countingLogger();
  // Opened here rather than by createCoordinator so the soak can read its counters and live set.
  const decisionLog: FileDecisionLog = await openFileLog({ type: 'file', dir: logDir, segmentBytes: opts.segmentBytes }, { logger: counted.logger });
  const coord: Coordinator = await createCoordinator({
    id: COORD_ID,
    log: { type: 'file', dir: logDir, segmentBytes: opts.segmentBytes },
    decisionLog,
    participants: {
      [PG_NAME]: { driver: 'postgres', connectionString: opts.pgUrl, pool: { max: opts.concurrency } },
      [MY_NAME]: { driver: 'mysql', uri: opts.mysqlUrl, pool: { max: opts.concurrency } },
    },
    prepareTimeoutMs: 10_000,
    // Frequent passes, so branches left prepared by a killed connection are resolved during the soak, not only at the end.
    recovery: { onStart: true, intervalMs: 10_000 },
    backoff: { initialMs: 50, maxMs: 2_000 },
    logger: counted.logger,
  });

  // Tables are created after the coordinator's start-up recovery: a previous soak's prepared
  // branches would otherwise hold locks that block the DROP.
  await admin.query(`drop table if exists ${TRANSFERS}, ${ACCOUNTS}`);
  await admin.query(`create table ${ACCOUNTS} (id int primary key, balance bigint not null)`);
  await admin.query(`create table ${TRANSFERS} (id bigint primary key, account int not null, delta bigint not null)`);
  await admin.query(`insert into ${ACCOUNTS} select g, ${INITIAL_BALANCE} from generate_series(0, $1) g`, [opts.accounts - 1]);
  await myAdmin.query(`drop table if exists ${TRANSFERS}, ${ACCOUNTS}`);
  await myAdmin.query(`create table ${ACCOUNTS} (id int primary key, balance bigint not null) engine=InnoDB`);
  await myAdmin.query(`create table ${TRANSFERS} (id bigint primary key, account int not null, delta bigint not null, conn bigint not null) engine=InnoDB`);
  for (let i = 0; i < opts.accounts; i += 1000) {
    const rows = Array.from({ length: Math.min(1000, opts.accounts - i) }, (_, k) => `(${i + k}, ${INITIAL_BALANCE})`);
    await myAdmin.query(`insert into ${ACCOUNTS} (id, balance) values ${rows.join(',')}`);
  }
  const startTotal = 2 * opts.accounts * INITIAL_BALANCE;

  // Capacity for ~10 000 tps over the whole run; allocated (and zeroed) before the first sample.
  const capacity = Math.max(1_000_000, Math.ceil(opts.minutes * 60 * 10_000));
  const fate = new Uint8Array(capacity);
  let nextId = 0;
  // MariaDB shows no application name, so our connections are recognised by the ids they report.
  const myConnIds = new Set<number>();

  // Per-interval counters; latencies in a reusable buffer so the load itself allocates little.
  let lat = new Float64Array(65_536);
  let latN = 0;
  let committed = 0;
  let aborted = 0;
  const errorCodes = new Map<string, number>();
  const faultsThisMinute: string[] = [];
  const faultsThisMinuteExt: string[] = [];
  const allFaults: string[] = [];
  let throwNext = false;
  let killOwn: 'pg' | 'my' | undefined;

  const deadline = performance.now() + opts.minutes * 60_000;
  let stopping = false;

  const transfer = async (id: number) => {
    const pgAcct = Math.floor(Math.random() * opts.accounts);
    const myAcct = Math.floor(Math.random() * opts.accounts);
    const amount = 1 + Math.floor(Math.random() * 100);
    // Random direction so balances wander both ways; the pg side gets +delta, MariaDB -delta.
    const delta = Math.random() < 0.5 ? amount : -amount;
    const injectThrow = throwNext || Math.random() < THROW_RATE;
    if (throwNext) throwNext = false;
    const own = killOwn;
    killOwn = undefined;
    await coord.transaction(
      async (tx) => {
        // pg first, then MariaDB, in every transfer: one row per side in a fixed order cannot deadlock across the two databases.
        const r = await tx.query(
          PG_NAME,
          `with t as (insert into ${TRANSFERS} (id, account, delta) values ($1, $2, $3)) update ${ACCOUNTS} set balance = balance + $3 where id = $2 returning pg_backend_pid() as pid`,
          [id, pgAcct, delta],
        );
        const m = await tx.query(MY_NAME, `insert into ${TRANSFERS} (id, account, delta, conn) values (?, ?, ?, connection_id()) returning conn`, [id, myAcct, -delta]);
        await tx.query(MY_NAME, `update ${ACCOUNTS} set balance = balance - ? where id = ?`, [delta, myAcct]);
        const conn = Number(m.rows[0]?.conn);
        if (Number.isFinite(conn)) myConnIds.add(conn);
        if (own === 'pg') {
          const pid = Number(r.rows[0]?.pid);
          await admin.query('select pg_terminate_backend($1)', [pid]);
          // Let the driver notice the dead socket before the coordinator prepares on it.
          await sleep(50);
        } else if (own === 'my') {
          await myAdmin.query(`KILL ${conn}`);
          await sleep(50);
        }
        if (injectThrow) throw new InjectedError('callback throws');
      },
      { meta: { soak: id } },
    );
  };

  const worker = async () => {
    while (!stopping && performance.now() < deadline) {
      const id = nextId++;
      if (id >= capacity) break;
      fate[id] = Fate.Started;
      const t0 = performance.now();
      try {
        await transfer(id);
        fate[id] = Fate.Acknowledged;
        if (latN === lat.length) {
          const bigger = new Float64Array(lat.length * 2);
          bigger.set(lat);
          lat = bigger;
        }
        lat[latN++] = performance.now() - t0;
        committed++;
      } catch (err) {
        fate[id] = Fate.Rejected;
        aborted++;
        const code = err instanceof InjectedError ? 'callback-throws' : String((err as { code?: unknown }).code ?? (err as Error).name);
        errorCodes.set(code, (errorCodes.get(code) ?? 0) + 1);
        // A fault can leave the pools briefly empty; do not spin through failures.
        if (!(err instanceof InjectedError)) await sleep(20);
      }
    }
  };

  const injectFault = async (kind: FaultKind): Promise<string> => {
    switch (kind) {
      case 'pg-terminate-active': {
        // Not idle = inside a transaction (running or between statements), or mid prepare/commit.
        const r = await admin.query<{ pid: number; state: string; q: string }>(
          `select pid, state, left(query, 30) as q from pg_stat_activity where application_name = $1 and datname = current_database() and state <> 'idle' order by random() limit 1`,
          [`txcoord:${PG_NAME}`],
        );
        const row = r.rows[0];
        if (!row) {
          killOwn = 'pg';
          return 'pg-terminate (no active backend; armed in-callback)';
        }
        await admin.query('select pg_terminate_backend($1)', [row.pid]);
        return `pg-terminate pid ${row.pid} (${row.state}: ${row.q.replace(/\s+/g, ' ')})`;
      }
      case 'my-kill-active': {
        const ids = [...myConnIds];
        if (ids.length === 0) return 'my-kill (no connection known yet)';
        const [rows] = await myAdmin.query(
          `select p.id, p.command, left(coalesce(p.info, ''), 30) as q from information_schema.processlist p
             left join information_schema.innodb_trx t on t.trx_mysql_thread_id = p.id
            where p.id in (${ids.join(',')}) and (p.command <> 'Sleep' or t.trx_id is not null) order by rand() limit 1`,
        );
        const row = (rows as { id: number; command: string; q: string }[])[0];
        if (!row) {
          killOwn = 'my';
          return 'my-kill (no active connection; armed in-callback)';
        }
        await myAdmin.query(`KILL ${Number(row.id)}`).catch((err: unknown) => {
          // The connection may have finished between the select and the KILL.
          if ((err as { errno?: number }).errno !== 1094) throw err;
        });
        return `my-kill id ${row.id} (${row.command}: ${row.q.replace(/\s+/g, ' ')})`;
      }
      case 'pg-terminate-own':
        killOwn = 'pg';
        return 'pg-terminate own backend inside the callback';
      case 'my-kill-own':
        killOwn = 'my';
        return 'my-kill own connection inside the callback';
      case 'callback-throws':
        throwNext = true;
        return 'callback throws (forced; plus the random 0.2%)';
    }
  };

  const faultLoop = async () => {
    let i = 0;
    for (;;) {
      const wait = (opts.faultMinS + Math.random() * (opts.faultMaxS - opts.faultMinS)) * 1000;
      const until = performance.now() + wait;
      while (performance.now() < until) {
        if (stopping || performance.now() >= deadline) return;
        await sleep(Math.min(500, until - performance.now()));
      }
      if (stopping || performance.now() >= deadline) return;
      const kind = FAULT_ROTATION[i++ % FAULT_ROTATION.length] ?? 'callback-throws';
      try {
        const what = await injectFault(kind);
        faultsThisMinute.push(kind);
        allFaults.push(`${((performance.now() - startedAt) / 1000).toFixed(0)}s ${what}`);
      } catch (err) {
        allFaults.push(`${kind} injection failed: ${(err as Error).message}`);
      }
    }
  };

  const samples: SoakSample[] = [];
  const columns = 'min   secs  commit  abort    tps  p50ms  p99ms  rssMB heapMB pgConn myConn   fds  live  logKB segs  compact  warn  faults / errors';
  const takeSample = async (minute: number, seconds: number): Promise<SoakSample> => {
    // Snapshot and reset the interval's counters before the first await: transfers that finish
    // while the sample queries the servers belong to the next interval, not to nobody.
    const n = latN;
    const sorted = lat.slice(0, n).sort();
    const p50 = percentile(sorted, n, 50);
    const p99 = percentile(sorted, n, 99);
    const interval = { committed, aborted, codes: [...errorCodes].map(([c, k]) => `${c}×${k}`).join(' '), faults: faultsThisMinute.join(',') };
    latN = 0;
    committed = 0;
    aborted = 0;
    errorCodes.clear();
    faultsThisMinute.length = 0;
    gc?.();
    const mem = process.memoryUsage();
    const pgc = await admin
      .query<{ n: string }>(`select count(*) as n from pg_stat_activity where application_name = $1 and datname = current_database()`, [`txcoord:${PG_NAME}`])
      .then((r) => Number(r.rows[0]?.n ?? -1), () => -1);
    const ids = [...myConnIds];
    const myc = ids.length === 0 ? 0 : await myAdmin
      .query(`select count(*) as n from information_schema.processlist where id in (${ids.join(',')})`)
      .then(([rows]) => Number((rows as { n: number }[])[0]?.n ?? -1), () => -1);
    const st = decisionLog.stats();
    const du = await dirBytes(logDir);
    const s: SoakSample = {
      minute,
      seconds,
      committed: interval.committed,
      aborted: interval.aborted,
      tps: interval.committed / seconds,
      p50Ms: p50,
      p99Ms: p99,
      rssMb: mb(mem.rss),
      heapMb: mb(mem.heapUsed),
      pgConns: pgc,
      myConns: myc,
      fds: readdirSync('/proc/self/fd').length,
      logLive: st.liveTransactions,
      logKb: Math.round(du.bytes / 1024),
      logSegments: du.segments,
      compactions: st.compactions,
      faults: interval.faults || '-',
      errors: interval.codes || '-',
    };
    const nowStarts = await serverStarts();
    // Other suites restart the shared servers (test/faults/db-restart.test.ts): record it, it is a fault too.
    if (nowStarts.pg !== '?' && starts.pg !== '?' && nowStarts.pg !== starts.pg) faultsThisMinuteExt.push('pg-restart(external)');
    if (Number.isFinite(nowStarts.my) && Number.isFinite(starts.my) && Math.abs(nowStarts.my - starts.my) > 5) {
      faultsThisMinuteExt.push('mariadb-restart(external)');
      // A restarted server numbers connections from 1 again: old ids would now name strangers' connections.
      myConnIds.clear();
    }
    if (nowStarts.pg !== '?') starts = { ...starts, pg: nowStarts.pg };
    if (Number.isFinite(nowStarts.my)) starts = { ...starts, my: nowStarts.my };
    const ext = faultsThisMinuteExt.splice(0);
    externalRestarts.push(...ext.map((e) => `minute ${minute}: ${e}`));
    const newUnlistened = unlistened.length - unlistenedShown;
    unlistenedShown = unlistened.length;
    const shownFaults = [s.faults === '-' ? '' : s.faults, ...ext, newUnlistened > 0 ? `UNLISTENED-PG-ERROR×${newUnlistened}` : ''].filter(Boolean).join(',') || '-';
    const warnings = counted.takeMinute();
    out(
      [
        String(s.minute).padStart(3),
        s.seconds.toFixed(0).padStart(6),
        String(s.committed).padStart(7),
        String(s.aborted).padStart(6),
        s.tps.toFixed(1).padStart(6),
        s.p50Ms.toFixed(1).padStart(6),
        s.p99Ms.toFixed(1).padStart(6),
        s.rssMb.toFixed(1).padStart(6),
        s.heapMb.toFixed(1).padStart(6),
        String(s.pgConns).padStart(6),
        String(s.myConns).padStart(6),
        String(s.fds).padStart(5),
        String(s.logLive).padStart(5),
        String(s.logKb).padStart(6),
        String(s.logSegments).padStart(4),
        String(s.compactions).padStart(8),
        String(warnings).padStart(5),
        ` ${shownFaults} / ${s.errors}`,
      ].join(' '),
    );
    return s;
  };

  out(
    `txcoord soak: ${opts.minutes} min, concurrency ${opts.concurrency}, ${opts.accounts} accounts per side, faults every ${opts.faultMinS}-${opts.faultMaxS} s, ` +
      `log segmentBytes ${opts.segmentBytes}, gc ${gc ? 'forced before each sample' : 'NOT exposed'}, node ${process.version}, pid ${process.pid}`,
  );
  out(`log dir ${logDir}`);
  out(columns);
  const startedAt = performance.now();
  const workers = Array.from({ length: opts.concurrency }, () => worker());
  const faults = faultLoop();
  let minute = 0;
  let lastAt = startedAt;
  while (performance.now() < deadline) {
    const next = Math.min(deadline, lastAt + 60_000);
    await sleep(Math.max(0, next - performance.now()));
    if (deadline - performance.now() < 1_000) {
      // The last interval includes the drain of transfers still in flight at the deadline.
      stopping = true;
      await Promise.all(workers);
      await faults;
    }
    const now = performance.now();
    minute++;
    samples.push(await takeSample(minute, (now - lastAt) / 1000));
    lastAt = now;
    if (stopping) break;
  }
  stopping = true;
  await Promise.all(workers);
  await faults;

  await waitForServers('final recovery');
  // Final recovery: a fault near the end can leave a branch prepared or a phase two retrying.
  const reports: RecoveryReport[] = [];
  for (let i = 0; i < 5; i++) {
    const rep = await coord.recover();
    reports.push(rep);
    // Other coordinators' branches (tests running beside the soak) are not ours to wait for.
    if (!rep.remaining.some((b) => b.coordinatorId === COORD_ID) && rep.failures.length === 0) break;
    await sleep(2_000);
  }
  const lastReport = reports[reports.length - 1];
  const finalStats = decisionLog.stats();
  await coord.close({ timeoutMs: 30_000 });

  // ---- invariants, from the databases' own views ----
  const checks: { name: string; ok: boolean; detail: string }[] = [];
  const pgPrepared = await admin.query<{ gid: string }>(`select gid from pg_prepared_xacts where gid like $1`, [`txc1.${COORD_ID}.%`]);
  const [xaRows] = await myAdmin.query('XA RECOVER');
  const myPrepared = (xaRows as { data: Buffer | string }[]).filter((r) => String(r.data).startsWith(`txc1.${COORD_ID}.`));
  checks.push({
    name: 'no prepared branch of the soak left (pg_prepared_xacts, XA RECOVER)',
    ok: pgPrepared.rowCount === 0 && myPrepared.length === 0,
    detail: `pg ${pgPrepared.rowCount ?? 0}, mariadb ${myPrepared.length}; recover(): ${reports
      .map((r) => `committed ${r.committed} rolledBack ${r.rolledBack} ended ${r.ended} remaining(ours) ${r.remaining.filter((b) => b.coordinatorId === COORD_ID).length} failures ${r.failures.length} heuristic ${r.heuristic.length}`)
      .join(' | ')}`,
  });
  checks.push({ name: 'recover() reports no heuristic outcome', ok: reports.every((r) => r.heuristic.length === 0), detail: JSON.stringify(lastReport?.heuristic ?? []) });

  const pgT = await admin.query<{ id: string; delta: string }>(`select id, delta from ${TRANSFERS}`);
  const [myTRows] = await myAdmin.query(`select id, delta from ${TRANSFERS}`);
  const myT = new Map<number, number>();
  for (const r of myTRows as { id: number | string; delta: number | string }[]) myT.set(Number(r.id), Number(r.delta));
  let both = 0;
  let pgOnly = 0;
  let deltaMismatch = 0;
  const pgIds = new Set<number>();
  for (const r of pgT.rows) {
    const id = Number(r.id);
    pgIds.add(id);
    const other = myT.get(id);
    if (other === undefined) pgOnly++;
    else {
      both++;
      if (other !== -Number(r.delta)) deltaMismatch++;
    }
  }
  let myOnly = 0;
  for (const id of myT.keys()) if (!pgIds.has(id)) myOnly++;
  checks.push({
    name: 'every transfer on both sides or neither',
    ok: pgOnly === 0 && myOnly === 0 && deltaMismatch === 0,
    detail: `both ${both}, pg only ${pgOnly}, mariadb only ${myOnly}, amount mismatch ${deltaMismatch}`,
  });

  let acked = 0;
  let ackedMissing = 0;
  let rejected = 0;
  let rejectedPresent = 0;
  let started = 0;
  for (let id = 0; id < Math.min(nextId, capacity); id++) {
    const f = fate[id];
    if (f === Fate.Acknowledged) {
      acked++;
      if (!pgIds.has(id) || !myT.has(id)) ackedMissing++;
    } else if (f === Fate.Rejected) {
      rejected++;
      if (pgIds.has(id)) rejectedPresent++;
    } else if (f === Fate.Started) started++;
  }
  checks.push({ name: 'every acknowledged transfer present on both sides', ok: ackedMissing === 0, detail: `acknowledged ${acked}, missing ${ackedMissing}` });
  // Informational: a rejection after the decision could legitimately have committed (the API says it never does, so flag it).
  checks.push({
    name: 'no rejected transfer committed',
    ok: rejectedPresent === 0,
    detail: `rejected ${rejected}, present anyway ${rejectedPresent}; unresolved at stop ${started}`,
  });

  const pgSum = await admin.query<{ s: string }>(`select coalesce(sum(balance), 0) as s from ${ACCOUNTS}`);
  const pgDelta = await admin.query<{ s: string }>(`select coalesce(sum(delta), 0) as s from ${TRANSFERS}`);
  const [mySumRows] = await myAdmin.query(`select cast(coalesce(sum(balance), 0) as signed) as s from ${ACCOUNTS}`);
  const [myDeltaRows] = await myAdmin.query(`select cast(coalesce(sum(delta), 0) as signed) as s from ${TRANSFERS}`);
  const pgTotal = Number(pgSum.rows[0]?.s);
  const myTotal = Number((mySumRows as { s: number | string }[])[0]?.s);
  const pgMoved = Number(pgDelta.rows[0]?.s);
  const myMoved = Number((myDeltaRows as { s: number | string }[])[0]?.s);
  const half = startTotal / 2;
  checks.push({
    name: 'total balance unchanged, and each side moved by exactly its transfers',
    ok: pgTotal + myTotal === startTotal && pgTotal - half === pgMoved && myTotal - half === myMoved,
    detail: `pg ${pgTotal} + mariadb ${myTotal} = ${pgTotal + myTotal} (start ${startTotal}); pg moved ${pgTotal - half} vs transfers ${pgMoved}; mariadb moved ${myTotal - half} vs transfers ${myMoved}`,
  });

  // Memory: minute 2 is after warm-up (JIT, pools full, first compactions); compare with the last full minute.
  const full = samples.filter((s) => s.seconds >= 30);
  const base = full.find((s) => s.minute === 2);
  const last = full[full.length - 1];
  if (base && last && last.minute > base.minute) {
    const rssG = (last.rssMb - base.rssMb) / base.rssMb;
    const heapG = (last.heapMb - base.heapMb) / base.heapMb;
    checks.push({
      name: 'memory growth under 10% between minute 2 and the end (RSS and heap used)',
      ok: rssG < 0.1 && heapG < 0.1,
      detail: `RSS ${base.rssMb} → ${last.rssMb} MB (${(rssG * 100).toFixed(1)}%), heap ${base.heapMb} → ${last.heapMb} MB (${(heapG * 100).toFixed(1)}%) at minute ${last.minute}${gc ? '' : '; gc not exposed'}`,
    });
  } else {
    out(`NOTE memory criterion not evaluated: needs at least 3 full minutes (ran ${opts.minutes})`);
  }
  const maxLogKb = Math.max(...samples.map((s) => s.logKb));
  checks.push({
    name: 'decision log bounded (compacted; never more than 4 segments of segmentBytes)',
    ok: maxLogKb <= (4 * opts.segmentBytes) / 1024 && (finalStats.compactions > 0 || opts.minutes < 3),
    detail: `compactions ${finalStats.compactions}, largest dir ${maxLogKb} KB, appends ${finalStats.appends}, fsyncs ${finalStats.fsyncs}, live at end ${finalStats.liveTransactions}`,
  });

  checks.push({
    name: "no unlistened 'error' event on a pg client (each would have killed the process)",
    ok: unlistened.length === 0,
    detail: unlistened.length === 0 ? 'none' : unlistened.map((u) => `${u.at} ${u.code} "${u.message}" last statement: ${u.lastSql}`).join(' | '),
  });
  const total = samples.reduce((a, s) => ({ c: a.c + s.committed, a: a.a + s.aborted }), { c: 0, a: 0 });
  out(`totals: committed ${total.c}, aborted ${total.a}, faults ${allFaults.length}, external server restarts ${externalRestarts.length}`);
  for (const e of externalRestarts) out(`  external ${e}`);
  for (const f of allFaults) out(`  fault ${f}`);
  out(`coordinator log lines: ${[...counted.byLevel].map(([l, n]) => `level ${l}×${n}`).join(', ') || 'none'}`);
  for (const [m, n] of counted.messages) out(`  ${n}× ${m}`);
  for (const c of checks) out(`${c.ok ? 'PASS' : 'FAIL'} ${c.name}: ${c.detail}`);

  await admin.end();
  await myAdmin.end();
  const failed = checks.some((c) => !c.ok);
  if (!failed) await rm(workDir, { recursive: true, force: true });
  else out(`work dir kept for inspection: ${workDir}`);
  return failed ? 1 : 0;
}

const gcExposed = typeof (globalThis as { gc?: unknown }).gc === 'function';
if (!gcExposed && process.env.TXCOORD_SOAK_CHILD !== '1') {
  // Re-spawn with --expose-gc: memory samples after a full collection are comparable.
  const child = spawn(process.execPath, ['--expose-gc', fileURLToPath(import.meta.url), ...process.argv.slice(2)], {
    stdio: 'inherit',
    env: { ...process.env, TXCOORD_SOAK_CHILD: '1' },
  });
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => child.kill(sig));
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
} else {
  main().then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`soak: ${(err as Error)?.stack ?? String(err)}\n`);
      process.exit(2);
    },
  );
}
