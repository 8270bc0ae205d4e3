// The desktop access path through a real Traefik, end to end: a control plane, the service (API, forwardAuth,
// reconciler), an OIDC issuer, Traefik's Kubernetes CRD provider reading the IngressRoute and Middlewares our
// reconciler wrote, and a stand-in Selkies desktop listening on the pod's IP.
//
// The apiserver refuses loopback addresses in EndpointSlices, so pods need routable-looking IPs that still stay
// on this machine. Run as a script (by runTraefikScenario, under `unshare -n`), this file makes that world in a
// network namespace of its own: `lo` carries the whole pod range, nothing leaves the namespace. It prints one
// JSON record of what it observed (ScenarioRecord) on stdout; everything else goes to stderr.
import { execFile, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readlinkSync } from 'node:fs';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { V1Pod, V1Secret } from '@kubernetes/client-node';
import { pino } from 'pino';
import WebSocket from 'ws';
import { userNamespace } from '../../auth/namespace.ts';
import { AUTH_MIDDLEWARE_NAME } from '../../operator/builders.ts';
import { childName, sessionHost } from '../../operator/naming.ts';
import type { VDISession } from '../../operator/v1alpha1.ts';
import { loadConfig, reconcilerConfigFrom } from '../../src/config.ts';
import type { KubeClient } from '../../src/kube/client.ts';
import { startService } from '../../src/service.ts';
import { ControlPlane } from '../../dev/control-plane.ts';
import { AUDIENCE } from './api.ts';
import { ScriptedBrowser } from './browser.ts';
import { eventually } from './cluster.ts';
import { freePort } from './coturn.ts';
import { startOidcIssuer, type TestUser } from '../../dev/oidc-issuer.ts';
import { createSession, createTemplate, getOrUndefined, sessionInPhase, TEST_LEASE_ENV } from './reconciler.ts';
import { startSelkiesStandIn, type SeenRequest, type StandInEcho } from './selkies-stand-in.ts';
import { startTraefik, type TraefikRouter } from './traefik.ts';

const execFileP = promisify(execFile);
const self = fileURLToPath(import.meta.url);
const repoRoot = path.resolve(path.dirname(self), '../..');

/** The range `lo` carries inside the namespace; the apiserver advertises its first address, pods get the next /24. */
const LOCAL_RANGE = '10.244.0.0/16';
const ADVERTISE_ADDRESS = '10.244.0.1';
const POD_CIDR = '10.244.1.1/24';
const ENTRY_POINT = 'web';
const DESKTOP_PATH = '/index.html?x=1';
/** Where the service is reached through the portal's Service: an address `lo` carries, not loopback. */
const PORTAL_IP = '10.244.2.10';
/**
 * Internal paths in several spellings (letter case, a trailing slash), asked through the portal route: the route
 * refuses each, and the service behind it matches its own routes exactly (issue #20).
 */
export const INTERNAL_PATH_SPELLINGS = [
  '/metrics',
  '/METRICS',
  '/Metrics',
  '/metrics/',
  '/auth/forward',
  '/AUTH/forward',
  '/Auth/Forward',
  '/auth/FORWARD',
  '/turn/ns/desk/token',
  '/TURN/ns/desk/token',
  '/Turn/ns/desk/token',
  '/healthz',
  '/HEALTHZ',
  '/readyz',
  '/READYZ',
];

const alice: TestUser = { email: 'alice@example.com', groups: ['vdi-users'] };
const bob: TestUser = { email: 'bob@example.com', groups: ['vdi-users'] };

/** One answer Traefik gave the client. */
export interface RouteAnswer {
  status: number;
  location?: string;
  contentType?: string;
  body: string;
  /** The stand-in's echo, when the request reached the desktop. */
  echo?: StandInEcho;
  /** How many requests reached the stand-in while this one was served. */
  desktopRequests: number;
}

