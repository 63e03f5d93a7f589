import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { TransferPlan } from './bank.js';

/** How the worker process ended, and what it said on the way. */
export interface WorkerDeath {
  readonly pid: number | undefined;
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  /** Its stderr (library errors), for the report when it did not die as planned. */
  readonly stderr: string;
}

/** Worker start-up opens two PGlite databases; a minute is far beyond that and still ends a stuck run. */
const WORKER_TIMEOUT_MS = 60_000;

/**
 * Runs the demo worker (the `.js` or `.ts` sibling of this module, whichever is running) on `dir`
 * with one transfer, passing each line it prints to `onLine` as it arrives, and resolves when the
 * process is gone. A worker still alive after the timeout is killed and reported as such.
 */
export function runWorker(dir: string, plan: TransferPlan, onLine: (line: string, pid: number | undefined) => void): Promise<WorkerDeath> {
  const ext = import.meta.url.endsWith('.ts') ? 'ts' : 'js';
  const script = fileURLToPath(new URL(`./demo-worker.${ext}`, import.meta.url));
  // Keep loader flags (running from source) but not the inspector, whose port the parent already holds.
  const execArgv = process.execArgv.filter((a) => !a.startsWith('--inspect'));
  const child = spawn(process.execPath, [...execArgv, script, dir, JSON.stringify(plan)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let pending = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    pending += chunk;
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) onLine(line, child.pid);
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const timer = setTimeout(() => child.kill('SIGTERM'), WORKER_TIMEOUT_MS);
  return new Promise((resolve, reject) => {
    child.on('error', (err) => (clearTimeout(timer), reject(err)));
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (pending) onLine(pending, child.pid);
      resolve({ pid: child.pid, code, signal, stderr });
    });
  });
}
