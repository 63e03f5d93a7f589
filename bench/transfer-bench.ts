import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { pino } from 'pino';
import { createCoordinator } from '../coordinator/create-coordinator.js';
import { branchXid, newGtrid, toMysqlXid, toPgGid } from '../coordinator/xid.js';

/** One measured cell: a way of doing the transfer at one concurrency. */
export interface TransferCell {
  readonly mode: 'local-commits' | 'hand-2pc' | 'hand-2pc-seq' | 'txcoord' | 'txcoord-marker';
  readonly concurrency: number;
  readonly tps: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly errors: number;
  /** Error codes seen, with counts (empty when none). */
  readonly errorCodes: Readonly<Record<string, number>>;
  /** tps of every round, in round order (the cell reports the median round). */
  readonly roundTps: readonly number[];
}

/** Options of {@link runTransferBench}. */
export interface TransferBenchOptions {
  readonly pgUrl: string;
  readonly mysqlUrl: string;
  readonly concurrencies: readonly number[];
  readonly seconds: number;
  /** Rows per table: many rows keep lock contention out of the comparison. */
  readonly rows?: number;
  /** Interleaved rounds per cell; the median round is reported (this VM's noise is ±30%). Default 3. */
  readonly rounds?: number;
}

type Transfer = (from: number, to: number, amount: number) => Promise<void>;

const TABLE = 'txc_bench_accounts';

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
}

async function measure(transfer: Transfer, concurrency: number, seconds: number, rows: number): Promise<Omit<TransferCell, 'mode' | 'concurrency' | 'roundTps'>> {
  const latencies: number[] = [];
  let errors = 0;
  const errorCodes: Record<string, number> = {};
  const deadline = performance.now() + seconds * 1000;
  const worker = async (w: number) => {
    // Each worker owns a disjoint slice of rows: the benchmark measures commit protocols, not lock waits.
    const slice = Math.floor(rows / concurrency);
    let i = 0;
    while (performance.now() < deadline) {
      const id = w * slice + (i++ % slice) + 1;
      const t0 = performance.now();
      try {
        await transfer(id, id, 1);
        latencies.push(performance.now() - t0);
      } catch (err) {
        errors++;
        const code = String((err as { code?: unknown }).code ?? 'unknown');
        errorCodes[code] = (errorCodes[code] ?? 0) + 1;
      }
    }
  };
  const start = performance.now();
  await Promise.all(Array.from({ length: concurrency }, (_, w) => worker(w)));
  const elapsed = (performance.now() - start) / 1000;
  latencies.sort((a, b) => a - b);
  return { tps: latencies.length / elapsed, p50Ms: percentile(latencies, 50), p99Ms: percentile(latencies, 99), errors, errorCodes };
}

async function setupTables(pgPool: pg.Pool, my: mysql.Pool, rows: number): Promise<void> {
  await pgPool.query(`drop table if exists ${TABLE}`);
  await pgPool.query(`create table ${TABLE} (id int primary key, balance bigint not null)`);
  await pgPool.query(`insert into ${TABLE} select g, 1000000 from generate_series(1, $1) g`, [rows]);
  await my.query(`drop table if exists ${TABLE}`);
  await my.query(`create table ${TABLE} (id int primary key, balance bigint not null) engine=InnoDB`);
  await my.query(`insert into ${TABLE} (id, balance) select seq, 1000000 from seq_1_to_${rows}`).catch(async () => {
    // MySQL has no sequence engine: insert in chunks instead.
    const values = Array.from({ length: rows }, (_, i) => `(${i + 1}, 1000000)`);
    for (let i = 0; i < values.length; i += 1000) await my.query(`insert into ${TABLE} (id, balance) values ${values.slice(i, i + 1000).join(',')}`);
  });
}

/** (a) Two independent local commits: fast, not atomic. */
function localCommits(pgPool: pg.Pool, my: mysql.Pool): Transfer {
  return async (from, to, amount) => {
    await Promise.all([
      (async () => {
        const c = await pgPool.connect();
        try {
          await c.query('BEGIN');
          await c.query(`update ${TABLE} set balance = balance - $1 where id = $2`, [amount, from]);
          await c.query('COMMIT');
        } finally {
          c.release();
        }
      })(),
      (async () => {
        const c = await my.getConnection();
        try {
          await c.query('BEGIN');
          await c.query(`update ${TABLE} set balance = balance + ? where id = ?`, [amount, to]);
          await c.query('COMMIT');
        } finally {
          c.release();
        }
      })(),
    ]);
  };
}

/** (b) Hand-written 2PC with no decision log: parallel prepares, parallel commits. */
function handTwoPhase(pgPool: pg.Pool, my: mysql.Pool): Transfer {
  return async (from, to, amount) => {
    const gtrid = newGtrid('bench');
    const pgGid = toPgGid(branchXid(gtrid, 0));
    const myXid = toMysqlXid(branchXid(gtrid, 1));
    const pc = await pgPool.connect();
    const mc = await my.getConnection();
    try {
      await Promise.all([
        (async () => {
          await pc.query('BEGIN');
          await pc.query(`update ${TABLE} set balance = balance - $1 where id = $2`, [amount, from]);
          const r = await pc.query(`PREPARE TRANSACTION '${pgGid}'`);
          if (r.command !== 'PREPARE') throw new Error('prepare failed');
        })(),
        (async () => {
          await mc.query(`XA START ${myXid}`);
          await mc.query(`update ${TABLE} set balance = balance + ? where id = ?`, [amount, to]);
          await mc.query(`XA END ${myXid}`);
          await mc.query(`XA PREPARE ${myXid}`);
        })(),
      ]);
      await Promise.all([pc.query(`COMMIT PREPARED '${pgGid}'`), mc.query(`XA COMMIT ${myXid}`)]);
    } finally {
      pc.release();
      mc.release();
    }
  };
}

