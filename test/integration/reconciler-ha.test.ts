// Two replicas under leader election, and a replica killed in the middle of a create storm: exactly one
// reconciles, the other takes over within the lease duration when the leader dies, and a restart converges
// with no duplicate and no leaked object.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { V1Pod } from '@kubernetes/client-node';
import { AUTH_MIDDLEWARE_NAME, NETWORK_POLICY_NAME } from '../../operator/builders.ts';
import { childName } from '../../operator/naming.ts';
import type { Service } from '../../src/service.ts';
import { adminClient, clusterInfo, eventually, testNamespace } from '../support/cluster.ts';
import { spawnReconciler, type ReconcilerProcess } from '../support/reconciler-process.ts';
import {
  TEST_LEASE_ENV,
  createSession,
  createTemplate,
  deleteNamespace,
  leadingController,
  sessionInPhase,
  sessionsPath,
  startReconciler,
} from '../support/reconciler.ts';
import type { VDISession } from '../../operator/v1alpha1.ts';

const client = adminClient();
const LEASE_MS = Number(TEST_LEASE_ENV.VDI_LEASE_DURATION_MS);
let template: string;
const namespaces: string[] = [];
const services: Service[] = [];
const children: ReconcilerProcess[] = [];

beforeAll(async () => {
  // CPU-only, small desktops: a 30-session storm fits on the shared cluster beside other test files.
  template = (await createTemplate(client, { resources: { defaultGPU: 0, maxGPU: 1, defaultMemory: '256Mi', defaultCPU: '100m' } })).metadata.name!;
});

// Replicas watch every namespace: none may outlive its test and reconcile the next one's sessions.
afterEach(async () => {
  for (const child of children.splice(0)) await child.kill();
  // Sessions need a running reconciler to lift their finalizers: clean up before it stops.
  if (services.length > 0) for (const ns of namespaces.splice(0)) await deleteNamespace(client, ns);
  for (const service of services.splice(0)) await service.stop();
});

afterAll(async () => {
  for (const ns of namespaces) await deleteNamespace(client, ns);
  await client.delete(`/apis/vdi.kasm.io/v1alpha1/vditemplates/${template}`).catch(() => undefined);
});

async function namespace(prefix: string): Promise<string> {
  const ns = await testNamespace(client, prefix);
  namespaces.push(ns);
  return ns;
}

interface Lease {
  spec: { holderIdentity?: string; leaseTransitions?: number };
}
const leasePath = (ns: string) => `/apis/coordination.k8s.io/v1/namespaces/${ns}/leases/vdi-operator-leader`;

describe('two replicas with leader election', () => {
  it('lets exactly one reconcile, and the other take over within the lease duration when the leader dies', async () => {
    const ns = await namespace('ha');
    const first = spawnReconciler({ kubeconfig: clusterInfo().kubeconfig, namespace: ns, identity: 'replica-a' });
    children.push(first);
    await first.leading;
    const second = await startReconciler({ namespace: ns, identity: 'replica-b' });
    services.push(second);
    await eventually(async () => second.caches.sessions.hasSynced());

    // replica-a holds the lease; replica-b campaigns without winning.
    expect((await client.get<Lease>(leasePath(ns))).spec.holderIdentity).toBe('replica-a');
    await createSession(client, ns, 'before', { template });
    await sessionInPhase(client, ns, 'before', 'Running');
    expect(second.isLeader()).toBe(false);
    expect(second.controller()).toBeUndefined();

    // A dead leader neither renews nor releases its lease.
    await first.kill();
    const killedAt = Date.now();
    const controller = await leadingController(second, 3 * LEASE_MS);
    const takeoverMs = Date.now() - killedAt;
    console.log(`[reconciler] takeover after the leader was killed: ${takeoverMs} ms (lease ${LEASE_MS} ms)`);
    const lease = await client.get<Lease>(leasePath(ns));
    expect(lease.spec.holderIdentity).toBe('replica-b');
    expect(lease.spec.leaseTransitions).toBeGreaterThanOrEqual(1);

    await createSession(client, ns, 'after', { template });
    await sessionInPhase(client, ns, 'after', 'Running');
    // Reconciled by the new leader.
    expect(controller.sessionWrites(`${ns}/after`)).toBeGreaterThan(0);
  });
});

