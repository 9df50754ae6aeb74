# syntax=docker/dockerfile:1
# orgsync: one image, one process type. Build: docker build -t orgsync .
# Run:   docker run -p 3000:3000 -v orgsync-data:/data -e ORGSYNC_OPERATOR_TOKEN=… orgsync
#        (add -e DATABASE_URL=postgresql://… to use a PostgreSQL server instead of PGlite under /data)

# ---- deps: install dependencies and generate the Prisma client ----------------------------
FROM node:20-bookworm-slim AS deps
WORKDIR /app
# Only what `npm ci` and its postinstall (`prisma generate`) read, so this layer is rebuilt
# only when dependencies or the schema change.
COPY package.json package-lock.json prisma.config.ts ./
COPY prisma ./prisma
# postinstall runs `prisma generate`, which writes the client to src/generated/prisma.
RUN npm ci && npm prune --omit=dev && npm cache clean --force

# ---- runtime -------------------------------------------------------------------------------
FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production \
    PORT=3000 \
    DATA_DIR=/data
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=deps /app/src/generated ./src/generated
COPY package.json prisma.config.ts ./
COPY bin ./bin
COPY prisma ./prisma
COPY src ./src
# PGlite keeps its files in /data; the volume is owned by the unprivileged user the service runs as.
RUN mkdir -p /data && chown node:node /data
VOLUME ["/data"]
USER node
EXPOSE 3000
# curl is not in slim images; Node 20 has fetch.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# Node itself is PID 1 (no npm/sh in between), so SIGTERM reaches the service's graceful shutdown.
# `serve` applies pending migrations before it listens.
CMD ["node", "bin/orgsync.js", "serve"]
