// Shared pieces of the benchmarks: a real control plane (or the one in KUBECONFIG), the service in-process,
// a real OIDC issuer, and small statistics helpers. Every benchmark prints its figures as plain text.
// The npm scripts run them with NODE_ENV=production, as the image runs the service: in development graphql-js
// checks every instanceof across realms, which took an eighth of a 1,000-session query's CPU.
import { pino } from 'pino';
import type { KubeConfig } from '@kubernetes/client-node';
import { ControlPlane } from '../dev/control-plane.ts';
import { startOidcIssuer, type OidcIssuer } from '../dev/oidc-issuer.ts';
import { loadConfig, type Config } from '../src/config.ts';
import { startService, type Service } from '../src/service.ts';
import type { KubeClient } from '../src/kube/client.ts';
import type { VDITemplate } from '../operator/v1alpha1.ts';

export const AUDIENCE = 'urn:vdi-operator:bench';

export interface BenchStack {
  cp: ControlPlane;
  client: KubeClient;
  kubeConfig: KubeConfig;
  issuer: OidcIssuer;
  service: Service;
  stop(): Promise<void>;
}

export async function startBenchStack(
  env: Record<string, string> = {},
  cpOptions: Parameters<typeof ControlPlane.start>[0] = {},
): Promise<BenchStack> {
  return await startBenchService(await startBenchCluster(cpOptions), env);
}

/** The control plane (RBAC and the service's namespace applied) and the OIDC issuer, without the service yet. */
export interface BenchCluster {
  cp: ControlPlane;
  client: KubeClient;
  kubeConfig: KubeConfig;
  issuer: OidcIssuer;
  stop(): Promise<void>;
}

export async function startBenchCluster(cpOptions: Parameters<typeof ControlPlane.start>[0] = {}): Promise<BenchCluster> {
  const cp = await ControlPlane.start({ volumes: 0, ...cpOptions });
  await cp.applyManifests('deploy/rbac');
  const client = cp.client();
  await client.create('/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'vdi-system' } });
  const issuer = await startOidcIssuer({ audience: AUDIENCE, accessTokenTTLSeconds: 3600 });
  return {
    cp,
    client,
    kubeConfig: cp.kubeConfig(),
    issuer,
    async stop() {
      await issuer.close();
      await cp.stop();
    },
  };
}

/** The configuration the benchmarks run the service with (`env` overrides). */
export function benchConfig(cluster: BenchCluster, env: Record<string, string> = {}): Config {
  return loadConfig(
    {
      PORT: '0',
      HOST: '127.0.0.1',
      OIDC_ISSUER_URL: cluster.issuer.issuer,
      OIDC_AUDIENCE: AUDIENCE,
      OIDC_ALLOW_INSECURE_ISSUER: 'true',
      VDI_URL_SCHEME: 'http',
      VDI_API_RATE_LIMIT_PER_MINUTE: '100000000',
      ...env,
    },
    [],
  );
}

/** Starts the service in-process on `cluster`; stopping the stack stops both. */
export async function startBenchService(cluster: BenchCluster, env: Record<string, string> = {}): Promise<BenchStack> {
  let service: Service;
  try {
    service = await startService({ config: benchConfig(cluster, env), kubeConfig: cluster.kubeConfig, log: pino({ level: 'warn' }) });
  } catch (err) {
    await cluster.stop();
    throw err;
  }
  return {
    ...cluster,
    service,
    async stop() {
      await service.stop();
      await cluster.stop();
    },
  };
}

/** The one-GPU desktop template the reconciler benchmarks create sessions of (`bench-desktop`). */
export function applyBenchTemplate(client: KubeClient): Promise<VDITemplate> {
  return client.apply<VDITemplate>(
    '/apis/vdi.kasm.io/v1alpha1/vditemplates/bench-desktop',
    {
      apiVersion: 'vdi.kasm.io/v1alpha1',
      kind: 'VDITemplate',
      metadata: { name: 'bench-desktop' },
      spec: {
        image: 'desktop:bench',
        displayName: 'Bench',
        resources: { defaultGPU: 1, maxGPU: 1, defaultMemory: '1Gi', defaultCPU: '1' },
        persistence: { defaultEnabled: false },
      },
    },
    'bench',
  );
}

export function percentile(sorted: number[], p: number): number {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

export function summarize(samples: number[]): { n: number; p50: number; p95: number; p99: number; max: number; mean: number } {
  const s = [...samples].sort((a, b) => a - b);
  return {
    n: s.length,
    p50: percentile(s, 50),
    p95: percentile(s, 95),
    p99: percentile(s, 99),
    max: s[s.length - 1] ?? NaN,
    mean: s.reduce((a, b) => a + b, 0) / (s.length || 1),
  };
}

export const fmt = (ms: number) => `${ms.toFixed(2)} ms`;

/** Runs `fn` `total` times with `concurrency` in flight; returns each call's latency (ms) and the wall time. */
export async function load(total: number, concurrency: number, fn: () => Promise<void>): Promise<{ latencies: number[]; wallMs: number }> {
  const latencies: number[] = [];
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < total) {
        next++;
        const t = performance.now();
        await fn();
        latencies.push(performance.now() - t);
      }
    }),
  );
  return { latencies, wallMs: performance.now() - started };
}

