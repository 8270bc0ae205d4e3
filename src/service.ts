// Wiring: one process runs the reconciler (under leader election), the API, or both, over one set of shared
// informer caches.
import http from 'node:http';
import type { KubeConfig } from '@kubernetes/client-node';
import express from 'express';
import { API_CACHES, RECONCILER_CACHES, createCaches, startCaches, stopCaches, type CacheName, type Caches } from '../operator/caches.ts';
import { SessionController } from '../operator/controller.ts';
import { LeaderElector } from '../operator/leader-election.ts';
import { reconcilerConfigFrom, type Config } from './config.ts';
import { KubeClient } from './kube/client.ts';
import type { Logger } from './log.ts';
import { createMetrics, type Metrics } from './metrics.ts';
import { createAuthorizer } from '../auth/authorizer.ts';
import { createTokenVerifier } from '../auth/token-verifier.ts';
import { startApi, type Api } from './graphql/server.ts';
import { ApiServices } from './sessions/services.ts';
import { dashboardRouter, findDashboardDir } from './dashboard-static.ts';
import { BrowserSessions } from './login/browser-session.ts';
import { ForwardAuth, forwardAuthRouter } from './desktop-access/forward-auth.ts';
import { OidcClient, loginRouter } from './login/login.ts';
import { PresenceReports, presenceRouter } from './desktop-access/presence.ts';
import { turnRouter } from './desktop-access/turn.ts';
import { UserNamespaces } from './sessions/user-namespaces.ts';
import { matchRoutesExactly } from './routing.ts';

export interface Service {
  url: string;
  port: number;
  server: http.Server;
  client: KubeClient;
  caches: Caches;
  metrics: Metrics;
  /** The controller while this replica leads (for tests and benchmarks). */
  controller(): SessionController | undefined;
  /** Resolves once the informer caches have synced (what /readyz reports). */
  synced: Promise<void>;
  isLeader(): boolean;
  stop(): Promise<void>;
}

export interface ServiceOptions {
  config: Config;
  kubeConfig: KubeConfig;
  log: Logger;
  /** Extra routes mounted before the API (the local mode's helpers). */
  extend?: (app: express.Express) => void;
  /**
   * Called when this replica loses the leader lease (not when stop() gives it up), after its writes have been
   * cancelled. A reconciler-only process exits here, as controller-runtime's managers do: see exitOnLeadershipLost.
   */
  onLeadershipLost?: () => void;
}

/** What a process in VDI_MODE=reconciler does when it loses the lease: exit, and let its restart campaign anew. */
export function exitOnLeadershipLost(config: Config): (() => void) | undefined {
  return config.mode === 'reconciler' ? () => process.exit(1) : undefined;
}

