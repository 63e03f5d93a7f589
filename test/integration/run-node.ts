import { spawn } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The package root (this file is test/integration/run-node.ts). */
export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/** The built CLI, as users run it. */
export const CLI = join(ROOT, 'dist/api/cli.js');

/** How a spawned process ended. */
export interface NodeRun {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly ms: number;
}

/**
 * Runs `node script ...args` to completion and collects its output. A process still running
 * after `timeoutMs` is killed (SIGKILL) and reported with `signal: 'SIGKILL'` and a note on stderr.
 */
export function runNode(
  script: string,
  args: readonly string[],
  { env = process.env, cwd = ROOT, timeoutMs = 30_000 }: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number } = {},
): Promise<NodeRun> {
  const started = Date.now();
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [script, ...args], { env, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('error', (err) => (clearTimeout(timer), reject(err)));
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (timedOut) stderr += `\n[run-node] killed after ${timeoutMs} ms timeout`;
      resolvePromise({ code, signal, stdout, stderr, ms: Date.now() - started });
    });
  });
}

/** Runs the built CLI. */
export function runCli(args: readonly string[], options?: Parameters<typeof runNode>[2]): Promise<NodeRun> {
  return runNode(CLI, args, options);
}
