import { TxcError } from '../../coordinator/errors.js';
import { EXIT, type ExitCode } from '../exit-codes.js';
import type { CliIO } from '../output.js';
import { serve } from './serve.js';

/** Options of `txcoord serve` as commander hands them over (strings). */
export interface ServeCommandOptions {
  readonly config: string;
  /** Overrides `api.host`. */
  readonly host?: string;
  /** Overrides `api.port`. */
  readonly port?: string;
}

/** How long a graceful stop may take before the command gives up on it (exit 1). */
const STOP_TIMEOUT_MS = 15_000;

function parsePort(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!/^[0-9]+$/.test(value) || n > 65_535) throw new TxcError('TXC_USAGE', `--port must be a port number from 0 to 65535 (got ${JSON.stringify(value)})`);
  return n;
}

/** Resolves with the name of the first of `signals` the process receives; `dispose` removes the listeners. */
function onSignal(signals: readonly NodeJS.Signals[]): { received: Promise<NodeJS.Signals>; dispose: () => void } {
  let dispose = () => undefined as void;
  const received = new Promise<NodeJS.Signals>((resolve) => {
    const handler = (s: NodeJS.Signals) => resolve(s);
    for (const s of signals) process.once(s, handler);
    dispose = () => {
      for (const s of signals) process.removeListener(s, handler);
    };
  });
  return { received, dispose };
}

/**
 * `txcoord serve --config F [--host H] [--port P]`: runs the HTTP coordinator service until
 * SIGINT or SIGTERM (or until `stop` settles, for tests), then stops gracefully: no new
 * requests, running ones finish, the coordinator waits for its in-flight work. A second signal,
 * or a stop longer than 15 s, ends it at once with exit 1 (recovery finishes the rest on the next start).
 */
export async function runServe(options: ServeCommandOptions, io: CliIO, stop?: Promise<unknown>): Promise<ExitCode> {
  const port = parsePort(options.port);
  const first = onSignal(['SIGINT', 'SIGTERM']);
  try {
    const running = await serve(options.config, { env: io.env, ...(options.host !== undefined ? { host: options.host } : {}), ...(port !== undefined ? { port } : {}) });
    io.err(`txcoord: coordinator '${running.coord.id}' serving on ${running.url} (Ctrl-C to stop)\n`);
    await Promise.race([first.received, ...(stop ? [stop.then(() => undefined, () => undefined)] : [])]);
    first.dispose();
    io.err('txcoord: stopping: finishing running requests and transactions\n');
    const second = onSignal(['SIGINT', 'SIGTERM']);
    let timer: NodeJS.Timeout | undefined;
    const outcome = await Promise.race([
      running.close().then(() => 'stopped' as const),
      second.received.then(() => 'interrupted' as const),
      new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), STOP_TIMEOUT_MS))),
    ]);
    clearTimeout(timer);
    second.dispose();
    if (outcome === 'stopped') return EXIT.OK;
    io.err(`txcoord: ${outcome === 'timeout' ? 'stop timed out' : 'stopped at once on a second signal'}; recovery finishes any unfinished transaction on the next start\n`);
    return EXIT.ATTENTION;
  } finally {
    first.dispose();
  }
}
