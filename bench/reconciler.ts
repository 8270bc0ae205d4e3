// The reconciler under a create storm on the simulated cluster: N sessions created at once (enough GPU
// slices for all), time until all are Running, per-session create→Running p50/p99, API writes per session,
// CPU and peak memory of the process. Two baselines are measured first in the same run, before the service
// starts: the same number of bare one-slice pods through kube-scheduler and kwok (what the issue's goal compares
// with), and the same objects each session gets written directly by this script, without a reconciler (the floor
// for any controller that makes them on this machine), so the ratios show what the reconciler adds beyond each.
// Then memory is measured again with --large sessions in the caches. Each phase starts once the cluster has
// settled from the one before. A session is Running when its Running status is first known to this process,
// the same way for both: the direct writer's status write answered or its watch said so, the service's status
// write answered or the service's own watch said so (its caches, not a second watch of the benchmark's).
//
//   npm run bench:reconciler -- [--sessions 200] [--large 2000] [--concurrency <reconciles in flight; default: the service's>]
//                                [--profile <file.cpuprofile>: this process's CPU during the storm]
//                                [--apiserver-profile <prefix>: the apiserver's CPU (Go pprof) while the same objects
//                                 are written directly and during the storm, to <prefix>-direct.pprof and -sessions.pprof;
//                                 read them with `go tool pprof -top <file>`]
import { reconcilerConfigFrom } from '../src/config.ts';
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { request as httpsRequest } from 'node:https';
import path from 'node:path';
import { Session } from 'node:inspector/promises';
import { parseArgs } from 'node:util';
import { randomBytes } from 'node:crypto';
import type { V1Pod } from '@kubernetes/client-node';
import {
  buildAuthMiddleware,
  buildEndpointSlice,
  buildIngressRoute,
  buildNetworkPolicy,
  buildPod,
  buildSecret,
  buildService,
  sessionUrl,
} from '../operator/builders.ts';
import type { ReconcilerConfig } from '../operator/config.ts';
import { Informer } from '../operator/informer.ts';
import { childName } from '../operator/naming.ts';
import { resolveSession } from '../operator/resolve.ts';
import { mergeConditions, sessionStatusFromPod } from '../operator/status.ts';
import { LABEL_SESSION, MANAGER, type VDISession, type VDITemplate } from '../operator/v1alpha1.ts';

import type { KubeClient } from '../src/kube/client.ts';
import {
  apiserverWrites,
  applyBenchTemplate,
  benchConfig,
  cpuBetween,
  fmt,
  processCpu,
  startBenchCluster,
  startBenchService,
  summarize,
  waitForQuiet,
  writesBetween,
  type BenchStack,
} from './support.ts';