describe('a replica killed in the middle of a create storm', () => {
  it('converges after a restart: every session Running with exactly one of each child, nothing leaked', async () => {
    const ns = await namespace('storm');
    const doomed = spawnReconciler({ kubeconfig: clusterInfo().kubeconfig, namespace: ns, identity: 'doomed' });
    children.push(doomed);
    await doomed.leading;

    const names = Array.from({ length: 30 }, (_, i) => `s${String(i).padStart(2, '0')}`);
    const creating = Promise.all(names.map((name) => createSession(client, ns, name, { template })));
    // Killed as soon as its first desktops exist: in the middle of writing children and statuses.
    await eventually(async () => (await client.list<V1Pod>(`/api/v1/namespaces/${ns}/pods`)).items.length >= 3, 30_000, 10);
    await doomed.kill();
    await creating;
    const at = async (path: string) => (await client.list(path)).items.length;
    const running = (await client.list<VDISession>(sessionsPath(ns))).items.filter((s) => s.status?.phase === 'Running').length;
    console.log(
      `[reconciler] when the replica was killed: ${await at(`/api/v1/namespaces/${ns}/pods`)} pods, ${await at(`/api/v1/namespaces/${ns}/secrets`)} secrets, ${running} sessions Running, of ${names.length}`,
    );

    const successor = await startReconciler({ namespace: ns, identity: 'successor' });
    services.push(successor);
    await leadingController(successor, 3 * LEASE_MS);
    await eventually(async () => {
      const list = await client.list<VDISession>(sessionsPath(ns));
      return list.items.length === names.length && list.items.every((s) => s.status?.phase === 'Running');
    }, 60_000).catch(async (err: unknown) => {
      // What is stuck, and where (the apiserver's view, the successor's caches and queue): the assertion alone
      // said only "condition not met".
      const controller = successor.controller();
      console.log(`[reconciler] successor leading: ${successor.isLeader()}, queue ${controller?.queue.length}`);
      const pods = new Map((await client.list<V1Pod>(`/api/v1/namespaces/${ns}/pods`)).items.map((p) => [p.metadata!.name!, p]));
      for (const s of (await client.list<VDISession>(sessionsPath(ns))).items.filter((s) => s.status?.phase !== 'Running')) {
        const key = `${ns}/${s.metadata.name}`;
        const podName = childName(s);
        const pod = pods.get(podName);
        const cached = {
          session: successor.caches.sessions.get(key)?.metadata.resourceVersion,
          pod: successor.caches.pods.get(`${ns}/${podName}`)?.metadata?.resourceVersion,
        };
        console.log(
          `[reconciler] not Running: ${key} rv ${s.metadata.resourceVersion} ${JSON.stringify(s.status)} finalizers ${JSON.stringify(s.metadata.finalizers)}; ` +
            `pod ${JSON.stringify(pod && { rv: pod.metadata?.resourceVersion, phase: pod.status?.phase, conditions: pod.status?.conditions, node: pod.spec?.nodeName })}; ` +
            `cached ${JSON.stringify(cached)}, due in ${(controller?.queue.dueAt(key) ?? NaN) - Date.now()} ms, writes ${JSON.stringify(controller?.sessionWritesByKind(key))}`,
        );
      }
      const nodes = await client.list<{ metadata: { name: string }; spec?: { taints?: unknown } }>('/api/v1/nodes');
      console.log(`[reconciler] nodes: ${JSON.stringify(nodes.items.map((n) => [n.metadata.name, n.spec?.taints]))}`);
      throw err;
    });

    const ours = { labelSelector: 'app.kubernetes.io/managed-by=vdi-operator' };
    const count = async (path: string) => (await client.list<{ metadata: { labels: Record<string, string> } }>(path, ours)).items;
    const expected: [string, number][] = [
      [`/api/v1/namespaces/${ns}/pods`, 1],
      [`/api/v1/namespaces/${ns}/secrets`, 1],
      [`/api/v1/namespaces/${ns}/services`, 1],
      [`/apis/traefik.io/v1alpha1/namespaces/${ns}/ingressroutes`, 1],
    ];
    for (const [path, perSession] of expected) {
      const items = await count(path);
      const bySession = new Map<string, number>();
      for (const item of items) {
        const session = item.metadata.labels['vdi.kasm.io/session']!;
        bySession.set(session, (bySession.get(session) ?? 0) + 1);
      }
      expect([...bySession.keys()].sort(), path).toEqual(names);
      expect(
        [...bySession.values()].every((n) => n === perSession),
        path,
      ).toBe(true);
    }
    // The namespace's shared auth Middleware and NetworkPolicy: one each, for all 30 sessions.
    for (const [path, name] of [
      [`/apis/traefik.io/v1alpha1/namespaces/${ns}/middlewares`, AUTH_MIDDLEWARE_NAME],
      [`/apis/networking.k8s.io/v1/namespaces/${ns}/networkpolicies`, NETWORK_POLICY_NAME],
    ] as const) {
      const items = (await client.list<{ metadata: { name: string; labels: Record<string, string> } }>(path, ours)).items;
      expect(
        items.map((i) => i.metadata.name),
        path,
      ).toEqual([name]);
      expect(items[0]!.metadata.labels, path).not.toHaveProperty('vdi.kasm.io/session');
    }
    // Every pod is its session's: none from a session that does not exist, none twice.
    const pods = (await client.list<V1Pod>(`/api/v1/namespaces/${ns}/pods`)).items;
    expect(pods.map((p) => p.metadata!.name).sort()).toEqual(names.map((n) => `vdi-${n}`));
  });
});
