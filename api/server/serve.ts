import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import type { DestinationStream } from 'pino';
import { loadConfigFile, substituteEnv, validateConfig } from '../../coordinator/config.js';
import { createCoordinator } from '../../coordinator/create-coordinator.js';
import { TxcError } from '../../coordinator/errors.js';
import type { ApiConfig, Coordinator, CoordinatorConfig } from '../../coordinator/types.js';
import { buildServer } from './build-server.js';
import { createServerLogger } from './server-logger.js';
import { StatementCatalog } from './statement-catalog.js';

/** Overrides for {@link serve}; the config file gives everything else. */
export interface ServeOptions {
  /** For `${ENV}` substitution and TXCOORD_LOG_LEVEL. Default process.env. */
  readonly env?: NodeJS.ProcessEnv;
  /** Overrides `api.host`. */
  readonly host?: string;
  /** Overrides `api.port` (0: any free port). */
  readonly port?: number;
  /** Where log lines go. Default stderr. */
  readonly logDestination?: DestinationStream;
}

/** A listening service. */
export interface RunningServer {
  /** `http://host:port` it listens on. */
  readonly url: string;
  readonly app: FastifyInstance;
  readonly coord: Coordinator;
  /** Stops accepting requests, lets the running ones finish, then closes the coordinator (waiting up to `timeoutMs` for its work). */
  close(options?: { timeoutMs?: number }): Promise<void>;
}

/**
 * The config with `${ENV}` substituted in the keys of `api.tokens` too: loadConfigFile only
 * substitutes values, and a token is a key. Until it does, this keeps "${TXCOORD_TOKEN}" from
 * being taken as the literal token.
 */
function withTokenKeysSubstituted(config: CoordinatorConfig, env: NodeJS.ProcessEnv): CoordinatorConfig {
  const api = config.api;
  if (!api || !Object.keys(api.tokens).some((t) => t.includes('${'))) return config;
  const tokens = Object.fromEntries(Object.entries(api.tokens).map(([t, role]) => [substituteEnv(t, env, 'api.tokens') as string, role])) as ApiConfig['tokens'];
  return validateConfig({ ...config, api: { ...api, tokens } }, { allowCustom: false });
}

/**
 * `txcoord serve`: loads `configFile` (which must have `api`), starts the coordinator with its
 * configured recovery (on start and on a timer, unlike the one-shot CLI commands), and listens.
 * Named statements are compiled before the coordinator starts, so a statement the driver cannot
 * take stops the start before any recovery runs.
 */
export async function serve(configFile: string, options: ServeOptions = {}): Promise<RunningServer> {
  const env = options.env ?? process.env;
  const config = withTokenKeysSubstituted(await loadConfigFile(configFile, env), env);
  if (!config.api) {
    throw new TxcError('TXC_CONFIG_INVALID', 'Config field `api` is required by `txcoord serve`, such as { "port": 7070, "tokens": { "${TXCOORD_TOKEN}": "client" } }', {
      details: { field: 'api' },
    });
  }
  StatementCatalog.fromConfig(config.participants);
  const logger = createServerLogger({
    level: env['TXCOORD_LOG_LEVEL'] ?? config.logLevel ?? 'info',
    secrets: Object.keys(config.api.tokens),
    ...(options.logDestination ? { destination: options.logDestination } : {}),
  });
  const coord = await createCoordinator({ ...config, logger });
  const host = options.host ?? config.api.host ?? '127.0.0.1';
  const port = options.port ?? config.api.port ?? 7070;
  let app: FastifyInstance | undefined;
  try {
    app = await buildServer({ coord, config, logger });
    try {
      await app.listen({ host, port });
    } catch (cause) {
      const reason = (cause as NodeJS.ErrnoException).code === 'EADDRINUSE' ? 'the address is in use' : ((cause as Error).message ?? 'unknown error');
      throw new TxcError('TXC_CONFIG_INVALID', `Cannot listen on ${host}:${port}: ${reason}; change \`api.host\` / \`api.port\``, { cause, details: { field: 'api.port' } });
    }
  } catch (err) {
    await app?.close().catch(() => undefined);
    await coord.close({ timeoutMs: 5_000 });
    throw err;
  }
  const address = app.server.address() as AddressInfo;
  const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `http://${shownHost}:${address.port}`;
  logger.info({ url, coordinator: coord.id }, 'txcoord serve listening');
  const server = app;
  return {
    url,
    app: server,
    coord,
    async close({ timeoutMs = 10_000 } = {}) {
      await server.close();
      await coord.close({ timeoutMs });
      logger.info({ coordinator: coord.id }, 'txcoord serve stopped');
    },
  };
}
