// Idle reclaim at scale (#18): 1,000 Running desktops on a real control plane, the whole service in this process.
//   1. quiet: nothing changes for a while: apiserver writes (goal: none) and CPU;
//   2. presence: desktops' connect/disconnect reports at a steady rate, half of them repeats of the state already
//      recorded (hooks retry, several clients come and go): apiserver writes per real transition (goal: one) and
//      per repeat (goal: none), and CPU per report;
//   3. deadlines: every desktop connected, the template's idle timeout lowered to 30 s, then 200 of them report
//      their last client leaving, spread over 20 s: the time from each idle deadline (its disconnect + 30 s) to its
//      pod being gone (the GPU slice free), and that none of the 800 still watched is stopped.
// Run: npm run bench:idle [-- --sessions 1000 --rate 20 --seconds 30 --stops 200]
import { parseArgs } from 'node:util';
import type { V1Pod } from '@kubernetes/client-node';
import type { VDISession, VDITemplate } from '../operator/v1alpha1.ts';
import { apiserverWrites, cpuBetween, processCpu, startBenchStack, summarize, writesBetween } from './support.ts';

const { values } = parseArgs({
  options: {
    sessions: { type: 'string', default: '1000' },
    rate: { type: 'string', default: '20' },
    seconds: { type: 'string', default: '30' },
    stops: { type: 'string', default: '200' },
  },
});
const N = Number(values.sessions);
const RATE = Number(values.rate);
const SECONDS = Number(values.seconds);
const STOPS = Math.min(Number(values.stops), N);
const IDLE_TIMEOUT_S = 30;
const NAMESPACES = 10;
const TEMPLATE = 'idle-bench';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const nodes = Array.from({ length: Math.ceil(N / 120) + 1 }, (_, i) => ({ name: `gpu-${i}`, gpus: 120, pods: 250, cpu: '1000', memory: '4000Gi' }));
const stack = await startBenchStack({ VDI_MODE: 'all', LOG_LEVEL: 'warn' }, { nodes });
const { client, service } = stack;
try {
  const templatePath = `/apis/vdi.kasm.io/v1alpha1/vditemplates/${TEMPLATE}`;
  const template = (timeout: string): VDITemplate => ({
    apiVersion: 'vdi.kasm.io/v1alpha1',
    kind: 'VDITemplate',
    metadata: { name: TEMPLATE },
    spec: {
      image: 'desktop:bench',
      displayName: 'Idle bench',
      resources: { defaultGPU: 1, maxGPU: 1, defaultMemory: '1Gi', defaultCPU: '1' },
      persistence: { defaultEnabled: false },
      idle: { defaultTimeout: timeout, warning: '10s' },
    },
  });
  await client.apply(templatePath, template('1h'), 'bench');
  const namespaces = Array.from({ length: NAMESPACES }, (_, i) => `idle-bench-${i}`);
  for (const ns of namespaces) await client.create('/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
  const keys = Array.from({ length: N }, (_, i) => ({ namespace: namespaces[i % NAMESPACES]!, name: `desk-${i}` }));

  console.log(`creating ${N} sessions on ${nodes.length} nodes of 120 GPU slices…`);
  const created = performance.now();
  for (let i = 0; i < N; i += 50) {
    await Promise.all(
      keys.slice(i, i + 50).map(({ namespace, name }) =>
        client.create(`/apis/vdi.kasm.io/v1alpha1/namespaces/${namespace}/vdisessions`, {
          apiVersion: 'vdi.kasm.io/v1alpha1',
          kind: 'VDISession',
          metadata: { name, namespace },
          spec: { user: `${name}@example.com`, template: TEMPLATE },
        }),
      ),
    );
  }
  const running = () => service.caches.sessions.list().filter((s) => s.status?.phase === 'Running').length;
  while (running() < N) await sleep(500);
  console.log(`  all Running in ${((performance.now() - created) / 1000).toFixed(1)} s`);
  // Let the storm's Events and late writes settle.
  await sleep(12_000);

  const tokenOf = (namespace: string, name: string) => {
    const data = service.caches.secrets.get(`${namespace}/vdi-${name}`)?.data?.presenceToken;
    return Buffer.from(data ?? '', 'base64').toString('utf8');
  };
  const reportOutcomes = new Map<string, number>();
  const report = async (namespace: string, name: string, state: 'connected' | 'disconnected', at = Date.now()) => {
    const res = await fetch(`${service.url}/presence/${namespace}/${name}/${state}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${tokenOf(namespace, name)}`, 'content-type': 'application/json' },
      body: JSON.stringify({ at: at / 1000 }),
    });
    const { outcome } = (await res.json()) as { outcome?: string };
    reportOutcomes.set(outcome ?? String(res.status), (reportOutcomes.get(outcome ?? String(res.status)) ?? 0) + 1);
    return outcome;
  };

  // ---- 1. quiet ----
  const QUIET_S = 20;
  let writes = await apiserverWrites(client);
  let cpu = await processCpu();
  await sleep(QUIET_S * 1000);
  const quietWrites = writesBetween(writes, await apiserverWrites(client));
  console.log(`\n1. quiet, ${QUIET_S} s with ${N} Running desktops and nothing changing`);
  const sessionWrites = quietWrites.byResource.filter(([r]) => r.startsWith('vdisessions')).reduce((a, [, n]) => a + n, 0);
  console.log(`  apiserver writes: ${quietWrites.total} ${JSON.stringify(quietWrites.byResource)}; to sessions: ${sessionWrites}`);
  console.log('  (endpoints and endpointslices are the controller-manager still catching up with the storm of Services)');
  console.log(`  CPU: ${cpuBetween(cpu, await processCpu())}`);

  // ---- 2. presence at a steady rate ----
  const state = new Map<string, boolean>();
  const total = RATE * SECONDS;
  let real = 0;
  let repeats = 0;
  writes = await apiserverWrites(client);
  cpu = await processCpu();
  const started = performance.now();
  const inFlight: Promise<unknown>[] = [];
  for (let i = 0; i < total; i++) {
    const due = started + (i * 1000) / RATE;
    if (due > performance.now()) await sleep(due - performance.now());
    const { namespace, name } = keys[Math.floor(Math.random() * N)]!;
    const key = `${namespace}/${name}`;
    const connected = state.get(key) ?? false;
    // Every other report repeats the recorded state (a retried hook, a second tab): it must cost no write.
    const repeat = i % 2 === 1 && state.has(key);
    const next = repeat ? connected : !connected;
    if (repeat) repeats++;
    else real++;
    state.set(key, next);
    inFlight.push(report(namespace, name, next ? 'connected' : 'disconnected'));
  }
  await Promise.all(inFlight);
  await sleep(5_000);
  const presenceWrites = writesBetween(writes, await apiserverWrites(client));
  const statusWrites = presenceWrites.byResource.find(([r]) => r === 'vdisessions/status')?.[1] ?? 0;
  console.log(`\n2. presence: ${total} reports in ${SECONDS} s (${RATE}/s): ${real} real transitions, ${repeats} repeats`);
  console.log(`  outcomes: ${JSON.stringify(Object.fromEntries(reportOutcomes))}`);
  console.log(`  apiserver writes: ${presenceWrites.total} ${JSON.stringify(presenceWrites.byResource)}`);
  console.log(
    `  status writes per real transition: ${(statusWrites / real).toFixed(3)}; all writes per report: ${(presenceWrites.total / total).toFixed(3)}`,
  );
  const presenceCpu = cpuBetween(cpu, await processCpu());
  console.log(`  CPU: ${presenceCpu} (the bench process holds the service and the report clients)`);

  // ---- 3. deadlines ----
  reportOutcomes.clear();
  await Promise.all(
    keys.filter(({ namespace, name }) => !state.get(`${namespace}/${name}`)).map(({ namespace, name }) => report(namespace, name, 'connected')),
  );
  while (service.caches.sessions.list().some((s) => !s.status?.presence?.connected)) await sleep(200);
  await client.apply(templatePath, template(`${IDLE_TIMEOUT_S}s`), 'bench');
  await sleep(3_000);
  const deadlines = new Map<string, number>();
  const gone = new Map<string, number>();
  const off = service.caches.pods.on((type, pod: V1Pod) => {
    const key = `${pod.metadata?.namespace}/${pod.metadata?.name?.replace(/^vdi-/, '')}`;
    if (type === 'DELETED' && deadlines.has(key) && !gone.has(key)) gone.set(key, Date.now());
  });
  const leaving = keys.slice(0, STOPS);
  const spread = 20_000;
  const t0 = Date.now();
  await Promise.all(
    leaving.map(async ({ namespace, name }, i) => {
      await sleep((i * spread) / STOPS);
      const at = Date.now();
      deadlines.set(`${namespace}/${name}`, at + IDLE_TIMEOUT_S * 1000);
      await report(namespace, name, 'disconnected', at);
    }),
  );
  while (gone.size < STOPS && Date.now() - t0 < spread + IDLE_TIMEOUT_S * 1000 + 60_000) await sleep(200);
  off();
  const lag = [...gone].map(([key, at]) => at - deadlines.get(key)!);
  const s = summarize(lag);
  const stopped = service.caches.sessions.list().filter((x: VDISession) => x.status?.phase === 'Stopped');
  const wronglyStopped = stopped.filter((x) => !deadlines.has(`${x.metadata.namespace}/${x.metadata.name}`)).length;
  console.log(`\n3. deadlines: ${STOPS} desktops lose their last client over ${spread / 1000} s, idle timeout ${IDLE_TIMEOUT_S} s`);
  console.log(`  slices freed: ${gone.size}/${STOPS}; stopped sessions: ${stopped.length}; stopped while a client was connected: ${wronglyStopped}`);
  console.log(`  idle deadline → pod gone (slice free): p50 ${s.p50} ms, p95 ${s.p95} ms, p99 ${s.p99} ms, max ${s.max} ms (goal p99 < 2000 ms)`);
  console.log(`  report outcomes: ${JSON.stringify(Object.fromEntries(reportOutcomes))}`);
} finally {
  await stack.stop();
}