export function rssMiB(): number {
  return process.memoryUsage().rss / 1024 / 1024;
}

const MUTATING = new Set(['POST', 'PUT', 'PATCH', 'APPLY', 'DELETE', 'DELETECOLLECTION']);

/**
 * Writes the apiserver has served so far, by resource (`pods`, `pods/binding`, `events`, ...), from its own
 * `apiserver_request_total`: every client's, the scheduler's, the controller-manager's and kwok's included.
 */
export async function apiserverWrites(client: BenchStack['client']): Promise<Map<string, number>> {
  const text = await client.request<string>({ path: '/metrics' });
  const writes = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line.startsWith('apiserver_request_total{')) continue;
    const labels = Object.fromEntries([...line.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
    if (!MUTATING.has(labels.verb!)) continue;
    // A refused or failed request stored nothing; it is listed with its code and left out of the total. (The
    // endpoints controller's 404 DELETEs of Endpoints that never existed, after a selector-less Service is
    // deleted, are such.)
    const resource = labels.subresource ? `${labels.resource}/${labels.subresource}` : labels.resource!;
    const key = labels.code?.startsWith('2') ? resource : `${resource} (${labels.code})`;
    writes.set(key, (writes.get(key) ?? 0) + Number(line.slice(line.lastIndexOf(' ') + 1)));
  }
  return writes;
}

/** What was written between two apiserverWrites() readings: per resource, most first, and the total. */
export function writesBetween(before: Map<string, number>, after: Map<string, number>): { total: number; byResource: [string, number][] } {
  const byResource = [...after]
    .map(([k, n]) => [k, n - (before.get(k) ?? 0)] as [string, number])
    .filter(([, n]) => n > 0)
    .sort((a, b) => b[1] - a[1]);
  return { total: byResource.filter(([k]) => !k.includes(' (')).reduce((a, [, n]) => a + n, 0), byResource };
}

/**
 * Resolves once the apiserver has served no write for `quietMs` (leases excepted: every component renews its
 * own every few seconds), or after `maxMs`. A phase's clean-up goes on in the controllers after its last object
 * is gone (the endpoints controller, under the controller-manager's client rate limit, still deletes the
 * Endpoints of a phase's Services seconds later); each phase starts after it, so none pays for the one before.
 * Returns how long it waited.
 */
export async function waitForQuiet(client: BenchStack['client'], quietMs = 1500, maxMs = 60_000): Promise<number> {
  const start = performance.now();
  const count = async () => [...(await apiserverWrites(client))].filter(([k]) => !k.startsWith('leases')).reduce((a, [, n]) => a + n, 0);
  let last = await count();
  let quietSince = performance.now();
  while (performance.now() - quietSince < quietMs && performance.now() - start < maxMs) {
    await new Promise((r) => setTimeout(r, 250));
    const now = await count();
    if (now !== last) {
      last = now;
      quietSince = performance.now();
    }
  }
  return performance.now() - start;
}

const CONTROL_PLANE = ['kube-apiserver', 'etcd', 'kine', 'kube-controller', 'kube-scheduler', 'kwok'];

/**
 * CPU seconds used so far by each control-plane process and by this one, from /proc (Linux; empty elsewhere).
 * Two readings show who was busy in between.
 */
export async function processCpu(): Promise<Map<string, number>> {
  const { readdir, readFile } = await import('node:fs/promises');
  const ticks = 100; // USER_HZ
  const cpu = new Map<string, number>();
  const read = async (pid: string) => {
    try {
      const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      return { comm, seconds: (Number(fields[11]) + Number(fields[12])) / ticks };
    } catch {
      return undefined;
    }
  };
  const pids = await readdir('/proc').then(
    (names) => names.filter((p) => /^\d+$/.test(p)),
    () => [] as string[],
  );
  for (const pid of pids) {
    const p = await read(pid);
    if (!p) continue;
    const name = pid === String(process.pid) ? 'vdi-operator (bench process)' : CONTROL_PLANE.find((c) => p.comm.startsWith(c));
    if (name) cpu.set(name, (cpu.get(name) ?? 0) + p.seconds);
  }
  return cpu;
}

/** CPU seconds between two processCpu() readings, most first. */
export function cpuBetween(before: Map<string, number>, after: Map<string, number>): string {
  return [...after]
    .map(([k, s]) => [k, s - (before.get(k) ?? 0)] as const)
    .sort((a, b) => b[1] - a[1])
    .map(([k, s]) => `${k} ${s.toFixed(1)} s`)
    .join(', ');
}
