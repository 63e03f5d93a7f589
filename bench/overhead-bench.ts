import { pathToFileURL } from 'node:url';
import { resolve } from 'node:path';
import { pino } from 'pino';
import { createCoordinator } from '../coordinator/create-coordinator.js';
import { branchXid, newGtrid, type Xid } from '../coordinator/xid.js';
import type { Branch, Capabilities, Participant, PrepareResult, QueryResult, ResolveResult } from '../participants/participant.js';

/**
 * The coordinator's own cost, with the databases taken out: two participants that answer every
 * call at once, a transaction that writes to both (2PC), and a hand-written 2PC over the same
 * participants as the baseline. Node CPU per transaction is what the coordinator adds on top of
 * whatever the drivers and databases cost; the transfer benchmark shows that total.
 */

class InstantBranch implements Branch {
  private wrote = false;
  constructor(readonly xid: Xid) {}
  async query(): Promise<QueryResult> {
    this.wrote = true;
    return { rows: [], rowCount: 1 };
  }
  async hasWritten(): Promise<boolean> {
    return this.wrote;
  }
  async prepare(): Promise<PrepareResult> {
    return { localTxId: '1' };
  }
  async commitPrepared(): Promise<ResolveResult> {
    return 'done';
  }
  async commitOnePhase(): Promise<void> {}
  async rollback(): Promise<void> {}
  release(): void {}
}

class InstantParticipant implements Participant {
  readonly driver = 'instant';
  readonly capabilities: Capabilities = { twoPhase: true, localTransactions: true };
  constructor(readonly name: string) {}
  async preflight(): Promise<void> {}
  async begin(xid: Xid): Promise<Branch> {
    return new InstantBranch(xid);
  }
  async listInDoubt(): Promise<Xid[]> {
    return [];
  }
  async commitPrepared(): Promise<ResolveResult> {
    return 'done';
  }
  async rollbackPrepared(): Promise<ResolveResult> {
    return 'done';
  }
  async close(): Promise<void> {}
}

/** One line of the benchmark. */
export interface OverheadRow {
  readonly mode: 'hand-2pc' | 'txcoord';
  readonly tps: number;
  /** Node CPU (user + system) per transaction, µs: the median round. */
  readonly cpuUsPerTx: number;
}

async function measure(transfer: () => Promise<unknown>, concurrency: number, seconds: number): Promise<{ tps: number; cpuUsPerTx: number }> {
  let n = 0;
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const deadline = t0 + seconds * 1000;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < deadline) {
        await transfer();
        n++;
      }
    }),
  );
  const cpu = process.cpuUsage(c0);
  return { tps: n / ((performance.now() - t0) / 1000), cpuUsPerTx: (cpu.user + cpu.system) / n };
}

/** Hand-written 2PC over the instant participants: the same calls, with no coordinator around them. */
function handTwoPhase(a: Participant, b: Participant): () => Promise<void> {
  return async () => {
    const gtrid = newGtrid('bench');
    const [x, y] = await Promise.all([a.begin(branchXid(gtrid, 0)), b.begin(branchXid(gtrid, 1))]);
    await Promise.all([x.query('update a'), y.query('update b')]);
    await Promise.all([x.prepare(), y.prepare()]);
    await Promise.all([x.commitPrepared(), y.commitPrepared()]);
    x.release();
    y.release();
  };
}

/**
 * Runs both modes in alternating rounds at `concurrency` and reports each mode's median round.
 * txcoord runs with its in-memory log, so no fsync is measured either.
 */
export async function runOverheadBench(opts: { concurrency: number; seconds: number; rounds: number }): Promise<OverheadRow[]> {
  const a = new InstantParticipant('a');
  const b = new InstantParticipant('b');
  const coord = await createCoordinator({
    id: 'overhead',
    log: { type: 'memory' },
    participants: { a: { driver: 'custom', adapter: a }, b: { driver: 'custom', adapter: b } },
    recovery: { onStart: false, intervalMs: 0 },
    logger: pino({ level: 'silent' }),
  });
  const modes: Record<OverheadRow['mode'], () => Promise<unknown>> = {
    'hand-2pc': handTwoPhase(a, b),
    txcoord: () =>
      coord.transaction(async (tx) => {
        await Promise.all([tx.query('a', 'update a'), tx.query('b', 'update b')]);
      }),
  };
  const results = new Map<OverheadRow['mode'], Array<{ tps: number; cpuUsPerTx: number }>>();
  try {
    for (const run of Object.values(modes)) await measure(run, opts.concurrency, 0.5); // warm-up
    for (let r = 0; r < opts.rounds; r++) {
      for (const [mode, run] of Object.entries(modes) as Array<[OverheadRow['mode'], () => Promise<unknown>]>) {
        results.set(mode, [...(results.get(mode) ?? []), await measure(run, opts.concurrency, opts.seconds)]);
      }
    }
  } finally {
    await coord.close();
  }
  return [...results].map(([mode, rounds]) => {
    const sorted = [...rounds].sort((x, y) => x.cpuUsPerTx - y.cpuUsPerTx);
    const median = sorted[Math.floor(sorted.length / 2)]!;
    return { mode, ...median };
  });
}

/** Formats rows as a Markdown table, with txcoord's CPU per transaction over the baseline's. */
export function formatOverheadBench(rows: readonly OverheadRow[]): string {
  const base = rows.find((r) => r.mode === 'hand-2pc')?.cpuUsPerTx ?? NaN;
  const lines = ['| mode | tps | Node CPU per transaction | × hand-2pc |', '|---|---:|---:|---:|'];
  for (const r of rows) lines.push(`| ${r.mode} | ${r.tps.toFixed(0)} | ${r.cpuUsPerTx.toFixed(1)} µs | ${(r.cpuUsPerTx / base).toFixed(1)}× |`);
  return lines.join('\n');
}

// Runs only when executed directly (`node dist/bench/overhead-bench.js`), not when imported.
if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const seconds = Number(process.env['BENCH_SECONDS'] ?? 2);
  runOverheadBench({ concurrency: 16, seconds, rounds: 3 })
    .then((rows) => process.stdout.write(`${formatOverheadBench(rows)}\n`))
    .catch((err: unknown) => {
      process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exitCode = 1;
    });
}
