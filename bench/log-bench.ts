import { mkdir, mkdtemp, open, rm } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { pino } from 'pino';
import { fdatasyncFd, writeFully, writeFullySync } from '../log/file/durable-io.js';
import { openFileLog } from '../log/file/file-log.js';
import { encodeRecord } from '../log/file/record-framing.js';
import { APPEND_MAGIC } from '../log/file/segment-file.js';
import type { CommitRecord, LogRecord } from '../log/log-record.js';

/** Options of {@link runLogBench}. */
export interface LogBenchOptions {
  /** Scratch directory; one subdirectory per run is created and removed in it. */
  readonly dir: string;
  /** Concurrent appender counts to measure, e.g. [1, 16, 256]. */
  readonly appenders: readonly number[];
  /** Time budget of each measurement (each count is measured twice: group commit and baseline). */
  readonly seconds: number;
  /**
   * `decisions` (default): what a coordinator appends per transaction, a forced commit record
   * and, once phase two is done, an unforced end record that is not awaited, so the live set
   * holds what is in flight. `commits-only`: forced commit records that never end, so the
   * live set grows by every record (a log with that many transactions in doubt).
   */
  readonly workload?: 'decisions' | 'commits-only';
}

/** One line of the benchmark: forced appends per second with and without group commit. */
export interface LogBenchRow {
  readonly appenders: number;
  readonly workload: 'decisions' | 'commits-only';
  readonly groupCommitRps: number;
  readonly perRecordFsyncRps: number;
  /** groupCommitRps / perRecordFsyncRps. */
  readonly ratio: number;
}

/** Something forced appends can go to. */
interface Appendable {
  append(record: LogRecord, force: boolean): Promise<void>;
}

/**
 * The baseline: what a log without group commit does. Each forced append is one write and one
 * fdatasync of its own, an unforced one a write alone, serialized (an append-only file needs its
 * frames in order, and a record is only durable once its own fdatasync returns). Same framing
 * as the real log, so the difference measured is the batching alone.
 */
class PerRecordFsyncLog implements Appendable {
  private tail: Promise<void> = Promise.resolve();

  private constructor(private readonly fh: FileHandle) {}

  static async open(path: string): Promise<PerRecordFsyncLog> {
    const fh = await open(path, 'ax');
    await writeFully(fh, APPEND_MAGIC);
    await fdatasyncFd(fh.fd);
    return new PerRecordFsyncLog(fh);
  }

  append(record: LogRecord, force: boolean): Promise<void> {
    const frame = encodeRecord(record);
    // The same write and fdatasync calls as the real log's writer (see FileLog.writeBatch).
    const done = this.tail.then(async () => {
      writeFullySync(this.fh.fd, frame);
      if (force) await fdatasyncFd(this.fh.fd);
    });
    this.tail = done.catch(() => undefined);
    return done;
  }

  close(): Promise<void> {
    return this.tail.then(() => this.fh.close());
  }
}

/** Makes every gtrid unique across rounds: a real log never sees one transaction's commit twice. */
let nextGtrid = 0;

function benchRecord(appender: number, i: number): CommitRecord {
  return {
    type: 'commit',
    gtrid: `bench-${appender}-${i}-${nextGtrid++}`,
    branches: [
      { participant: 'orders', bqual: 'b1', localTxId: String(100_000 + i) },
      { participant: 'billing', bqual: 'b2', localTxId: String(200_000 + i) },
    ],
    decidedAt: Date.now(),
    coordinatorId: 'bench',
    host: 'bench-host',
    pid: process.pid,
    meta: { requestId: `req-${appender}-${i}` },
    startedAt: Date.now(),
  };
}

/**
 * Runs `appenders` loops of forced commit appends against `log` for `seconds`; with `ends`,
 * each durable commit is followed by its unforced, unawaited end record, as the coordinator
 * does after phase two.
 */
async function measure(log: Appendable, appenders: number, seconds: number, ends: boolean): Promise<{ count: number; elapsed: number }> {
  const started = performance.now();
  const deadline = started + seconds * 1000;
  let count = 0;
  // End records are not awaited (as in the coordinator), only counted, so the harness itself adds
  // no promise chain per record to what is measured.
  let unsettled = 0;
  let allSettled: (() => void) | undefined;
  const settled = (): void => {
    if (--unsettled === 0) allSettled?.();
  };
  const loop = async (a: number): Promise<void> => {
    for (let i = 0; performance.now() < deadline; i++) {
      const record = benchRecord(a, i);
      await log.append(record, true);
      count++;
      if (ends) {
        unsettled++;
        log.append({ type: 'end', gtrid: record.gtrid, at: Date.now(), status: 'committed' }, false).then(settled, settled);
      }
    }
  };
  await Promise.all(Array.from({ length: appenders }, (_, a) => loop(a)));
  const elapsed = (performance.now() - started) / 1000;
  if (unsettled > 0) await new Promise<void>((r) => (allSettled = r));
  return { count, elapsed };
}

