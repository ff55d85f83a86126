# syntax=docker/dockerfile:1

# Build: compile TypeScript with the dev dependencies, then drop them. The image brings Node 24:
# the optional node-linux-* packages (a Node for `npm ci` on machines whose own is older) are left out.
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json ./
COPY src ./src
COPY bench ./bench
COPY scripts ./scripts
RUN npm ci --no-audit --no-fund --omit=optional && npm prune --omit=dev --omit=optional

# Run: only the compiled code and production dependencies, as the unprivileged "node" user.
FROM node:24-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY config ./config
COPY console ./console
USER node
# 8000: traffic. The admin API listens on 127.0.0.1:9901 inside the container; to reach it from
# outside, run with --admin 0.0.0.0:9901 and a token (DRUM_SPLITTER_ADMIN_TOKEN).
EXPOSE 8000
# Healthy while the admin API answers /healthz.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:9901/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["node", "dist/src/cli/main.js"]
CMD ["serve", "--config", "config/drum-splitter.yaml"]
