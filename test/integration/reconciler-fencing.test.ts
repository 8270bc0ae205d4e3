// Lost leadership fences the old leader. Two reconciler replicas, each with an identity of its own, on a control
// plane of this file's own that writes an audit log. The leader's connection to the apiserver stalls in the middle
// of a storm of new sessions (its reconciles hang on their writes, its lease renewals too); the other replica
// takes over; then the stall ends and whatever the old leader still had on its way would reach the apiserver. The
// audit log must show no write of the old leader's after the new leader took the Lease. A reconciler-only process
// also exits when it loses the Lease.
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { KubeConfig } from '@kubernetes/client-node';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ControlPlane, type AuditEvent } from '../../dev/control-plane.ts';
import type { VDISession } from '../../operator/v1alpha1.ts';
import { loadConfig } from '../../src/config.ts';
import type { KubeClient } from '../../src/kube/client.ts';
import { startService, type Service } from '../../src/service.ts';
import { requests } from '../support/audit.ts';
import { serviceAccountKubeConfig, serviceAccountUser } from '../support/chart.ts';
import { eventually } from '../support/cluster.ts';
import { spawnReconciler } from '../support/reconciler-process.ts';
import { createSession, createTemplate, leadingController, reconcilerEnv, sessionsPath } from '../support/reconciler.ts';
import { startStallProxy, type StallProxy } from '../support/stall-proxy.ts';

const NAMESPACE = 'vdi-fencing';
const WRITE_VERBS = new Set(['create', 'update', 'patch', 'delete', 'deletecollection']);
const leasePath = `/apis/coordination.k8s.io/v1/namespaces/${NAMESPACE}/leases/vdi-operator-leader`;

/** The audit fields this test reads beyond dev/control-plane.ts's AuditEvent. */
type TimedAuditEvent = AuditEvent & { requestReceivedTimestamp: string };

let cp: ControlPlane;
let admin: KubeClient;
let template: string;
const services: Service[] = [];
const proxies: StallProxy[] = [];

/** A ServiceAccount bound to cluster-admin: the apiserver tells its requests apart from the other replica's. */
async function identity(name: string): Promise<{ user: string; kubeConfig(server?: string): Promise<KubeConfig> }> {
  await admin.create(`/api/v1/namespaces/${NAMESPACE}/serviceaccounts`, { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name } });
  await admin.create('/apis/rbac.authorization.k8s.io/v1/clusterrolebindings', {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRoleBinding',
    metadata: { name: `fencing-${name}` },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'cluster-admin' },
    subjects: [{ kind: 'ServiceAccount', name, namespace: NAMESPACE }],
  });
  return {
    user: serviceAccountUser(NAMESPACE, name),
    kubeConfig: (server = cp.apiserverUrl) =>
      serviceAccountKubeConfig(admin, { namespace: NAMESPACE, name, server, caFile: path.join(cp.dir, 'certs/apiserver.crt') }),
  };
}

async function replica(name: string, kubeConfig: KubeConfig, onLeadershipLost?: () => void): Promise<Service> {
  const config = loadConfig(reconcilerEnv(NAMESPACE, name), []);
  const service = await startService({ config, kubeConfig, log: pino({ level: config.logLevel, base: { identity: name } }), onLeadershipLost });
  services.push(service);
  return service;
}

