# The vdi-operator service: GraphQL API, forwardAuth/TURN endpoints and the reconciler in one Node.js process.
#
#   docker build -t vdi-operator:0.1.0 --build-arg VERSION=0.1.0 --build-arg REVISION=$(git rev-parse HEAD) .
#
# NODE_VERSION follows the `node` devDependency in package.json (test/integration/deploy.test.ts keeps the two in
# step). Pin the base by digest in your own mirror if your policy asks for it:
#   FROM node:24.21.0-bookworm-slim@sha256:<digest from `crane digest node:24.21.0-bookworm-slim`>
ARG NODE_VERSION=24.21.0

# ---- build: codegen, the dashboard (tsc + vite → dashboard/dist) and the service (tsc → dist/) ----------------
FROM node:${NODE_VERSION}-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json codegen.yml ./
COPY schema/ schema/
COPY src/ src/
COPY auth/ auth/
COPY operator/ operator/
COPY formats/ formats/
COPY resolvers/ resolvers/
COPY dashboard/ dashboard/
# dashboard:build runs the codegen for both the resolvers and the dashboard (codegen.yml), then builds the dashboard.
RUN npm run dashboard:build && npm run build

# ---- prod-deps: runtime dependencies only, no compilers, no test tools ------------------------------------------
FROM node:${NODE_VERSION}-bookworm-slim AS prod-deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

# ---- runtime ----------------------------------------------------------------------------------------------------
FROM node:${NODE_VERSION}-bookworm-slim
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="vdi-operator" \
      org.opencontainers.image.description="Kubernetes-native VDI control plane: GraphQL API, OIDC identity mapped onto RBAC, and a reconciler for Selkies GPU desktops" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.base.name="docker.io/library/node:${NODE_VERSION}-bookworm-slim"

ENV NODE_ENV=production
WORKDIR /app
# Everything stays owned by root and read-only for the service user: the process writes nothing outside /tmp,
# so the pod can run with readOnlyRootFilesystem (the chart mounts an emptyDir at /tmp).
COPY --from=prod-deps /app/node_modules ./node_modules
COPY --from=build /src/dist/src ./dist/src
COPY --from=build /src/dist/auth ./dist/auth
COPY --from=build /src/dist/operator ./dist/operator
COPY --from=build /src/dist/formats ./dist/formats
COPY --from=build /src/dist/resolvers ./dist/resolvers
COPY package.json ./
# The GraphQL SDL is read at run time relative to the module (src/graphql/server.ts: ../../schema), which from
# dist/src/graphql/ is dist/schema.
COPY schema/ ./dist/schema/
# The built dashboard, served at `/` (src/dashboard-static.ts looks for it at dist/dashboard beside dist/src).
COPY --from=build /src/dashboard/dist ./dist/dashboard

# A numeric user, so `runAsNonRoot` can verify it without an /etc/passwd lookup.
USER 10001:10001
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 CMD ["node", "dist/src/healthcheck.js"]
# Node is PID 1: main.ts handles SIGTERM/SIGINT itself (drain, release the leader lease, exit), and the service
# starts no child processes that would need reaping, so no init shim is needed.
CMD ["node", "--enable-source-maps", "dist/src/main.js"]