export interface ScenarioRecord {
  host: string;
  podIP: string;
  /** The Traefik router made from our IngressRoute, as /api/http/routers shows it. */
  router: TraefikRouter;
  serverUrls: string[];
  /** Field managers and owner kinds of the routing objects in the apiserver (who wrote them). */
  routingObjects: { kind: string; name: string; managers: string[]; ownerKinds: string[] }[];
  /** The Basic header the desktop's own credentials (pod env from the session Secret) make. */
  desktopAuthorization: string;
  desktopUser: string;
  /** Alice, not signed in yet, opens the desktop URL as a browser navigation. */
  anonymousBrowser: RouteAnswer;
  /** An anonymous script (no navigation): 401, no redirect. */
  anonymousApi: RouteAnswer;
  /** Where the portal sends Alice back after the login she was redirected to. */
  loginReturnsTo: string | undefined;
  /** Alice with the portal's browser cookie (plus an unrelated cookie) and navigation headers. */
  owner: RouteAnswer;
  /** Alice with her API bearer token in Authorization instead of a cookie. */
  ownerBearer: RouteAnswer;
  /** Bob, signed in to the portal, opens Alice's desktop. */
  otherUser: RouteAnswer;
  /** Alice's WebSocket to the signalling path, with the cookie and her desktop's Origin. */
  ownerWebSocket: { opened: boolean; greeting?: StandInEcho; echoed?: string; error?: string };
  /** Bob's WebSocket to the same path. */
  otherUserWebSocket: { opened: boolean; status?: number; error?: string };
  /** Every request the stand-in received, in order. */
  desktopSaw: SeenRequest[];
  /** The chart's portal IngressRoute, served by Traefik, asked for internal paths and for the login page. */
  portal?: {
    host: string;
    login: { status: number; location?: string };
    internal: { path: string; status: number; metrics: boolean; noStore: boolean }[];
  };
  timings: Record<string, number>;
}

export interface ScenarioRun {
  result: Promise<ScenarioRecord>;
  /** Ends the scenario (SIGTERM, then SIGKILL to its whole process group) if it still runs. */
  stop(): Promise<void>;
}

/**
 * Why this machine cannot run the scenario, or undefined when it can: it needs root (for `unshare -n` and for
 * `ip addr add` inside the namespace) and the unshare and ip commands.
 */
export function scenarioPrerequisiteProblem(): string | undefined {
  if (process.getuid?.() !== 0) {
    return `the Traefik routing test must run as root (uid ${process.getuid?.()}): it makes its own network namespace with \`unshare -n\` (CI runs as root)`;
  }
  const probe = spawnSync('unshare', ['-n', '--', 'ip', 'link', 'set', 'lo', 'up'], { encoding: 'utf8' });
  if (probe.error) return `\`unshare -n\` is unavailable (${probe.error.message}); install util-linux and iproute2`;
  if (probe.status !== 0) return `\`unshare -n -- ip link set lo up\` failed (exit ${probe.status}): ${probe.stderr.trim()}`;
  return undefined;
}

/** Spawns this file under `unshare -n` with the project's Node 24 (process.execPath inside a test). */
export function runTraefikScenario(opts: { traefikBinary: string; timeoutMs: number; portalRoute?: object }): ScenarioRun {
  const child = spawn('unshare', ['-n', '--', process.execPath, self], {
    cwd: repoRoot,
    env: {
      ...process.env,
      VDI_TRAEFIK_SCENARIO: '1',
      VDI_TRAEFIK_BIN: opts.traefikBinary,
      VDI_TRAEFIK_PARENT_NETNS: readlinkSync('/proc/self/ns/net'),
      ...(opts.portalRoute && { VDI_TRAEFIK_PORTAL_ROUTE: JSON.stringify(opts.portalRoute) }),
    },
    // Its own process group: the control plane, Traefik and all can be ended together if it hangs.
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (b: Buffer) => (stdout += b.toString()));
  child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    // 'close', not 'exit': by then all of stdout (the record) has been read.
    child.once('close', (code, signal) => resolve({ code, signal })),
  );
  const running = () => child.exitCode === null && child.signalCode === null;
  // After a clean exit the scenario has stopped everything it started; otherwise its process group may hold
  // leftovers (etcd, the apiserver, Traefik), which only SIGKILL to the group ends.
  let clean = false;
  const killGroup = () => {
    if (clean) return;
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      // the group is gone
    }
  };
  process.once('exit', killGroup);
  void exited.then(({ code }) => {
    clean = code === 0;
  });

  let timedOut = false;
  const stop = async () => {
    if (running()) {
      child.kill('SIGTERM');
      const grace = setTimeout(killGroup, 15_000);
      await exited;
      clearTimeout(grace);
    }
    killGroup();
    process.removeListener('exit', killGroup);
  };
  const timer = setTimeout(() => {
    timedOut = true;
    void stop();
  }, opts.timeoutMs);

  const result = exited.then(({ code, signal }) => {
    clearTimeout(timer);
    const tail = stderr.trim().split('\n').slice(-80).join('\n');
    if (code !== 0) {
      const why = timedOut ? `timed out after ${opts.timeoutMs} ms` : `exited with code ${code}, signal ${signal}`;
      throw new Error(`the Traefik scenario ${why}; its last stderr lines:\n${tail}`);
    }
    const last = stdout.trim().split('\n').pop() ?? '';
    try {
      return JSON.parse(last) as ScenarioRecord;
    } catch {
      throw new Error(`the Traefik scenario printed no record (stdout ${JSON.stringify(stdout.slice(-500))}); stderr:\n${tail}`);
    }
  });
  result.catch(() => undefined);
  return { result, stop };
}

