// `sessions` query with 1,000 sessions in the cluster, beside a raw LIST of the same objects from the
// apiserver in the same run. The API serves reads from the shared informer cache (authorised with a cached
// SubjectAccessReview), so it should beat the raw LIST it would otherwise have to proxy. The load comes from a
// second process (bench/http-load.ts), so the service, like the apiserver, has its process to itself.
//
//   npm run bench:sessions -- [--sessions 1000] [--requests 2000] [--concurrency 16]
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { parseArgs } from 'node:util';
import { userNamespace } from '../auth/namespace.ts';
import { fmt, load, startBenchStack, summarize } from './support.ts';

const { values } = parseArgs({
  options: {
    sessions: { type: 'string', default: '1000' },
    requests: { type: 'string', default: '2000' },
    concurrency: { type: 'string', default: '16' },
  },
});
const SESSIONS = Number(values.sessions);
const REQUESTS = Number(values.requests);
const CONCURRENCY = Number(values.concurrency);

// API only: no reconciler, so the 1,000 sessions stay plain objects and the machine measures reads alone.
const stack = await startBenchStack({ VDI_MODE: 'api', VDI_QUOTA_SESSIONS: String(SESSIONS * 2) });
try {
  const user = 'bench@example.com';
  const token = await stack.issuer.tokenFor({ email: user, groups: ['vdi-users'] });
  const ns = userNamespace(user);
  const url = `${stack.service.url}/graphql`;
  const gql = async (query: string) => {
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ query }),
    });
    const body = (await res.json()) as { errors?: unknown; data?: { sessions?: unknown[] } };
    if (body.errors) throw new Error(JSON.stringify(body.errors));
    return body;
  };
  await stack.client.apply(
    '/apis/vdi.kasm.io/v1alpha1/vditemplates/bench-desktop',
    {
      apiVersion: 'vdi.kasm.io/v1alpha1',
      kind: 'VDITemplate',
      metadata: { name: 'bench-desktop' },
      spec: { image: 'desktop:bench', displayName: 'Bench', resources: { maxGPU: 1 } },
    },
    'bench',
  );
  // The first session goes through the API (provisioning the namespace and RoleBinding); the rest are
  // written directly to keep set-up short.
  const first = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ query: 'mutation { createVDISession(input: {template: "bench-desktop", name: "s-0", resources: {gpu: 0}}) { name } }' }),
  });
  if (!first.ok) throw new Error(`create failed: ${await first.text()}`);
  const setupStart = performance.now();
  await load(SESSIONS - 1, 32, async () => {
    const i = Math.floor(Math.random() * 1e9);
    await stack.client.create(`/apis/vdi.kasm.io/v1alpha1/namespaces/${ns}/vdisessions`, {
      apiVersion: 'vdi.kasm.io/v1alpha1',
      kind: 'VDISession',
      metadata: { name: `s-${i}` },
      spec: { user, template: 'bench-desktop', resources: { gpu: 0, memory: '4Gi', cpu: '2' }, timeout: '8h' },
      status: undefined,
    });
  });
  while (stack.service.caches.sessions.list().filter((s) => s.metadata.namespace === ns).length < SESSIONS)
    await new Promise((r) => setTimeout(r, 50));
  console.log(`set-up: ${SESSIONS} sessions in ${((performance.now() - setupStart) / 1000).toFixed(1)} s`);

  const query = '{ sessions { name namespace user status { phase url } spec { template resources { gpu memory cpu } } } }';
  const check = await gql(query);
  if (check.data?.sessions?.length !== SESSIONS) throw new Error(`expected ${SESSIONS} sessions, got ${check.data?.sessions?.length}`);

  const loader = fork(new URL('./http-load.ts', import.meta.url).pathname, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const run = async (job: Record<string, unknown>, total: number) => {
    loader.send({ ...job, total, concurrency: CONCURRENCY });
    const [result] = (await once(loader, 'message')) as [{ latencies: number[]; wallMs: number }];
    return result;
  };
  const graphqlJob = { kind: 'graphql', url, token, query };
  const rawJob = {
    kind: 'raw',
    kubeconfig: stack.cp.kubeconfigPath,
    path: `/apis/vdi.kasm.io/v1alpha1/namespaces/${ns}/vdisessions`,
    as: { username: `oidc:${user}`, groups: ['oidc:vdi-users'] },
  };
  // Warm both paths, then measure one after the other in the same run.
  await run(graphqlJob, 200);
  await run(rawJob, 200);
  const api = await run(graphqlJob, REQUESTS);
  const raw = await run(rawJob, REQUESTS);
  loader.kill();
  const a = summarize(api.latencies);
  const r = summarize(raw.latencies);
  const apiRps = REQUESTS / (api.wallMs / 1000);
  const rawRps = REQUESTS / (raw.wallMs / 1000);
  console.log(`sessions query, ${SESSIONS} sessions, ${REQUESTS} requests, concurrency ${CONCURRENCY}`);
  console.log(`  GraphQL sessions: p50 ${fmt(a.p50)}  p95 ${fmt(a.p95)}  p99 ${fmt(a.p99)}  ${apiRps.toFixed(0)} req/s`);
  console.log(`  raw LIST (same user, impersonated): p50 ${fmt(r.p50)}  p95 ${fmt(r.p95)}  p99 ${fmt(r.p99)}  ${rawRps.toFixed(0)} req/s`);
  console.log(
    `  ratio GraphQL/raw: p50 ${(a.p50 / r.p50).toFixed(2)}x  p99 ${(a.p99 / r.p99).toFixed(2)}x  throughput ${(apiRps / rawRps).toFixed(2)}x`,
  );
  console.log(`  service RSS ${(process.memoryUsage().rss / 1024 / 1024).toFixed(0)} MiB (the load comes from a second process)`);
} finally {
  await stack.stop();
}
