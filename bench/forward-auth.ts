// forwardAuth decisions with 1,000 sessions in the informer cache (a real control plane, the service in API
// mode, a real OIDC issuer): each decision finds the session by X-Forwarded-Host, identifies the caller from a
// bearer token or the portal cookie, and answers with the desktop's Basic header. Measured twice in one run:
// the decision itself in-process (ForwardAuth.decide on the service's own caches, verifier and authorizer),
// and end to end over HTTP against the service's /auth/forward (client and server share the 2 cores).
//
//   npm run bench:forward-auth -- [--sessions 1000] [--users 100] [--decisions 20000] [--requests 10000] [--concurrency 16]
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { createAuthorizer } from '../auth/authorizer.ts';
import { userNamespace } from '../auth/namespace.ts';
import { createTokenVerifier } from '../auth/token-verifier.ts';
import { childName, sessionHost } from '../operator/naming.ts';
import { MANAGER, LABEL_MANAGED_BY, type VDISession } from '../operator/v1alpha1.ts';
import { BrowserSessions } from '../src/login/browser-session.ts';
import { ForwardAuth } from '../src/desktop-access/forward-auth.ts';

import { loadConfig, reconcilerConfigFrom } from '../src/config.ts';
import { AUDIENCE, fmt, load, startBenchStack, summarize } from './support.ts';

const { values } = parseArgs({
  options: {
    sessions: { type: 'string', default: '1000' },
    users: { type: 'string', default: '100' },
    decisions: { type: 'string', default: '20000' },
    requests: { type: 'string', default: '10000' },
    concurrency: { type: 'string', default: '16' },
  },
});
const SESSIONS = Number(values.sessions);
const USERS = Number(values.users);
const DECISIONS = Number(values.decisions);
const REQUESTS = Number(values.requests);
const CONCURRENCY = Number(values.concurrency);

