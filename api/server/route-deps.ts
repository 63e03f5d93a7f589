import type { Logger } from 'pino';
import type { Coordinator } from '../../coordinator/types.js';
import type { InDoubtScanner } from './in-doubt-scanner.js';
import type { LogProbe } from './log-probe.js';
import type { ServerMetrics } from './server-metrics.js';
import type { StatementCatalog } from './statement-catalog.js';

/** Who may call a route: anyone (probes), any configured token, or an admin token only. */
export type RouteAccess = 'public' | 'client' | 'admin';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Default 'client'. */
    access?: RouteAccess;
    /** An absent body is taken as `{}` (routes whose fields are all optional). */
    optionalBody?: boolean;
  }
}

/** What the route modules share. */
export interface RouteDeps {
  readonly coord: Coordinator;
  readonly catalog: StatementCatalog;
  readonly scanner: InDoubtScanner;
  readonly metrics: ServerMetrics;
  readonly logProbe: LogProbe;
  readonly logger: Logger;
  /** Scrubs secrets out of text that goes into an answer. */
  readonly scrub: (s: string) => string;
}
