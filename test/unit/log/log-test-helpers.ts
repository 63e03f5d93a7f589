import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino, type Logger } from 'pino';
import type { CommitRecord, EndRecord, HeuristicRecord } from '../../../log/log-record.js';

/** A commit record for `gtrid`. */
export function commit(gtrid: string, n = 1): CommitRecord {
  return {
    type: 'commit',
    gtrid,
    branches: Array.from({ length: n }, (_, i) => ({ participant: `p${i}`, bqual: `b${i}`, localTxId: `${1000 + i}` })),
    decidedAt: 1_700_000_000_000,
    coordinatorId: 'c1',
    host: 'test-host',
    pid: 4242,
    startedAt: 1_699_999_999_000,
  };
}

/** An end record for `gtrid`. */
export function end(gtrid: string): EndRecord {
  return { type: 'end', gtrid, at: 1_700_000_000_500 };
}

/** A heuristic record for `gtrid`. */
export function heuristic(gtrid: string): HeuristicRecord {
  return { type: 'heuristic', gtrid, participant: 'p0', bqual: 'b0', expected: 'commit', actual: 'rolled-back', at: 7 };
}

/** A logger that keeps parsed lines in memory, so tests can assert warnings. */
export function captureLogger(): { logger: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const logger = pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) });
  return { logger, lines };
}

/** A logger that prints nothing. */
export const silent: Logger = pino({ level: 'silent' });

/** Creates a fresh temp dir and returns it with a cleanup function. */
export async function tempDir(prefix = 'txclog-'): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** Names of the files in `dir`, sorted. */
export async function listFiles(dir: string): Promise<string[]> {
  return (await readdir(dir)).sort();
}

/** Total size of the segment files in `dir`. */
export async function segmentBytes(dir: string): Promise<number> {
  let total = 0;
  for (const f of await readdir(dir)) if (f.startsWith('seg-')) total += (await stat(join(dir, f))).size;
  return total;
}

/** A fsync replacement that counts calls and can be made to fail. */
export function countingSync(real?: (fd: number) => Promise<void>): {
  fsync: (fd: number) => Promise<void>;
  calls: () => number;
  failNext: (code: string, times?: number) => void;
} {
  let calls = 0;
  let failures: { code: string; left: number } | undefined;
  return {
    calls: () => calls,
    failNext: (code, times = 1) => {
      failures = { code, left: times };
    },
    fsync: async (fd) => {
      calls++;
      if (failures && failures.left > 0) {
        failures.left--;
        const err = new Error(`${failures.code}: simulated`) as NodeJS.ErrnoException;
        err.code = failures.code;
        throw err;
      }
      if (real) await real(fd);
    },
  };
}