const { values } = parseArgs({
  options: {
    sessions: { type: 'string', default: '200' },
    large: { type: 'string', default: '2000' },
    concurrency: { type: 'string' },
    profile: { type: 'string' },
    'apiserver-profile': { type: 'string' },
  },
});
const N = Number(values.sessions);
/** How long each phase's apiserver profile runs, from the phase's start (a storm of 200 takes about 5 s here). */
const APISERVER_PROFILE_S = 6;
const LARGE = Number(values.large);
const gpuNodes = Math.ceil(N / 100);
const cpuNodes = Math.ceil(LARGE / 500) + 1;
const env = { VDI_MODE: 'reconciler', ...(values.concurrency && { VDI_RECONCILE_CONCURRENCY: values.concurrency }) };
const cluster = await startBenchCluster({
  volumes: 0,
  profiling: values['apiserver-profile'] !== undefined,
  nodes: [
    ...Array.from({ length: gpuNodes }, (_, i) => ({ name: `gpu-${i}`, gpus: 120, pods: 250, cpu: '1000', memory: '4000Gi' })),
    ...Array.from({ length: cpuNodes }, (_, i) => ({ name: `cpu-${i}`, gpus: 0, pods: 600, cpu: '2000', memory: '20000Gi' })),
  ],
});
let stack: BenchStack | undefined;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const gc = () => (globalThis as { gc?: () => void }).gc?.();
const mib = (b: number) => `${(b / 1048576).toFixed(0)} MiB`;
try {
  const { client } = cluster;
  const mkns = (name: string) => client.create('/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
  await mkns('bench-pods');
  await mkns('bench-sessions');
  await applyBenchTemplate(client);

  // Baseline: bare pods, create → Running as seen through a watch.
  const pods = new Informer<V1Pod>(client, { path: '/api/v1/namespaces/bench-pods/pods' });
  pods.start();
  await pods.waitForSync();
  const podCreated = new Map<string, number>();
  const podRunning = new Map<string, number>();
  pods.on((_t, p) => {
    if (p.status?.phase === 'Running' && !podRunning.has(p.metadata!.name!)) podRunning.set(p.metadata!.name!, performance.now());
  });
  await waitForQuiet(client);
  const baseWritesBefore = await apiserverWrites(client);
  const baseCpuBefore = await processCpu();
  const baseStart = performance.now();
  await Promise.all(
    Array.from({ length: N }, async (_, i) => {
      podCreated.set(`p-${i}`, performance.now());
      await client.create('/api/v1/namespaces/bench-pods/pods', {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: `p-${i}` },
        spec: {
          containers: [{ name: 'desktop', image: 'desktop:bench', resources: { limits: { 'nvidia.com/gpu': '1', memory: '1Gi', cpu: '1' } } }],
        },
      });
    }),
  );
  while (podRunning.size < N) await sleep(20);
  const baseAll = performance.now() - baseStart;
  const baseCpu = cpuBetween(baseCpuBefore, await processCpu());
  await waitForQuiet(client); // the writes that follow Running (endpoint controllers, events) settle
  const baseWrites = writesBetween(baseWritesBefore, await apiserverWrites(client));
  const base = summarize([...podRunning].map(([name, t]) => t - podCreated.get(name)!));
  await client.request({ method: 'DELETE', path: '/api/v1/namespaces/bench-pods/pods', query: { gracePeriodSeconds: 0 } });
  while (pods.size > 0) await sleep(50);
  await pods.stop();

  // The apiserver's own write throughput in this run: N×9 small writes (ConfigMaps) at the reconciler's
  // concurrency of writes in flight, the floor under any controller that writes that much.
  await mkns('bench-writes');
  const rawWrites = N * 9;
  let nextWrite = 0;
  const writeStart = performance.now();
  await Promise.all(
    Array.from({ length: 128 }, async () => {
      while (nextWrite < rawWrites) {
        const i = nextWrite++;
        await client.create('/api/v1/namespaces/bench-writes/configmaps', {
          apiVersion: 'v1',
          kind: 'ConfigMap',
          metadata: { name: `w-${i}` },
          data: { i: String(i) },
        });
      }
    }),
  );
  const writesPerSecond = rawWrites / ((performance.now() - writeStart) / 1000);
  await client.request({ method: 'DELETE', path: '/api/v1/namespaces/bench-writes/configmaps' });

  // The same objects without a reconciler, then the service.
  await mkns('bench-direct');
  let directProfiled = Promise.resolve();
  const direct = await writeDirectly(client, reconcilerConfigFrom(benchConfig(cluster, env)), N, () => (directProfiled = apiserverProfile('direct')));
  await directProfiled;
  stack = await startBenchService(cluster, env);
  const { service } = stack;

  // Sessions.
  const controllerWrites = () => [...(service.controller()?.writes ?? new Map()).entries()];
  while (!service.controller()) await sleep(20);
  // Timed through the service's own caches (it runs in this process), not watches of the benchmark's: a second
  // pair of watches would charge the reconciler for the benchmark's looking. Like the direct writer's, a time is
  // the earlier of the write's answer (which the service puts into its cache) and the watch's event.
  const sessions = service.caches.sessions;
  const created = new Map<string, number>();
  const running = new Map<string, number>();
  const seenByWatch = new Map<string, number>();
  const stopTiming = sessions.on((_t, s) => {
    if (s.metadata.namespace !== 'bench-sessions') return;
    if (!seenByWatch.has(s.metadata.name!)) seenByWatch.set(s.metadata.name!, performance.now());
    if (s.status?.phase === 'Running' && !running.has(s.metadata.name!)) running.set(s.metadata.name!, performance.now());
  });
  const podTimes = trackPods(service.caches.pods, 'bench-sessions');
  const quietMs = await waitForQuiet(client);
  let peakRss = process.memoryUsage.rss();
  // memoryUsage.rss() only: memoryUsage() also gathers V8's heap statistics, which took ~1 % of a storm's CPU (profiled).
  const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage.rss())), 50);
  gc();
  const rssBefore = process.memoryUsage().rss;
  const cpuBefore = process.cpuUsage();
  const writesBefore = new Map(controllerWrites());
  const stormWritesBefore = await apiserverWrites(client);
  const stormCpuBefore = await processCpu();
  const profiler = values.profile ? await startProfile() : undefined;
  const apiserverProfiled = apiserverProfile('sessions');
  const start = performance.now();
  await Promise.all(
    Array.from({ length: N }, async (_, i) => {
      created.set(`s-${i}`, performance.now());
      await client.create('/apis/vdi.kasm.io/v1alpha1/namespaces/bench-sessions/vdisessions', {
        apiVersion: 'vdi.kasm.io/v1alpha1',
        kind: 'VDISession',
        metadata: { name: `s-${i}` },
        spec: { user: `user-${i}@example.com`, template: 'bench-desktop' },
      });
    }),
  );
  while (running.size < N) await sleep(20);
  const all = performance.now() - start;
  if (profiler) await profiler.stop(values.profile!);
  await apiserverProfiled;
  const stormCpu = cpuBetween(stormCpuBefore, await processCpu());
  await service.controller()!.queue.idle();
  const cpu = process.cpuUsage(cpuBefore);
  await waitForQuiet(client);
  const stormWrites = writesBetween(stormWritesBefore, await apiserverWrites(client));
  clearInterval(sampler);
  const lat = summarize([...running].map(([name, t]) => t - created.get(name)!));
  const watched = summarize([...seenByWatch].filter(([name]) => created.has(name)).map(([name, t]) => t - created.get(name)!));
  const sessionSplit = `create → seen by a watch p50 ${fmt(watched.p50)} p99 ${fmt(watched.p99)}, ${split(created, running, podTimes)}`;
  podTimes.stop();
  const writes = controllerWrites()
    .map(([kind, n]) => [kind, n - (writesBefore.get(kind) ?? 0)] as const)
    .filter(([, n]) => n > 0);
  const objectWrites = writes.filter(([k]) => k !== 'event').reduce((a, [, n]) => a + n, 0);
  const eventWrites = writes.filter(([k]) => k === 'event').reduce((a, [, n]) => a + n, 0);

  console.log(`reconciler: ${N} sessions created at once on ${gpuNodes} GPU nodes (kwok), datastore ${cluster.cp.datastore}`);
  console.log(`  baseline bare pods: all Running after ${(baseAll / 1000).toFixed(2)} s; create→Running p50 ${fmt(base.p50)}  p99 ${fmt(base.p99)}`);
  console.log(`  (the storm began after ${(quietMs / 1000).toFixed(1)} s without writes but leases' renewals: the phases before had settled)`);
  console.log(`  sessions:           all Running after ${(all / 1000).toFixed(2)} s; create→Running p50 ${fmt(lat.p50)}  p99 ${fmt(lat.p99)}`);
  console.log(
    `  same objects written directly, no reconciler: all Running after ${(direct.allMs / 1000).toFixed(2)} s; create→Running p50 ${fmt(direct.lat.p50)}  p99 ${fmt(direct.lat.p99)}`,
  );
  console.log(`  split: sessions ${sessionSplit}; written directly ${direct.split}`);
  console.log(
    `  added by the reconciler: p50 ${fmt(lat.p50 - base.p50)}  p99 ${fmt(lat.p99 - base.p99)}  (ratio p50 ${(lat.p50 / base.p50).toFixed(2)}x, p99 ${(lat.p99 / base.p99).toFixed(2)}x)`,
  );
  console.log(
    `  added beyond writing the same objects directly: p50 ${fmt(lat.p50 - direct.lat.p50)}  p99 ${fmt(lat.p99 - direct.lat.p99)}  (ratio p50 ${(lat.p50 / direct.lat.p50).toFixed(2)}x, p99 ${(lat.p99 / direct.lat.p99).toFixed(2)}x)`,
  );
  console.log(
    `  API writes per session: ${(objectWrites / N).toFixed(2)} to objects + ${(eventWrites / N).toFixed(2)} Events  (${writes.map(([k, n]) => `${k} ${n}`).join(', ')})`,
  );
  const perObject = (w: ReturnType<typeof writesBetween>) =>
    `${(w.total / N).toFixed(1)} (${w.byResource.map(([k, n]) => `${k} ${(n / N).toFixed(2)}`).join(', ')})`;
  console.log(`  all writes the apiserver served (every client), per bare pod: ${perObject(baseWrites)}`);
  console.log(`  all writes the apiserver served (every client), per session written directly: ${perObject(direct.writes)}`);
  console.log(`  all writes the apiserver served (every client), per session: ${perObject(stormWrites)}`);
  console.log(`  CPU used until all were Running: bare pods ${baseCpu}; written directly ${direct.cpu}; sessions ${stormCpu}`);
  console.log(
    `  apiserver write throughput in this run: ${writesPerSecond.toFixed(0)} writes/s (${rawWrites} ConfigMap creates, 128 in flight); the storm's ${objectWrites + eventWrites} writes alone take ${((objectWrites + eventWrites) / writesPerSecond).toFixed(2)} s at that rate`,
  );
  console.log(
    `  process CPU: ${((cpu.user + cpu.system) / 1000).toFixed(0)} ms (${((cpu.user + cpu.system) / 1000 / N).toFixed(1)} ms per session); peak RSS ${mib(peakRss)}; RSS before ${mib(rssBefore)}`,
  );
  // One at a time: the reconciler's own share of a single create → Running, without a queue of writes ahead.
  const SEQ = 20;
  const seqPods = new Informer<V1Pod>(client, { path: '/api/v1/namespaces/bench-pods/pods' });
  seqPods.start();
  await seqPods.waitForSync();
  const podOne: number[] = [];
  for (let i = 0; i < SEQ; i++) {
    const t = performance.now();
    await client.create('/api/v1/namespaces/bench-pods/pods', {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: `q-${i}` },
      spec: { containers: [{ name: 'desktop', image: 'desktop:bench', resources: { limits: { 'nvidia.com/gpu': '1', memory: '1Gi', cpu: '1' } } }] },
    });
    while (seqPods.get(`bench-pods/q-${i}`)?.status?.phase !== 'Running') await sleep(2);
    podOne.push(performance.now() - t);
  }
  await seqPods.stop();
  await client.request({ method: 'DELETE', path: '/api/v1/namespaces/bench-pods/pods', query: { gracePeriodSeconds: 0 } });
  const sessionOne: number[] = [];
  for (let i = 0; i < SEQ; i++) {
    const t = performance.now();
    await client.create('/apis/vdi.kasm.io/v1alpha1/namespaces/bench-sessions/vdisessions', {
      apiVersion: 'vdi.kasm.io/v1alpha1',
      kind: 'VDISession',
      metadata: { name: `q-${i}` },
      spec: { user: `q-${i}@example.com`, template: 'bench-desktop' },
    });
    while (!running.has(`q-${i}`)) await sleep(2);
    sessionOne.push(performance.now() - t);
  }
  const p1 = summarize(podOne);
  const s1 = summarize(sessionOne);
  console.log(
    `  one at a time (${SEQ} each): bare pod p50 ${fmt(p1.p50)} p99 ${fmt(p1.p99)}; session p50 ${fmt(s1.p50)} p99 ${fmt(s1.p99)}; added p50 ${fmt(s1.p50 - p1.p50)} p99 ${fmt(s1.p99 - p1.p99)}`,
  );

  gc();
  const rssAtN = process.memoryUsage().rss;
  const heapAtN = process.memoryUsage().heapUsed;

  if (LARGE > N) {
    // Memory with many more sessions in the caches (CPU-only desktops on big simulated nodes).
    await client.apply(
      '/apis/vdi.kasm.io/v1alpha1/vditemplates/bench-cpu',
      {
        apiVersion: 'vdi.kasm.io/v1alpha1',
        kind: 'VDITemplate',
        metadata: { name: 'bench-cpu' },
        spec: {
          image: 'desktop:bench',
          displayName: 'Bench CPU',
          resources: { defaultGPU: 0, maxGPU: 0, defaultMemory: '1Gi', defaultCPU: '1' },
          persistence: { defaultEnabled: false },
        },
      },
      'bench',
    );
    for (let i = N; i < LARGE; i += 100) {
      await Promise.all(
        Array.from({ length: Math.min(100, LARGE - i) }, (_, j) =>
          client.create('/apis/vdi.kasm.io/v1alpha1/namespaces/bench-sessions/vdisessions', {
            apiVersion: 'vdi.kasm.io/v1alpha1',
            kind: 'VDISession',
            metadata: { name: `s-${i + j}` },
            spec: { user: `user-${i + j}@example.com`, template: 'bench-cpu' },
          }),
        ),
      );
    }
    while (running.size < LARGE) await sleep(100);
    await service.controller()!.queue.idle();
    await sleep(1000);
    gc();
    const rssLarge = process.memoryUsage().rss;
    const heapLarge = process.memoryUsage().heapUsed;
    console.log(`  memory with ${N} sessions: RSS ${mib(rssAtN)}, heap ${mib(heapAtN)}; with ${LARGE}: RSS ${mib(rssLarge)}, heap ${mib(heapLarge)}`);
    console.log(
      `  growth: ${((heapLarge - heapAtN) / (LARGE - N) / 1024).toFixed(1)} KB heap per additional session (session + pod + secret + service + routes + policy in the caches)`,
    );
  }
  stopTiming();
} finally {
  await (stack ?? cluster).stop();
}