/**
 * Measures forced-append throughput of the file decision log (group commit) against a
 * one-fdatasync-per-record baseline, for each concurrency in `opts.appenders`. Each appender
 * appends forced commit records in a loop until the time budget runs out (see
 * {@link LogBenchOptions.workload} for the end records).
 *
 * The two contenders alternate in short rounds (both get `seconds` in total) because fsync
 * latency on shared or virtual disks drifts by several times within seconds; back-to-back long
 * runs would mostly measure the drift. In the `decisions` workload the log rolls and compacts
 * its segments as it would in production. In `commits-only` it runs with a segment size large
 * enough that no compaction happens: nothing ever ends, so the live set grows without bound and
 * compaction would measure that pile-up rather than the append path.
 */
export async function runLogBench(opts: LogBenchOptions): Promise<LogBenchRow[]> {
  const rows: LogBenchRow[] = [];
  const logger = pino({ level: 'silent' });
  const workload = opts.workload ?? 'decisions';
  const ends = workload === 'decisions';
  const rounds = Math.max(1, Math.min(6, Math.round(opts.seconds * 2)));
  const slice = opts.seconds / rounds;
  for (const appenders of opts.appenders) {
    const runDir = join(opts.dir, `log-bench-${appenders}-${process.pid}-${Date.now()}`);
    await mkdir(runDir, { recursive: true });
    const group = { count: 0, elapsed: 0 };
    const base = { count: 0, elapsed: 0 };
    try {
      const log = await openFileLog({ type: 'file', dir: join(runDir, 'group'), ...(ends ? {} : { segmentBytes: 2 ** 40 }) }, { logger });
      const baseline = await PerRecordFsyncLog.open(join(runDir, 'baseline.log'));
      try {
        for (let r = 0; r < rounds; r++) {
          const g = await measure(log, appenders, slice, ends);
          const b = await measure(baseline, appenders, slice, ends);
          group.count += g.count;
          group.elapsed += g.elapsed;
          base.count += b.count;
          base.elapsed += b.elapsed;
        }
      } finally {
        await log.close();
        await baseline.close();
      }
    } finally {
      await rm(runDir, { recursive: true, force: true });
    }
    const groupCommitRps = group.count / group.elapsed;
    const perRecordFsyncRps = base.count / base.elapsed;
    rows.push({ appenders, workload, groupCommitRps, perRecordFsyncRps, ratio: groupCommitRps / perRecordFsyncRps });
  }
  return rows;
}

/** Formats rows as a fixed-width table. */
export function formatLogBench(rows: readonly LogBenchRow[]): string {
  const head = ['workload', 'appenders', 'group commit/s', 'per-record fsync/s', 'ratio'];
  const body = rows.map((r) => [
    r.workload,
    String(r.appenders),
    r.groupCommitRps.toFixed(0),
    r.perRecordFsyncRps.toFixed(0),
    `${r.ratio.toFixed(1)}x`,
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((row) => row[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => c.padStart(widths[i]!)).join('  ');
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...body.map(line)].join('\n');
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const arg = (name: string): string | undefined => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const seconds = Number(arg('--seconds') ?? 3);
  if (!(seconds > 0)) throw new Error('--seconds must be a positive number');
  const appenders = (arg('--appenders') ?? '1,16,256').split(',').map(Number);
  const given = arg('--dir');
  const dir = given ? resolve(given) : await mkdtemp(join(tmpdir(), 'txcoord-log-bench-'));
  try {
    const workloads = (arg('--workload') ?? 'decisions,commits-only').split(',');
    const rows: LogBenchRow[] = [];
    for (const w of workloads) {
      if (w !== 'decisions' && w !== 'commits-only') throw new Error('--workload takes decisions, commits-only or both, comma-separated');
      rows.push(...(await runLogBench({ dir, appenders, seconds, workload: w })));
    }
    process.stdout.write(`decision log: forced appends per second (${seconds}s each, in ${dir})\n`);
    process.stdout.write(`${formatLogBench(rows)}\n`);
  } finally {
    if (!given) await rm(dir, { recursive: true, force: true });
  }
}

// Runs only when executed directly (`node dist/bench/log-bench.js`), not when imported.
if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  main().catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  });
}
