import { loadConfigFile } from '../coordinator/config.js';
import { createCoordinator } from '../coordinator/create-coordinator.js';
import { createDefaultLogger } from '../coordinator/logger.js';
import type { Coordinator } from '../coordinator/types.js';
import type { CliIO } from './output.js';

/**
 * Loads a config file and creates a coordinator that only does what the command asks: no
 * recovery on start and no background timer, so `in-doubt` changes nothing and `recover` runs
 * exactly one pass.
 *
 * The library's own log lines go to stderr at `error` level unless TXCOORD_LOG_LEVEL or the
 * config's `logLevel` says otherwise: the command reports failures itself, and a terminal full
 * of JSON warnings would bury that report.
 */
export async function openCoordinator(configFile: string, io: CliIO): Promise<Coordinator> {
  const config = await loadConfigFile(configFile, io.env);
  const logger = createDefaultLogger(io.env['TXCOORD_LOG_LEVEL'] ?? config.logLevel ?? 'error');
  return createCoordinator({ ...config, recovery: { onStart: false, intervalMs: 0 }, logger });
}

/** Runs `fn` with a coordinator from `configFile` and always closes it, even when `fn` throws. */
export async function withCoordinator<T>(configFile: string, io: CliIO, fn: (coord: Coordinator) => Promise<T>): Promise<T> {
  const coord = await openCoordinator(configFile, io);
  try {
    return await fn(coord);
  } finally {
    await coord.close({ timeoutMs: 5_000 });
  }
}