// ---- inside the namespace ----

const note = (line: string) => process.stderr.write(`[traefik-scenario] ${line}\n`);

/** Refuses to touch `lo` of the network namespace it was started from (the machine's, or the test runner's). */
function assertOwnNetworkNamespace(): void {
  const mine = readlinkSync('/proc/self/ns/net');
  const parent = process.env.VDI_TRAEFIK_PARENT_NETNS;
  if (!parent || mine === parent) {
    throw new Error(`not in a network namespace of its own (${mine}, started from ${parent}): run it through runTraefikScenario (unshare -n)`);
  }
}

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** A request to Traefik's entry point for `host` (node:http: fetch would add `sec-fetch-mode: cors`). */
function viaTraefik(port: number, host: string, requestPath: string, headers: Record<string, string>): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path: requestPath, headers: { host, ...headers } });
    req.on('error', reject);
    req.on('response', (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.end();
  });
}

async function runInNamespace(cleanups: (() => Promise<void>)[]): Promise<ScenarioRecord> {
  const started = Date.now();
  const timings: Record<string, number> = {};
  const mark = (name: string) => {
    timings[name] = Date.now() - started;
    note(`${name} after ${(timings[name] / 1000).toFixed(1)} s`);
  };

  assertOwnNetworkNamespace();
  await execFileP('ip', ['link', 'set', 'lo', 'up']);
  await execFileP('ip', ['addr', 'add', LOCAL_RANGE, 'dev', 'lo']);

  const cp = await ControlPlane.start({
    podCidr: POD_CIDR,
    advertiseAddress: ADVERTISE_ADDRESS,
    nodes: [{ name: 'node-1', gpus: 0 }],
    volumes: 0,
    handleSignals: false,
    log: (line) => note(`[cluster] ${line}`),
  });
  cleanups.push(() => cp.stop());
  await cp.applyManifests(path.join(repoRoot, 'deploy/rbac'));
  mark('control plane ready');
  const client = cp.client();

  const traefikBinary = process.env.VDI_TRAEFIK_BIN;
  if (!traefikBinary) throw new Error('VDI_TRAEFIK_BIN is not set');
  // The admin token: what Traefik may read is not under test here.
  const traefik = await startTraefik({
    binary: traefikBinary,
    apiserverUrl: cp.apiserverUrl,
    token: cp.adminToken,
    caFile: path.join(cp.dir, 'certs', 'apiserver.crt'),
    dir: cp.dir,
    entryPoint: ENTRY_POINT,
    logLevel: 'DEBUG',
  });
  cleanups.push(() => traefik.stop());
  mark('traefik up');

  const portalPort = await freePort();
  const publicUrl = `http://127.0.0.1:${portalPort}`;
  const issuer = await startOidcIssuer({
    audience: AUDIENCE,
    redirectUris: [`${publicUrl}/callback`],
    users: Object.fromEntries([alice, bob].map((u) => [u.email, { groups: u.groups }])),
  });
  cleanups.push(() => issuer.close());
  const leaseNamespace = 'vdi-system';
  await client.create('/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: leaseNamespace } });
  const config = loadConfig(
    {
      ...TEST_LEASE_ENV,
      PORT: String(portalPort),
      // All of this namespace's addresses: Traefik reaches the portal at PORTAL_IP (loopback cannot be an endpoint).
      HOST: '0.0.0.0',
      LOG_LEVEL: 'silent',
      POD_NAMESPACE: leaseNamespace,
      POD_NAME: 'vdi-operator-traefik-scenario',
      OIDC_ISSUER_URL: issuer.issuer,
      OIDC_AUDIENCE: AUDIENCE,
      OIDC_ALLOW_INSECURE_ISSUER: 'true',
      OIDC_CLIENT_SECRET: issuer.portalClient.clientSecret,
      VDI_PUBLIC_URL: publicUrl,
      // Traefik reaches forwardAuth here (the Middleware's address is `${VDI_INTERNAL_URL}/auth/forward`).
      VDI_INTERNAL_URL: publicUrl,
      VDI_DOMAIN: 'vdi.test',
      VDI_URL_SCHEME: 'http',
      VDI_ENTRYPOINTS: ENTRY_POINT,
      VDI_COOKIE_KEYS: randomBytes(32).toString('hex'),
      VDI_COOKIE_SECURE: 'false',
      VDI_LOGIN_RESOURCE: AUDIENCE,
    },
    [],
  );
  const service = await startService({ config, kubeConfig: cp.kubeConfig(), log: pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }) });
  cleanups.push(() => service.stop());
  await service.synced;
  mark('service up');

  const template = 'traefik-desktop';
  await createTemplate(
    client,
    {
      resources: { defaultGPU: 0, maxGPU: 1, defaultMemory: '2Gi', maxMemory: '16Gi', defaultCPU: '1', maxCPU: '4' },
      persistence: { defaultEnabled: false },
    },
    template,
  );
  const namespace = userNamespace(alice.email);
  await client.create('/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } });
  const created = await createSession(client, namespace, 'desk', { template, user: alice.email });
  const host = sessionHost(created, reconcilerConfigFrom(config));

  // The kubelet's part: the pod gets an IP from the range, and its container's basic-auth settings come from
  // the pod's environment (the password from the session's Secret).
  const pod = await eventually(async () => {
    const p = await getOrUndefined<V1Pod>(client, `/api/v1/namespaces/${namespace}/pods/${childName(created)}`);
    return p?.status?.podIP ? p : undefined;
  }, 90_000);
  const podIP = pod.status!.podIP!;
  const credentials = await desktopCredentials(client, pod);
  const standIn = await startSelkiesStandIn({ host: podIP, port: 8080, ...credentials });
  cleanups.push(() => standIn.close());
  mark(`stand-in desktop on ${standIn.url}`);

  await sessionInPhase(client, namespace, 'desk', 'Running', 90_000);
  const { router, service: traefikService } = await traefik.waitForRoute(host, standIn.url, 90_000);
  mark('route live');
  const routingObjects = await describeRouting(client, created);

  const answer = async (headers: Record<string, string>): Promise<RouteAnswer> => {
    const before = standIn.seen.length;
    const res = await viaTraefik(traefik.webPort, host, DESKTOP_PATH, headers);
    const reached = standIn.seen.length - before;
    const contentType = res.headers['content-type'];
    let echo: StandInEcho | undefined;
    if (res.status === 200 && contentType?.startsWith('application/json')) {
      const parsed = JSON.parse(res.body) as Partial<StandInEcho>;
      if (parsed.server === 'selkies-stand-in') echo = parsed as StandInEcho;
    }
    return { status: res.status, location: res.headers.location, contentType, body: res.body.slice(0, 2000), echo, desktopRequests: reached };
  };
  const navigation = { accept: 'text/html,application/xhtml+xml', 'sec-fetch-mode': 'navigate', 'sec-fetch-dest': 'document' };

  const anonymousBrowser = await answer(navigation);
  const anonymousApi = await answer({ accept: 'application/json' });

  // Alice follows the redirect she got: the portal's login, the issuer, and back to the desktop URL.
  let loginReturnsTo: string | undefined;
  const aliceBrowser = new ScriptedBrowser();
  if (anonymousBrowser.location) {
    const callback = await aliceBrowser.completeDevInteractions(anonymousBrowser.location, alice.email, `${publicUrl}/callback`);
    const { hop } = await aliceBrowser.request(callback);
    loginReturnsTo = hop.location;
  }
  const aliceCookie = await portalCookie(aliceBrowser, publicUrl, alice);
  const bobCookie = await portalCookie(new ScriptedBrowser(), publicUrl, bob);
  mark('signed in');

  // The portal's cookie, as a browser sends it to a desktop host when VDI_COOKIE_DOMAIN covers the desktops.
  const owner = await answer({ ...navigation, cookie: `${aliceCookie}; theme=dark` });
  const ownerBearer = await answer({
    accept: 'application/json',
    authorization: `Bearer ${await issuer.tokenFor(alice, { expiresInSeconds: 600 })}`,
  });
  const otherUser = await answer({ ...navigation, cookie: bobCookie });

  const origin = `http://${host}`;
  const ownerWebSocket = await openWebSocket(traefik.webPort, host, { cookie: aliceCookie, origin });
  const otherUserWebSocket = await openWebSocket(traefik.webPort, host, { cookie: bobCookie, origin });
  mark('requests done');
  const portalRoute = process.env.VDI_TRAEFIK_PORTAL_ROUTE;
  const portal = portalRoute ? await askThePortal(client, traefik, JSON.parse(portalRoute), portalPort) : undefined;
  if (portal) mark('portal asked');

  return {
    host,
    podIP,
    router,
    serverUrls: (traefikService.loadBalancer?.servers ?? []).map((s) => s.url),
    routingObjects,
    desktopAuthorization: `Basic ${Buffer.from(`${credentials.user}:${credentials.password}`).toString('base64')}`,
    desktopUser: credentials.user,
    anonymousBrowser,
    anonymousApi,
    loginReturnsTo,
    owner,
    ownerBearer,
    otherUser,
    ownerWebSocket: { opened: ownerWebSocket.opened, greeting: ownerWebSocket.greeting, echoed: ownerWebSocket.echoed, error: ownerWebSocket.error },
    otherUserWebSocket: { opened: otherUserWebSocket.opened, status: otherUserWebSocket.status, error: otherUserWebSocket.error },
    desktopSaw: standIn.seen,
    portal,
    timings,
  };
}

