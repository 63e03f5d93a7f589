import type { FastifyInstance } from 'fastify';
import type { RouteDeps } from '../route-deps.js';
import { errorResponses } from '../wire-schemas.js';

/** `GET /metrics`: Prometheus text; any configured token (client or admin) may scrape. */
export function metricsRoute(app: FastifyInstance, deps: RouteDeps): void {
  app.get(
    '/metrics',
    {
      config: { access: 'client' },
      logLevel: 'warn',
      schema: {
        tags: ['health'],
        summary: 'Prometheus metrics (text exposition format)',
        response: { 200: { type: 'string', description: 'Prometheus text format' }, ...errorResponses(401, 500) },
      },
    },
    async (_req, reply) => {
      const text = await deps.metrics.registry.metrics();
      void reply.type(deps.metrics.registry.contentType);
      return text;
    },
  );
}