beforeAll(async () => {
  cp = await ControlPlane.start({ auditLog: true, volumes: 4, log: (line) => console.log(`[fencing cluster] ${line}`) });
  admin = cp.client();
  await admin.create('/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NAMESPACE } });
  template = (await createTemplate(admin, { resources: { defaultGPU: 0, maxGPU: 1, defaultMemory: '256Mi', defaultCPU: '100m' } })).metadata.name!;
});

afterAll(async () => {
  for (const service of services.splice(0)) await service.stop();
  for (const proxy of proxies.splice(0)) await proxy.close();
  await cp?.stop();
});

describe('a leader that loses its Lease in the middle of reconciles', () => {
  it('writes nothing after the other replica has taken the Lease', async () => {
    const a = await identity('replica-a');
    const b = await identity('replica-b');
    const proxy = await startStallProxy(new URL(cp.apiserverUrl));
    proxies.push(proxy);
    let lost!: () => void;
    const aLost = new Promise<void>((resolve) => (lost = resolve));
    const first = await replica('replica-a', await a.kubeConfig(proxy.url), () => lost());
    await leadingController(first);
    const second = await replica('replica-b', await b.kubeConfig());
    await eventually(async () => second.caches.sessions.hasSynced());

    // A storm of new sessions; the leader's link stalls once it has written the first desktops, with most of the
    // storm's writes still to make.
    const names = Array.from({ length: 20 }, (_, i) => `s${String(i).padStart(2, '0')}`);
    const creating = Promise.all(names.map((name) => createSession(admin, NAMESPACE, name, { template })));
    await eventually(async () => (await admin.list(`/api/v1/namespaces/${NAMESPACE}/pods`)).items.length >= 3, 30_000, 10);
    proxy.stall();
    const podsAtStall = (await admin.list(`/api/v1/namespaces/${NAMESPACE}/pods`)).items.length;
    await creating;

    // The stall ends as soon as the other replica leads: what the old leader has not cancelled by then goes out.
    await eventually(async () => !first.isLeader(), 30_000);
    const successor = await leadingController(second, 30_000);
    expect((await admin.get<{ spec: { holderIdentity: string } }>(leasePath)).spec.holderIdentity).toBe('replica-b');
    // The old leader had writes on their way when its term ended, and cancelled them.
    expect(proxy.dropped).toBeGreaterThan(0);
    proxy.resume();

    await eventually(async () => {
      const list = await admin.list<VDISession>(sessionsPath(NAMESPACE));
      return list.items.length === names.length && list.items.every((s) => s.status?.phase === 'Running');
    }, 60_000);
    expect(names.some((n) => successor.sessionWrites(`${NAMESPACE}/${n}`) > 0)).toBe(true);
    await aLost;
    console.log(`[fencing] pods when the leader's link stalled: ${podsAtStall} of ${names.length}; cancelled connections: ${proxy.dropped}`);

    const events = requests((await cp.readAuditLog()).events) as TimedAuditEvent[];
    const takeover = events
      .filter((e) => e.user.username === b.user && e.objectRef?.resource === 'leases' && e.verb === 'update' && e.responseStatus?.code === 200)
      .map((e) => e.requestReceivedTimestamp)
      .sort()[0];
    expect(takeover).toBeDefined();
    const writesOfA = events.filter((e) => e.user.username === a.user && WRITE_VERBS.has(e.verb));
    expect(writesOfA.filter((e) => e.requestReceivedTimestamp < takeover!).length).toBeGreaterThan(0);
    const late = writesOfA.filter((e) => e.requestReceivedTimestamp >= takeover!);
    // Its lease renewal that hung in the stall may arrive late, and is refused: the Lease changed meanwhile.
    const lateLeaseUpdates = late.filter((e) => e.objectRef?.resource === 'leases');
    expect(lateLeaseUpdates.every((e) => e.responseStatus?.code === 409)).toBe(true);
    expect(late.filter((e) => e.objectRef?.resource !== 'leases').map((e) => `${e.verb} ${e.requestURI} → ${e.responseStatus?.code}`)).toEqual([]);
  });

  it('exits when the process runs in VDI_MODE=reconciler', async () => {
    const c = await identity('replica-c');
    const proxy = await startStallProxy(new URL(cp.apiserverUrl));
    proxies.push(proxy);
    const kubeconfig = path.join(cp.dir, 'replica-c.kubeconfig');
    await writeFile(kubeconfig, (await c.kubeConfig(proxy.url)).exportConfig(), { mode: 0o600 });
    // The Lease of the first test is still held by replica-b: this replica campaigns in a namespace of its own.
    await admin.create('/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'vdi-fencing-exit' } });
    const child = spawnReconciler({ kubeconfig, namespace: 'vdi-fencing-exit', identity: 'replica-c' });
    try {
      await child.leading;
      const exited = new Promise<number | null>((resolve) => child.child.once('exit', (code) => resolve(code)));
      proxy.stall();
      expect(await exited).toBe(1);
    } finally {
      await child.kill();
    }
  });
});
