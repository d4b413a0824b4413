# One image for the API and the worker; the command chooses which runs.
FROM node:20-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json nest-cli.json ./
COPY apps apps
COPY libs libs
COPY test/fakes test/fakes
RUN npm run build && npm prune --omit=dev

FROM node:20-slim
WORKDIR /app
ENV NODE_ENV=production
COPY --from=build /app/node_modules node_modules
COPY --from=build /app/dist dist
COPY package.json ./
# The shipped provider rate limits (RATE_LIMITS_FILE defaults to config/limits.yaml).
COPY config config
USER node
# 8000: the API; 9464: a worker's GET /metrics and /health (WORKER_METRICS_PORT).
EXPOSE 8000 9464
CMD ["node", "dist/apps/api/src/main.js"]