/**
 * Serves the chart's portal IngressRoute (on this scenario's entry point) to the service through a Service and
 * EndpointSlice of its own, and asks it for every spelling of the internal paths and for the login page.
 */
async function askThePortal(
  client: KubeClient,
  traefik: Awaited<ReturnType<typeof startTraefik>>,
  route: { metadata: { namespace: string }; spec: { routes: { match: string; services: { name: string; port: number }[] }[] } },
  portalPort: number,
): Promise<NonNullable<ScenarioRecord['portal']>> {
  const { namespace } = route.metadata;
  const backend = route.spec.routes[0]!.services[0]!;
  const host = /Host\(`([^`]+)`\)/.exec(route.spec.routes[0]!.match)![1]!;
  await client.create(`/api/v1/namespaces/${namespace}/services`, {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: backend.name },
    spec: { ports: [{ name: 'http', port: backend.port, targetPort: portalPort }] },
  });
  await client.create(`/apis/discovery.k8s.io/v1/namespaces/${namespace}/endpointslices`, {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name: `${backend.name}-portal`, labels: { 'kubernetes.io/service-name': backend.name } },
    addressType: 'IPv4',
    endpoints: [{ addresses: [PORTAL_IP], conditions: { ready: true } }],
    ports: [{ name: 'http', port: portalPort, protocol: 'TCP' }],
  });
  await client.create(`/apis/traefik.io/v1alpha1/namespaces/${namespace}/ingressroutes`, {
    ...route,
    spec: { ...route.spec, entryPoints: [ENTRY_POINT] },
  });
  await traefik.waitForRoute(host, `http://${PORTAL_IP}:${portalPort}`, 60_000);
  const ask = (requestPath: string) => viaTraefik(traefik.webPort, host, requestPath, { accept: 'application/json' });
  const login = await ask('/login');
  const internal = [];
  for (const requestPath of INTERNAL_PATH_SPELLINGS) {
    const res = await ask(requestPath);
    internal.push({
      path: requestPath,
      status: res.status,
      metrics: res.body.includes('# HELP'),
      noStore: res.headers['cache-control'] === 'no-store',
    });
  }
  return { host, login: { status: login.status, location: login.headers.location }, internal };
}

