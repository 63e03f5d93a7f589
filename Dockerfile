# The txcoord coordinator service (`txcoord serve`). Build: docker build -t txcoord .
# Run: mount a config (see docs/http-api.md) at /etc/txcoord/txcoord.json; "api.host" must be
# "0.0.0.0" inside a container.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# The package's `prepare` script builds, which needs the sources: install first, build after.
RUN npm ci --ignore-scripts
COPY . .
RUN npx tsc -p tsconfig.json && npm prune --omit=dev

FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
USER node
EXPOSE 7070
HEALTHCHECK --interval=5s --timeout=3s --retries=12 CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.TXCOORD_PORT || 7070) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["node", "dist/api/cli.js"]
CMD ["serve", "--config", "/etc/txcoord/txcoord.json"]
