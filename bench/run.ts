import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { runLogBench } from './log-bench.js';
import { formatOverheadBench, runOverheadBench } from './overhead-bench.js';
import { runTransferBench, type TransferCell } from './transfer-bench.js';

/**
 * `npm run bench`: the transfer benchmark (two local commits vs hand-written 2PC vs txcoord, with
 * the decision in its log or as a commit marker in PostgreSQL), the coordinator's own CPU per
 * transaction (participants that answer at once) and the log micro-benchmark, as ratios against
 * baselines measured in the same run.
 * Environment: TXCOORD_PG_URL, TXCOORD_MYSQL_URL, BENCH_SECONDS (per round, default 4),
 * BENCH_ROUNDS (interleaved rounds per cell, median reported; default 3), BENCH_CONCURRENCY
 * (comma-separated; default 1,16,64).
 */
async function main(): Promise<void> {
  const seconds = Number(process.env['BENCH_SECONDS'] ?? 4);
  const rounds = Number(process.env['BENCH_ROUNDS'] ?? 3);
  const pgUrl = process.env['TXCOORD_PG_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test';
  const mysqlUrl = process.env['TXCOORD_MYSQL_URL'] ?? 'mysql://root@127.0.0.1:3306/test';
  const out = (s = '') => process.stdout.write(`${s}\n`);
  out(`# txcoord benchmark — ${new Date().toISOString()}`);
  out(`machine: ${cpus().length} x ${cpus()[0]?.model ?? '?'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}; median of ${rounds} interleaved rounds of ${seconds} s per cell`);
  out();
  out('## Atomic transfer: debit PostgreSQL, credit MariaDB');
  const concurrencies = (process.env['BENCH_CONCURRENCY'] ?? '1,16,64').split(',').map(Number);
  const cells = await runTransferBench({ pgUrl, mysqlUrl, concurrencies, seconds, rounds });
  out('| concurrency | mode | tps | p50 ms | p99 ms | errors |');
  out('|---:|---|---:|---:|---:|---:|');
  for (const c of cells) {
    const codes = Object.entries(c.errorCodes).map(([k, v]) => `${k}×${v}`).join(' ');
    out(`| ${c.concurrency} | ${c.mode} | ${c.tps.toFixed(0)} | ${c.p50Ms.toFixed(2)} | ${c.p99Ms.toFixed(2)} | ${c.errors}${codes ? ` (${codes})` : ''} |`);
  }
  out();
  out('| concurrency | txcoord / hand-2pc | txcoord-marker / hand-2pc | txcoord-marker / txcoord | txcoord / hand-2pc-seq | txcoord / local-commits | hand-2pc / local-commits |');
  out('|---:|---:|---:|---:|---:|---:|---:|');
  const tps = (conc: number, mode: TransferCell['mode']) => cells.find((c) => c.concurrency === conc && c.mode === mode)?.tps ?? NaN;
  for (const conc of concurrencies) {
    const [a, b, bs, c, m] = [tps(conc, 'local-commits'), tps(conc, 'hand-2pc'), tps(conc, 'hand-2pc-seq'), tps(conc, 'txcoord'), tps(conc, 'txcoord-marker')];
    out(`| ${conc} | ${(c / b).toFixed(2)} | ${(m / b).toFixed(2)} | ${(m / c).toFixed(2)} | ${(c / bs).toFixed(2)} | ${(c / a).toFixed(2)} | ${(b / a).toFixed(2)} |`);
  }
  out();
  // Each round measures every mode back to back, so a ratio within one round is not skewed by the
  // machine drifting between rounds; their spread shows how much one run can be trusted.
  out('| concurrency | txcoord / hand-2pc per round | median | min–max |');
  out('|---:|---|---:|---:|');
  for (const conc of concurrencies) {
    const c = cells.find((x) => x.concurrency === conc && x.mode === 'txcoord')?.roundTps ?? [];
    const b = cells.find((x) => x.concurrency === conc && x.mode === 'hand-2pc')?.roundTps ?? [];
    const perRound = c.map((t, i) => t / (b[i] ?? NaN)).filter(Number.isFinite);
    const sorted = [...perRound].sort((x, y) => x - y);
    const median = sorted[Math.floor(sorted.length / 2)] ?? NaN;
    out(`| ${conc} | ${perRound.map((r) => r.toFixed(2)).join(', ')} | ${median.toFixed(2)} | ${(sorted[0] ?? NaN).toFixed(2)}–${(sorted.at(-1) ?? NaN).toFixed(2)} |`);
  }
  out();
  out('## The coordinator alone: participants that answer at once, concurrency 16, in-memory log');
  out(formatOverheadBench(await runOverheadBench({ concurrency: 16, seconds: Math.min(seconds, 2), rounds: 3 })));
  out();
  out('## Decision log: group commit vs one fdatasync per record (forced commit records/s)');
  out('decisions: each forced commit followed by its unforced end record, as the coordinator writes them;');
  out('commits-only: forced commits that never end, so every record stays in the live set.');
  const dir = await mkdtemp(join(tmpdir(), 'txc-logbench-'));
  try {
    out('| workload | appenders | group commit rec/s | fsync per record rec/s | ratio |');
    out('|---|---:|---:|---:|---:|');
    for (const workload of ['decisions', 'commits-only'] as const) {
      const rows = await runLogBench({ dir, appenders: [1, 16, 256], seconds: Math.min(seconds, 3), workload });
      for (const r of rows) out(`| ${workload} | ${r.appenders} | ${r.groupCommitRps.toFixed(0)} | ${r.perRecordFsyncRps.toFixed(0)} | ${r.ratio.toFixed(1)}x |`);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