/** SELKIES_BASIC_AUTH_USER and _PASSWORD as the container would see them. */
async function desktopCredentials(client: KubeClient, pod: V1Pod): Promise<{ user: string; password: string }> {
  const env = pod.spec?.containers[0]?.env ?? [];
  const user = env.find((e) => e.name === 'SELKIES_BASIC_AUTH_USER')?.value;
  const ref = env.find((e) => e.name === 'SELKIES_BASIC_AUTH_PASSWORD')?.valueFrom?.secretKeyRef;
  if (!user || !ref?.name) throw new Error(`the desktop pod has no basic-auth settings: ${JSON.stringify(env)}`);
  const secret = await client.get<V1Secret>(`/api/v1/namespaces/${pod.metadata!.namespace}/secrets/${ref.name}`);
  const encoded = secret.data?.[ref.key];
  if (!encoded) throw new Error(`Secret ${ref.name} has no ${ref.key}`);
  return { user, password: Buffer.from(encoded, 'base64').toString('utf8') };
}

/** Who wrote the session's IngressRoute and Middleware (managedFields) and who owns them. */
async function describeRouting(client: KubeClient, session: VDISession): Promise<ScenarioRecord['routingObjects']> {
  const { namespace } = session.metadata;
  const base = `/apis/traefik.io/v1alpha1/namespaces/${namespace}`;
  type Meta = { metadata: { name: string; managedFields?: { manager?: string }[]; ownerReferences?: { kind: string }[] } };
  const kinds: [string, string][] = [
    ['IngressRoute', `${base}/ingressroutes/${childName(session)}`],
    ['Middleware', `${base}/middlewares/${AUTH_MIDDLEWARE_NAME}`],
  ];
  return await Promise.all(
    kinds.map(async ([kind, objectPath]) => {
      const obj = await client.get<Meta>(objectPath);
      return {
        kind,
        name: obj.metadata.name,
        managers: [...new Set((obj.metadata.managedFields ?? []).map((f) => f.manager ?? ''))],
        ownerKinds: (obj.metadata.ownerReferences ?? []).map((o) => o.kind),
      };
    }),
  );
}