/**
 * N sessions created at once in `bench-direct`, each followed at once by the objects the reconciler would write
 * for it, made by its builders and with its verbs (Secret and pod created, Service and IngressRoute applied, the
 * namespace's shared Middleware and NetworkPolicy applied beforehand), then, when the pod is Ready, its Service's
 * EndpointSlice and one status write saying Running. No Events, no intermediate status, no caches to keep, no reconcile logic: what the
 * apiserver, scheduler and kwok need for these objects. Cleaned up before it returns.
 */
async function writeDirectly(client: KubeClient, config: ReconcilerConfig, n: number, onStart: () => void) {
  const ns = 'bench-direct';
  const sessionsPath = `/apis/vdi.kasm.io/v1alpha1/namespaces/${ns}/vdisessions`;
  const template = await client.get<VDITemplate>('/apis/vdi.kasm.io/v1alpha1/vditemplates/bench-desktop');
  const podsInformer = new Informer<V1Pod>(client, { path: `/api/v1/namespaces/${ns}/pods` });
  const sessionsInformer = new Informer<VDISession>(client, { path: sessionsPath });
  podsInformer.start();
  sessionsInformer.start();
  await Promise.all([podsInformer.waitForSync(), sessionsInformer.waitForSync()]);
  const podTimes = trackPods(podsInformer, ns);
  const readyWaiters = new Map<string, (pod: V1Pod) => void>();
  podsInformer.on((_t, p) => {
    if (p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')) readyWaiters.get(p.metadata!.name!)?.(p);
  });
  const created = new Map<string, number>();
  const running = new Map<string, number>();
  sessionsInformer.on((_t, s) => {
    if (s.status?.phase === 'Running' && !running.has(s.metadata.name!)) running.set(s.metadata.name!, performance.now());
  });
  const newSession = (name: string) => ({
    apiVersion: 'vdi.kasm.io/v1alpha1',
    kind: 'VDISession',
    metadata: { name, namespace: ns },
    spec: { user: `${name}@example.com`, template: 'bench-desktop' },
  });
  const shape = newSession('shape') as VDISession;
  await client.apply(
    `/apis/networking.k8s.io/v1/namespaces/${ns}/networkpolicies/${buildNetworkPolicy(shape, config).metadata.name}`,
    buildNetworkPolicy(shape, config),
    MANAGER,
  );
  const middleware = buildAuthMiddleware(shape, config);
  await client.apply(`/apis/traefik.io/v1alpha1/namespaces/${ns}/middlewares/${middleware.metadata.name}`, middleware, MANAGER);

  await waitForQuiet(client);
  const writesBefore = await apiserverWrites(client);
  const cpuBefore = await processCpu();
  onStart();
  const start = performance.now();
  await Promise.all(
    Array.from({ length: n }, async (_, i) => {
      const name = `d-${i}`;
      created.set(name, performance.now());
      const session = await client.create<VDISession>(sessionsPath, newSession(name));
      const resolution = resolveSession(session, template, config);
      if (!resolution.ok) throw new Error(`bench template rejected: ${resolution.message}`);
      const podName = childName(session);
      const ready = new Promise<V1Pod>((resolve) => readyWaiters.set(podName, resolve));
      const route = buildIngressRoute(session, config);
      const service = buildService(session);
      await Promise.all([
        client.create(
          `/api/v1/namespaces/${ns}/secrets`,
          buildSecret(session, randomBytes(18).toString('base64url'), randomBytes(24).toString('base64url'), randomBytes(24).toString('base64url')),
        ),
        client.apply(`/api/v1/namespaces/${ns}/services/${service.metadata.name}`, service, MANAGER),
        client.apply(`/apis/traefik.io/v1alpha1/namespaces/${ns}/ingressroutes/${route.metadata.name}`, route, MANAGER),
        client
          .create(`/api/v1/namespaces/${ns}/pods`, buildPod(session, template, resolution.effective, config, childName(session)))
          .then(() => podTimes.seen.has(name) || podTimes.seen.set(name, performance.now())),
      ]);
      const pod = await ready;
      const slice = buildEndpointSlice(session, pod);
      await client.apply(`/apis/discovery.k8s.io/v1/namespaces/${ns}/endpointslices/${slice.metadata.name}`, slice, MANAGER);
      const now = new Date();
      const observed = sessionStatusFromPod(session, pod, true, now, config);
      const startTime = now.toISOString();
      await client.mergePatch(`${sessionsPath}/${name}/status`, {
        status: {
          phase: observed.phase,
          reason: observed.reason,
          message: observed.message,
          podName: observed.podName,
          nodeName: observed.nodeName,
          startTime,
          url: sessionUrl(session, config),
          expiresAt: new Date(Date.parse(startTime) + resolution.effective.timeoutMs).toISOString(),
          resources: { gpu: resolution.effective.gpu, cpu: resolution.effective.cpu, memory: resolution.effective.memory },
          observedGeneration: session.metadata.generation,
          conditions: mergeConditions([], observed.conditions, now),
        },
      });
      if (!running.has(name)) running.set(name, performance.now());
    }),
  );
  while (running.size < n) await new Promise((r) => setTimeout(r, 20));
  const allMs = performance.now() - start;
  const cpu = cpuBetween(cpuBefore, await processCpu());
  await waitForQuiet(client); // the writes that follow Running (endpoint controllers, events) settle
  const writes = writesBetween(writesBefore, await apiserverWrites(client));
  const lat = summarize([...running].map(([name, t]) => t - created.get(name)!));

  // Gone before the reconciler starts: no finalizer holds the sessions (the admission policy added it), and
  // every child is deleted outright rather than left to garbage collection during the next phase.
  for (const s of sessionsInformer.list()) await client.mergePatch(`${sessionsPath}/${s.metadata.name}`, { metadata: { finalizers: null } });
  for (const path of [
    sessionsPath,
    `/api/v1/namespaces/${ns}/secrets`,
    `/api/v1/namespaces/${ns}/services`,
    `/apis/discovery.k8s.io/v1/namespaces/${ns}/endpointslices`,
    `/apis/traefik.io/v1alpha1/namespaces/${ns}/ingressroutes`,
  ]) {
    await client.request({ method: 'DELETE', path });
  }
  await client.request({ method: 'DELETE', path: `/api/v1/namespaces/${ns}/pods`, query: { gracePeriodSeconds: 0 } });
  while (podsInformer.size > 0 || sessionsInformer.size > 0) await new Promise((r) => setTimeout(r, 50));
  await Promise.all([podsInformer.stop(), sessionsInformer.stop()]);
  return { lat, allMs, cpu, writes, split: split(created, running, podTimes) };
}

/**
 * When this process's watch first saw each session's pod, and saw it ready, by session name: where a session's
 * time goes (until its pod exists: the first pass; from its readiness to Running: the last).
 */
function trackPods(pods: Informer<V1Pod>, namespace: string): { seen: Map<string, number>; ready: Map<string, number>; stop(): void } {
  const seen = new Map<string, number>();
  const ready = new Map<string, number>();
  const stop = pods.on((_t, p) => {
    const session = p.metadata?.labels?.[LABEL_SESSION];
    if (!session || p.metadata?.namespace !== namespace) return;
    if (!seen.has(session)) seen.set(session, performance.now());
    if (!ready.has(session) && p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')) ready.set(session, performance.now());
  });
  return { seen, ready, stop };
}

/** create → pod, pod → ready and ready → Running, p50 and p99. */
function split(created: Map<string, number>, running: Map<string, number>, pods: ReturnType<typeof trackPods>): string {
  const toPod = summarize([...pods.seen].map(([name, t]) => t - created.get(name)!));
  const toReady = summarize([...pods.ready].map(([name, t]) => t - pods.seen.get(name)!));
  const toRunning = summarize([...pods.ready].map(([name, t]) => running.get(name)! - t));
  return `create → pod p50 ${fmt(toPod.p50)} p99 ${fmt(toPod.p99)}, pod → ready p50 ${fmt(toReady.p50)} p99 ${fmt(toReady.p99)}, ready → Running p50 ${fmt(toRunning.p50)} p99 ${fmt(toRunning.p99)}`;
}

/**
 * With --apiserver-profile: the apiserver's CPU profile (Go pprof) for the next APISERVER_PROFILE_S seconds, to
 * `<prefix>-<phase>.pprof`; resolves when written (at once without the option). Both phases are profiled for the
 * same time from their start, so the files compare.
 */
function apiserverProfile(phase: string): Promise<void> {
  const prefix = values['apiserver-profile'];
  if (prefix === undefined) return Promise.resolve();
  const { cp } = cluster;
  return new Promise<void>((resolve, reject) => {
    const req = httpsRequest(
      `${cp.apiserverUrl}/debug/pprof/profile?seconds=${APISERVER_PROFILE_S}`,
      { headers: { authorization: `Bearer ${cp.adminToken}` }, ca: readFileSync(path.join(cp.dir, 'certs', 'apiserver.crt')) },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          if (res.statusCode !== 200) return reject(new Error(`apiserver profile: HTTP ${res.statusCode}`));
          writeFile(`${prefix}-${phase}.pprof`, Buffer.concat(chunks)).then(resolve, reject);
        });
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/** A CPU profile of this process (the service and the benchmark's own watches) from now until stop(file). */
async function startProfile(): Promise<{ stop(file: string): Promise<void> }> {
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.start');
  return {
    async stop(file) {
      const { profile } = await session.post('Profiler.stop');
      await writeFile(file, JSON.stringify(profile));
      session.disconnect();
    },
  };
}
