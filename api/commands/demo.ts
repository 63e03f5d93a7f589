import { join } from 'node:path';
import { TxcError } from '../../coordinator/errors.js';
import { runDemo as runDemoSteps } from '../demo/run-demo.js';
import type { ExitCode } from '../exit-codes.js';
import type { CliIO } from '../output.js';

function positiveInt(value: string, flag: string, max: number): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > max) throw new TxcError('TXC_USAGE', `${flag} must be an integer from 1 to ${max} (got ${JSON.stringify(value)})`);
  return n;
}

/** `txcoord demo [--dir D] [--transfers N] [--seed S]`; the data goes to `./.txcoord-demo` unless `--dir` says otherwise. */
export function runDemo(options: { dir?: string; transfers: string; seed: string }, io: CliIO): Promise<ExitCode> {
  return runDemoSteps(
    {
      dir: options.dir ?? join(process.cwd(), '.txcoord-demo'),
      transfers: positiveInt(options.transfers, '--transfers', 10_000),
      seed: positiveInt(options.seed, '--seed', 2 ** 31 - 1),
    },
    io,
  );
}
