# syntax=docker/dockerfile:1
# The step executor's image: Node 24 LTS, multi-stage, production dependencies only, non-root,
# and fit for a read-only root filesystem (it writes nothing to disk).

FROM node:24-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY server ./server
COPY steps ./steps
RUN npm run build

FROM node:24-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund --ignore-scripts && npm cache clean --force

FROM node:24-bookworm-slim
LABEL org.opencontainers.image.title="step-executor" \
      org.opencontainers.image.description="KubeVela workflow step executor" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV NODE_ENV=production \
    STEP_EXECUTOR_PORT=8080
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /src/build ./build
COPY package.json ./
# The image's own unprivileged user (uid 1000); the addon's Deployment also sets runAsNonRoot.
USER 1000:1000
EXPOSE 8080
# --max-semi-space-size=2: V8 keeps the young generation it grew to (up to 2 × 16 MiB); capped,
# the executor holds ≈ 15 MiB less idle and ≈ 40 % less RSS under 1,000 polls/s, for a few % more
# CPU (BENCHMARKS.md §3 and §8). The benches read these flags from here.
ENTRYPOINT ["node", "--enable-source-maps", "--max-semi-space-size=2", "build/server/main.js"]