export async function startService(opts: ServiceOptions): Promise<Service> {
  const { config, log } = opts;
  const client = new KubeClient(opts.kubeConfig);
  const metrics = createMetrics();
  client.counter = metrics.kubeRequests;
  const caches = createCaches(client);
  for (const [name, informer] of Object.entries(caches)) {
    informer.onRecoveredError((err: unknown) =>
      log.warn({ informer: name, error: err instanceof Error ? err.message : String(err) }, 'watch failed, retrying'),
    );
    informer.onListenerError((err: unknown) =>
      log.error({ informer: name, error: err instanceof Error ? (err.stack ?? err.message) : String(err) }, 'a cache listener failed'),
    );
  }
  const runReconciler = config.mode !== 'api';
  const runApi = config.mode !== 'reconciler';
  // Route kinds follow the ingress mode: a cluster without Traefik has no Middleware or IngressRoute CRDs, and
  // a cache of a kind the apiserver does not serve would never sync.
  const routeCaches: CacheName[] = config.desktops.ingressMode === 'ingress' ? ['ingresses'] : ['middlewares', 'ingressRoutes'];
  const wanted: CacheName[] = [...(runApi ? API_CACHES : []), ...(runReconciler ? [...RECONCILER_CACHES, ...routeCaches] : [])];
  const cachesReady = startCaches(caches, wanted);
  metrics.watchInformers(caches, wanted);
  metrics.watchIdle(caches, reconcilerConfigFrom(config));

  let controller: SessionController | undefined;
  let elector: LeaderElector | undefined;
  const reconcilerConfig = reconcilerConfigFrom(config);
  if (runReconciler) {
    elector = new LeaderElector(client, {
      namespace: config.namespace,
      name: 'vdi-operator-leader',
      identity: config.identity,
      leaseDurationMs: config.leaseDurationMs,
      renewDeadlineMs: config.renewDeadlineMs,
      retryPeriodMs: config.retryPeriodMs,
      log: (msg, fields) => log.info(fields ?? {}, msg),
      onStartedLeading: (term) => {
        void cachesReady.then(() => {
          if (term.signal.aborted || controller) return;
          controller = new SessionController({
            client,
            caches,
            config: reconcilerConfig,
            log,
            identity: config.identity,
            term,
            concurrency: config.reconcileConcurrency,
            metrics: metrics.reconciler,
          });
          controller.start();
        });
      },
      onStoppedLeading: (why) => {
        // The term's signal has already cancelled every write of this controller; stop() waits for its reconciles.
        const stopping = controller?.stop();
        controller = undefined;
        if (why !== 'lost') return;
        log.error({ identity: config.identity }, 'leader election lost');
        void Promise.resolve(stopping).finally(() => opts.onLeadershipLost?.());
      },
    });
    elector.start();
  }

  const app = matchRoutesExactly(express());
  app.disable('x-powered-by');
  let ready = false;
  void cachesReady.then(() => (ready = true));
  app.get('/healthz', (_req, res) => void res.json({ status: 'ok' }));
  app.get('/readyz', (_req, res) => void res.status(ready ? 200 : 503).json({ status: ready ? 'ready' : 'waiting for informers to sync' }));
  app.get('/metrics', async (_req, res) => {
    res.set('Content-Type', metrics.registry.contentType);
    res.send(await metrics.registry.metrics());
  });
  opts.extend?.(app);

  const server = http.createServer(app);
  let api: Api | undefined;
  let forwardAuth: ForwardAuth | undefined;
  if (runApi) {
    if (!config.oidc.issuerUrl) throw new Error('OIDC_ISSUER_URL is not set: the API cannot authenticate anyone');
    const verifier = createTokenVerifier({
      issuer: config.oidc.issuerUrl,
      audience: config.oidc.audience,
      algorithms: config.oidc.algorithms,
      clockToleranceSeconds: config.oidc.clockToleranceSeconds,
      jwksUri: config.oidc.jwksUri,
      allowInsecureRequests: config.oidc.allowInsecureIssuer,
      identity: {
        usernameClaim: config.oidc.usernameClaim,
        groupsClaim: config.oidc.groupsClaim,
        usernamePrefix: config.oidc.usernamePrefix,
        groupsPrefix: config.oidc.groupsPrefix,
        adminGroup: config.oidc.adminGroup,
      },
    });
    const authorizer = createAuthorizer(client, { ttlMs: config.api.decisionTtlMs });
    // The desktop access path (login, forwardAuth, TURN), mounted beside the API.
    const oidcClient = new OidcClient(config);
    const browserSessions = new BrowserSessions({
      cookieName: config.access.cookieName,
      cookieDomain: config.access.cookieDomain,
      cookieSecure: config.access.cookieSecure,
      keys: config.access.cookieKeys,
      sessionSeconds: config.access.sessionSeconds,
      verifier,
      refresher: oidcClient.refresher(),
    });
    forwardAuth = new ForwardAuth({
      caches,
      reconcilerConfig,
      sessions: browserSessions,
      verifier,
      authorizer,
      publicUrl: config.access.publicUrl,
      log,
    });
    app.use(forwardAuthRouter(forwardAuth, log));
    app.use(turnRouter({ config, caches, log }));
    app.use(presenceRouter(new PresenceReports({ caches, client, log }), log, (outcome) => metrics.presenceReports.inc({ outcome })));
    app.use(loginRouter({ config, sessions: browserSessions, client: oidcClient, verifier, log }));
    const services = new ApiServices({
      client,
      caches,
      authorizer,
      namespaces: new UserNamespaces(client, config, { log, onTakeoverRefused: (kind) => metrics.namespaceTakeoversRefused.inc({ kind }) }),
      reconcilerConfig,
      decisionTtlMs: config.api.decisionTtlMs,
    });
    api = await startApi({ app, server, config, services, verifier, metrics, log, browserSessions });
    // The dashboard, after every API route (npm run dashboard:build makes dashboard/dist).
    const dashboardDir = findDashboardDir();
    if (dashboardDir) app.use(dashboardRouter(dashboardDir, config.access.publicUrl));
    else log.info('dashboard/dist not found: serving the API only (npm run dashboard:build)');
  }
  await new Promise<void>((resolve) => server.listen(config.port, config.host, resolve));
  const port = (server.address() as { port: number }).port;
  const host = config.host === '0.0.0.0' ? '127.0.0.1' : config.host;
  log.info({ port, mode: config.mode }, 'vdi-operator listening');

  return {
    url: `http://${host}:${port}`,
    port,
    server,
    client,
    caches,
    metrics,
    controller: () => controller,
    synced: cachesReady,
    isLeader: () => elector?.isLeader ?? false,
    async stop() {
      // Apollo's drain plugin closes the HTTP server gracefully and the WebSocket server with it.
      if (api) await api.stop();
      else await new Promise<void>((resolve) => server.close(() => resolve()));
      forwardAuth?.stop();
      await controller?.stop();
      await elector?.stop();
      await stopCaches(caches);
    },
  };
}