const cookieKey = randomBytes(32).toString('hex');
const env = { VDI_MODE: 'api', VDI_DOMAIN: 'vdi.bench', VDI_COOKIE_KEYS: cookieKey, VDI_COOKIE_SECURE: 'false' };
const stack = await startBenchStack(env);
try {
  const { client, service, issuer } = stack;
  const config = loadConfig(
    { ...env, OIDC_ISSUER_URL: issuer.issuer, OIDC_AUDIENCE: AUDIENCE, OIDC_ALLOW_INSECURE_ISSUER: 'true', PORT: String(service.port) },
    [],
  );
  const reconcilerConfig = reconcilerConfigFrom(config);
  const users = Array.from({ length: USERS }, (_, i) => `user${i}@bench.example`);

  // ---- 1,000 Running sessions with their Secrets, spread over the users' namespaces ----
  let started = performance.now();
  for (const user of users) {
    await client.create('/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: userNamespace(user) } });
  }
  const sessions: VDISession[] = [];
  const labels = { [LABEL_MANAGED_BY]: MANAGER };
  await Promise.all(
    Array.from({ length: 16 }, async (_, worker) => {
      for (let i = worker; i < SESSIONS; i += 16) {
        const user = users[i % USERS]!;
        const namespace = userNamespace(user);
        const session = await client.create<VDISession>(`/apis/vdi.kasm.io/v1alpha1/namespaces/${namespace}/vdisessions`, {
          apiVersion: 'vdi.kasm.io/v1alpha1',
          kind: 'VDISession',
          metadata: { name: `s${i}`, namespace },
          spec: { user, template: 'bench' },
        });
        await client.mergePatch(`/apis/vdi.kasm.io/v1alpha1/namespaces/${namespace}/vdisessions/s${i}/status`, { status: { phase: 'Running' } });
        await client.create(`/api/v1/namespaces/${namespace}/secrets`, {
          apiVersion: 'v1',
          kind: 'Secret',
          metadata: { name: childName(session), namespace, labels },
          data: { password: Buffer.from(`pw-${i}`).toString('base64'), turnToken: Buffer.from(`tt-${i}`).toString('base64') },
        });
        sessions[i] = session;
      }
    }),
  );
  const waitFor = async (probe: () => boolean) => {
    while (!probe()) await new Promise((r) => setTimeout(r, 50));
  };
  await waitFor(
    () =>
      sessions.every((s) => service.caches.sessions.get(`${s.metadata.namespace}/${s.metadata.name}`)?.status?.phase === 'Running') &&
      sessions.every((s) => service.caches.secrets.get(`${s.metadata.namespace}/${childName(s)}`)),
  );
  console.log(
    `forwardAuth benchmark: ${SESSIONS} Running sessions of ${USERS} users in the cache (set up in ${((performance.now() - started) / 1000).toFixed(1)} s)`,
  );

  // ---- callers: each user's bearer token and portal cookie ----
  const verifier = createTokenVerifier({ issuer: issuer.issuer, audience: AUDIENCE, allowInsecureRequests: true });
  const browserSessions = new BrowserSessions({
    cookieName: 'vdi_session',
    cookieSecure: false,
    keys: config.access.cookieKeys,
    sessionSeconds: 3600,
    verifier,
  });
  const tokens = await Promise.all(users.map((email) => issuer.tokenFor({ email, groups: ['vdi-users'] })));
  const cookies = await Promise.all(
    tokens.map(async (at) => {
      const identity = await verifier.verify(at);
      return (await browserSessions.cookieFor(browserSessions.startSession(identity, at, undefined))).split(';')[0]!;
    }),
  );
  const forwardAuth = new ForwardAuth({
    caches: service.caches,
    reconcilerConfig,
    sessions: browserSessions,
    verifier,
    authorizer: createAuthorizer(client),
    publicUrl: config.access.publicUrl,
    log: pino({ level: 'warn' }),
  });
  const hosts = sessions.map((s) => sessionHost(s, reconcilerConfig));
  // The i-th request: session i mod SESSIONS, by its owner, alternating bearer token and cookie.
  const headersFor = (i: number): Record<string, string> => {
    const s = i % SESSIONS;
    const u = s % USERS;
    const base = { 'x-forwarded-host': hosts[s]!, 'x-forwarded-proto': 'https', 'x-forwarded-uri': '/', 'x-forwarded-method': 'GET' };
    return i % 2 === 0 ? { ...base, authorization: `Bearer ${tokens[u]}` } : { ...base, cookie: cookies[u]! };
  };

  // Warm-up: the verifier's and cookie caches fill once per caller, as they do in service.
  for (let i = 0; i < USERS * 2; i++) await forwardAuth.decide(headersFor(i));

  // ---- in-process decisions ----
  let n = 0;
  let refused = 0;
  const inProcess = await load(DECISIONS, 1, async () => {
    const d = await forwardAuth.decide(headersFor(n++));
    if (d.status !== 200) refused++;
  });
  const a = summarize(inProcess.latencies);
  console.log(
    `in-process decide(): ${DECISIONS} decisions, ${Math.round(DECISIONS / (inProcess.wallMs / 1000))}/s on one core; ` +
      `p50 ${fmt(a.p50)} p99 ${fmt(a.p99)} max ${fmt(a.max)} (goal p99 < 2 ms: ${a.p99 < 2 ? 'met' : 'NOT met'}); refused ${refused}`,
  );

  // ---- over HTTP, the service's own /auth/forward ----
  n = 0;
  refused = 0;
  const url = `${service.url}/auth/forward`;
  started = performance.now();
  const http = await load(REQUESTS, CONCURRENCY, async () => {
    const res = await fetch(url, { headers: headersFor(n++) });
    await res.arrayBuffer();
    if (res.status !== 200) refused++;
  });
  const h = summarize(http.latencies);
  console.log(
    `HTTP /auth/forward: ${REQUESTS} requests at concurrency ${CONCURRENCY}, ${Math.round(REQUESTS / (http.wallMs / 1000))}/s; ` +
      `p50 ${fmt(h.p50)} p99 ${fmt(h.p99)} max ${fmt(h.max)}; refused ${refused} (client and server in one process)`,
  );
  forwardAuth.stop();
} finally {
  await stack.stop();
}
