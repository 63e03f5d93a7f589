import { packageVersion } from '../package-version.js';
import swagger from '@fastify/swagger';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { validateConfig } from '../../coordinator/config.js';
import { TxcError } from '../../coordinator/errors.js';
import type { Coordinator, CoordinatorConfig } from '../../coordinator/types.js';
import { checkJsonDepth } from './check-json-depth.js';
import { InDoubtScanner } from './in-doubt-scanner.js';
import { createLogProbe, type LogProbe } from './log-probe.js';
import type { RouteDeps } from './route-deps.js';
import { docsRoute } from './routes/docs-route.js';
import { healthRoutes } from './routes/health-routes.js';
import { inDoubtRoutes } from './routes/in-doubt-routes.js';
import { metricsRoute } from './routes/metrics-route.js';
import { sagaRoutes } from './routes/saga-routes.js';
import { transactionRoutes } from './routes/transaction-routes.js';
import { createScrubber } from './scrubber.js';
import { serverLogger } from './server-logger.js';
import { createServerMetrics } from './server-metrics.js';
import { StatementCatalog } from './statement-catalog.js';
import { bearerToken, createTokenVerifier } from './token-verifier.js';
import { notFoundRoute, toWireError, type WireErrorAnswer } from './wire-error.js';

/** Default largest request body: 1 MiB. */
export const DEFAULT_BODY_LIMIT = 1_048_576;

/** What {@link buildServer} needs. */
export interface BuildServerOptions {
  /** The coordinator the routes drive (the server does not close it). */
  readonly coord: Coordinator;
  /** Its configuration: `api` (tokens, body limit), participants (kinds, named statements), log (readiness). */
  readonly config: CoordinatorConfig;
  /** Parent logger; the server logs through a scrubbing child of it. */
  readonly logger: Logger;
  /** How readiness checks the decision log. Default: from `config.log` (see createLogProbe). */
  readonly logProbe?: LogProbe;
  /** Export Node process metrics on /metrics. Default true. */
  readonly processMetrics?: boolean;
}


const API_DESCRIPTION = `The HTTP API of \`txcoord serve\`. Every route except /healthz and /readyz needs \`Authorization: Bearer <token>\` with a token from the server config \`api.tokens\`; /v1/in-doubt routes need an admin token. Every error answer is { "error": { "code": "TXC_...", "message": "...", "details": {...} } }.`;

/**
 * Builds the HTTP coordinator service over `coord`, ready for `listen` (or `inject` in tests).
 * Fails with TXC_CONFIG_INVALID when `config.api` is missing or a named statement cannot be
 * compiled for its driver.
 */
export async function buildServer(options: BuildServerOptions): Promise<FastifyInstance> {
  const config = validateConfig(options.config);
  const api = config.api;
  if (!api) {
    throw new TxcError('TXC_CONFIG_INVALID', 'Config field `api` is required to serve HTTP, such as { "port": 7070, "tokens": { "${TXCOORD_TOKEN}": "client" } }', {
      details: { field: 'api' },
    });
  }
  const { coord } = options;
  const secrets = Object.keys(api.tokens);
  // An unsubstituted placeholder would be a token anyone can read in the config file.
  if (secrets.some((t) => /\$\{[A-Za-z_][A-Za-z0-9_]*\}/.test(t))) {
    throw new TxcError('TXC_CONFIG_INVALID', 'Config field `api.tokens` has a token that is still a ${NAME} placeholder: set the environment variable (serve substitutes it)', {
      details: { field: 'api.tokens' },
    });
  }
  const scrubber = createScrubber(secrets);
  const logger = serverLogger(options.logger, secrets);
  const bodyLimit = api.bodyLimitBytes ?? DEFAULT_BODY_LIMIT;
  const catalog = StatementCatalog.fromConfig(config.participants);
  const verifier = createTokenVerifier(api.tokens);
  const scanner = new InDoubtScanner(coord);
  const metrics = createServerMetrics(coord, scanner, { processMetrics: options.processMetrics !== false });
  const deps: RouteDeps = { coord, catalog, scanner, metrics, logProbe: options.logProbe ?? createLogProbe(config.log), logger, scrub: scrubber.text };

  const sendError = (err: unknown, req: FastifyRequest, reply: FastifyReply, known?: WireErrorAnswer) => {
    const answer = known ?? toWireError(err, { bodyLimit, scrub: scrubber.text, requestId: String(req.id) });
    const { code } = answer.body.error;
    if (answer.level === 'error') req.log.error({ err, code, status: answer.status }, 'request failed');
    else req.log.info({ code, status: answer.status, field: answer.body.error.details?.['field'] }, 'request refused');
    return reply.code(answer.status).headers(answer.headers).send(answer.body);
  };

  // Typed as Fastify's logger interface so the instance is the plain FastifyInstance route modules take.
  const loggerInstance: FastifyBaseLogger = logger;
  const app = Fastify({
    loggerInstance,
    bodyLimit,
    onProtoPoisoning: 'error',
    onConstructorPoisoning: 'error',
    // Time to receive a whole request: a client trickling bytes must not hold a socket forever.
    requestTimeout: 30_000,
    // An xid parameter is up to 117 characters; find-my-way's default cut-off is 100.
    routerOptions: { maxParamLength: 256 },
    // Refuse, never repair: Fastify's defaults would drop unknown fields and coerce "5" to 5.
    ajv: { customOptions: { allowUnionTypes: true, removeAdditional: false, coerceTypes: false, useDefaults: false, allErrors: false, verbose: true } },
    frameworkErrors: (err, req, reply) => void sendError(err, req, reply),
  });
  // Only JSON is spoken: any other Content-Type is a 415, not a string handed to a schema.
  app.removeContentTypeParser('text/plain');

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'txcoord', version: packageVersion(), description: API_DESCRIPTION },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
      tags: [
        { name: 'sagas', description: 'Sagas over services and named statements' },
        { name: 'transactions', description: 'Client-driven two-phase commit, and named statements run as one transaction' },
        { name: 'admin', description: 'In-doubt branches (admin token)' },
        { name: 'health', description: 'Probes and metrics' },
      ],
    },
  });

  app.addHook('onRequest', async (req) => {
    const access = req.routeOptions.config?.access ?? 'client';
    if (access === 'public') return;
    const token = bearerToken(req.headers.authorization);
    const role = token === undefined ? undefined : verifier.roleOf(token);
    // No hint of why (absent, malformed, unknown): a caller guessing tokens learns nothing.
    if (role === undefined) throw new TxcError('TXC_UNAUTHORIZED');
    if (access === 'admin' && role !== 'admin') throw new TxcError('TXC_FORBIDDEN', `${req.method} ${req.routeOptions.url ?? ''} needs an admin token`);
  });
  app.addHook('preValidation', async (req) => {
    if (req.body === undefined && req.routeOptions.config?.optionalBody) req.body = {};
    checkJsonDepth(req.body);
  });
  app.addHook('onResponse', async (req, reply) => {
    const route = req.is404 ? 'unmatched' : (req.routeOptions.url ?? 'unmatched');
    metrics.observeRequest(req.method, route, reply.statusCode, reply.elapsedTime / 1000);
  });
  app.setErrorHandler((err, req, reply) => sendError(err, req, reply));
  app.setNotFoundHandler((req, reply) => sendError(undefined, req, reply, notFoundRoute()));

  healthRoutes(app, deps);
  metricsRoute(app, deps);
  docsRoute(app);
  sagaRoutes(app, deps);
  transactionRoutes(app, deps);
  inDoubtRoutes(app, deps);

  await app.ready();
  return app;
}
