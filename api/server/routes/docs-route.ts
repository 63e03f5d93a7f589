import type { FastifyInstance } from 'fastify';

/** `GET /docs/json`: the OpenAPI 3.1 document of every route (any configured token). */
export function docsRoute(app: FastifyInstance): void {
  app.get('/docs/json', { config: { access: 'client' }, schema: { hide: true } }, async () => app.swagger());
}
