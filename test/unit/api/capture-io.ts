import type { CliIO } from '../../../api/output.js';

/** A CliIO that records what a command writes. */
export interface CapturedIO extends CliIO {
  readonly stdout: string[];
  readonly stderr: string[];
}

/** Builds a capturing CliIO; `isTTY` and `env` as given. */
export function captureIO({ isTTY = false, env = {} }: { isTTY?: boolean; env?: NodeJS.ProcessEnv } = {}): CapturedIO {
  const stdout: string[] = [];
  const stderr: string[] = [];
  return { stdout, stderr, isTTY, env, out: (t) => void stdout.push(t), err: (t) => void stderr.push(t) };
}