/** The `name=value` of the portal's session cookie in `browser`, signing `user` in first if needed. */
async function portalCookie(browser: ScriptedBrowser, publicUrl: string, user: TestUser): Promise<string> {
  const name = 'vdi_session';
  if (!browser.cookie('127.0.0.1', name)) {
    const callback = await browser.completeDevInteractions(`${publicUrl}/login`, user.email, `${publicUrl}/callback`);
    const { response } = await browser.request(callback);
    if (response.status !== 303) throw new Error(`login of ${user.email} answered ${response.status} at the callback`);
  }
  const cookie = browser.cookie('127.0.0.1', name);
  if (!cookie) throw new Error(`no ${name} cookie after the login of ${user.email}`);
  return `${name}=${cookie.value}`;
}

/** Opens a WebSocket to the signalling path through Traefik, sends one message and waits for it to come back. */
async function openWebSocket(
  port: number,
  host: string,
  headers: { cookie: string; origin: string },
): Promise<{ opened: boolean; greeting?: StandInEcho; echoed?: string; status?: number; error?: string }> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/webrtc/signalling/`, { headers: { host, cookie: headers.cookie }, origin: headers.origin });
  const messages: string[] = [];
  const outcome = await new Promise<{ opened: boolean; status?: number; error?: string }>((resolve) => {
    const timer = setTimeout(() => resolve({ opened: false, error: 'no answer within 10 s' }), 10_000);
    ws.on('message', (data) => messages.push(String(data)));
    ws.once('open', () => {
      clearTimeout(timer);
      resolve({ opened: true });
    });
    ws.once('unexpected-response', (_req, res) => {
      clearTimeout(timer);
      res.resume();
      resolve({ opened: false, status: res.statusCode });
    });
    ws.once('error', (err) => {
      clearTimeout(timer);
      resolve({ opened: false, error: err.message });
    });
  });
  if (!outcome.opened) {
    ws.terminate();
    return outcome;
  }
  const hello = `hello ${randomBytes(4).toString('hex')}`;
  try {
    await eventually(async () => messages.length >= 1, 10_000, 20);
    ws.send(hello);
    await eventually(async () => messages.length >= 2, 10_000, 20);
    return { opened: true, greeting: JSON.parse(messages[0]!) as StandInEcho, echoed: messages[1] };
  } catch (err) {
    return { opened: true, error: `messages ${JSON.stringify(messages)}: ${String(err)}` };
  } finally {
    ws.close();
  }
}

async function main(): Promise<void> {
  const cleanups: (() => Promise<void>)[] = [];
  let cleaning: Promise<void> | undefined;
  const cleanUp = () =>
    (cleaning ??= (async () => {
      for (const cleanup of cleanups.reverse()) {
        await cleanup().catch((err: unknown) => note(`cleanup failed: ${String(err)}`));
      }
    })());
  process.once('SIGTERM', () => {
    note('SIGTERM: cleaning up');
    void cleanUp().finally(() => process.exit(143));
  });
  let code = 0;
  try {
    const record = await runInNamespace(cleanups);
    process.stdout.write(`${JSON.stringify(record)}\n`);
  } catch (err) {
    note(`failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    code = 1;
  }
  await cleanUp();
  // Informers and keep-alive sockets would hold the event loop open; everything is stopped by now.
  process.exit(code);
}

if (process.env.VDI_TRAEFIK_SCENARIO === '1' && process.argv[1] === self) await main();