/**
 * (b') The straightforward hand-written 2PC: each step awaited in turn (work, prepare, commit on
 * one database, then the other). A reference point, not the target's baseline.
 */
function handTwoPhaseSequential(pgPool: pg.Pool, my: mysql.Pool): Transfer {
  return async (from, to, amount) => {
    const gtrid = newGtrid('bench');
    const pgGid = toPgGid(branchXid(gtrid, 0));
    const myXid = toMysqlXid(branchXid(gtrid, 1));
    const pc = await pgPool.connect();
    const mc = await my.getConnection();
    try {
      await pc.query('BEGIN');
      await pc.query(`update ${TABLE} set balance = balance - $1 where id = $2`, [amount, from]);
      await mc.query(`XA START ${myXid}`);
      await mc.query(`update ${TABLE} set balance = balance + ? where id = ?`, [amount, to]);
      const r = await pc.query(`PREPARE TRANSACTION '${pgGid}'`);
      if (r.command !== 'PREPARE') throw new Error('prepare failed');
      await mc.query(`XA END ${myXid}`);
      await mc.query(`XA PREPARE ${myXid}`);
      await pc.query(`COMMIT PREPARED '${pgGid}'`);
      await mc.query(`XA COMMIT ${myXid}`);
    } finally {
      pc.release();
      mc.release();
    }
  };
}

/** A way of doing the transfer, with its own connections (so modes never compete for server connections). */
interface Contender {
  readonly transfer: Transfer;
  close(): Promise<void>;
}

function pools(opts: TransferBenchOptions, max: number): { pgPool: pg.Pool; my: mysql.Pool; close: () => Promise<void> } {
  const pgPool = new pg.Pool({ connectionString: opts.pgUrl, max });
  const my = mysql.createPool({ uri: opts.mysqlUrl, connectionLimit: max });
  return { pgPool, my, close: async () => void (await Promise.all([pgPool.end(), my.end()])) };
}

/**
 * txcoord, with the decision forced to its file log, or (`decisionIn`) kept as a commit marker
 * in PostgreSQL, which then commits in one phase instead of preparing.
 */
async function txcoordContender(opts: TransferBenchOptions, max: number, decisionIn?: string): Promise<Contender> {
  const logDir = await mkdtemp(join(tmpdir(), 'txc-bench-log-'));
  const coord = await createCoordinator({
    id: 'bench',
    log: { type: 'file', dir: logDir },
    ...(decisionIn ? { decisionIn } : {}),
    participants: {
      erp: { driver: 'postgres', connectionString: opts.pgUrl, pool: { max } },
      crm: { driver: 'mysql', uri: opts.mysqlUrl, pool: { max } },
    },
    recovery: { intervalMs: 0 },
    logger: pino({ level: 'silent' }),
  });
  return {
    transfer: async (from, to, amount) => {
      await coord.transaction(async (tx) => {
        await Promise.all([
          tx.query('erp', `update ${TABLE} set balance = balance - $1 where id = $2`, [amount, from]),
          tx.query('crm', `update ${TABLE} set balance = balance + ? where id = ?`, [amount, to]),
        ]);
      });
    },
    close: async () => {
      await coord.close();
      await rm(logDir, { recursive: true, force: true });
    },
  };
}

const CONTENDERS: Record<TransferCell['mode'], (opts: TransferBenchOptions, max: number) => Promise<Contender>> = {
  'local-commits': async (opts, max) => {
    const p = pools(opts, max);
    return { transfer: localCommits(p.pgPool, p.my), close: p.close };
  },
  'hand-2pc': async (opts, max) => {
    const p = pools(opts, max);
    return { transfer: handTwoPhase(p.pgPool, p.my), close: p.close };
  },
  'hand-2pc-seq': async (opts, max) => {
    const p = pools(opts, max);
    return { transfer: handTwoPhaseSequential(p.pgPool, p.my), close: p.close };
  },
  txcoord: (opts, max) => txcoordContender(opts, max),
  'txcoord-marker': (opts, max) => txcoordContender(opts, max, 'erp'),
};

/** Runs the baselines and txcoord at each concurrency against the same tables, in one process, interleaved. */
export async function runTransferBench(opts: TransferBenchOptions): Promise<TransferCell[]> {
  const rows = opts.rows ?? 10_000;
  const setup = pools(opts, 2);
  try {
    await setupTables(setup.pgPool, setup.my, rows);
  } finally {
    await setup.close();
  }
  const cells: TransferCell[] = [];
  const modes = Object.keys(CONTENDERS) as TransferCell['mode'][];
  for (const concurrency of opts.concurrencies) {
    const rounds = new Map<TransferCell['mode'], Omit<TransferCell, 'mode' | 'concurrency' | 'roundTps'>[]>();
    for (let round = 0; round < (opts.rounds ?? 3); round++) {
      // Modes alternate within each round, so drift in the machine's speed hits them all alike.
      for (const mode of modes) {
        const contender = await CONTENDERS[mode](opts, concurrency);
        try {
          await measure(contender.transfer, concurrency, Math.min(1, opts.seconds), rows); // warm-up: connections, plans
          const r = await measure(contender.transfer, concurrency, opts.seconds, rows);
          rounds.set(mode, [...(rounds.get(mode) ?? []), r]);
        } finally {
          await contender.close();
        }
      }
    }
    for (const mode of modes) {
      const measured = rounds.get(mode) ?? [];
      const sorted = [...measured].sort((a, b) => a.tps - b.tps);
      const median = sorted[Math.floor(sorted.length / 2)];
      if (median) cells.push({ mode, concurrency, ...median, roundTps: measured.map((r) => r.tps) });
    }
  }
  return cells;
}
