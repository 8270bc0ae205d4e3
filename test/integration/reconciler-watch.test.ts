// Watch supervision on a control plane of its own: the reconciler's caches survive an apiserver restart, and
// relist when the resourceVersion they resume from has been compacted away.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Informer, KubeObject } from '../../operator/informer.ts';
import { ControlPlane } from '../../dev/control-plane.ts';
import type { KubeClient } from '../../src/kube/client.ts';
import type { Service } from '../../src/service.ts';
import { eventually, testNamespace } from '../support/cluster.ts';
import { TEST_STAGES } from '../support/stages.ts';
import { createSession, createTemplate, leadingController, sessionInPhase, startReconciler } from '../support/reconciler.ts';

let cp: ControlPlane;
let client: KubeClient;
let service: Service;
let ns: string;
let template: string;

beforeAll(async () => {
  cp = await ControlPlane.start({ extraStages: TEST_STAGES, handleSignals: false });
  client = cp.client();
  ns = await testNamespace(client, 'watch');
  template = (await createTemplate(client, { resources: { defaultGPU: 0, maxGPU: 1, defaultMemory: '256Mi', defaultCPU: '100m' } })).metadata.name!;
  service = await startReconciler({ namespace: ns, kubeConfig: cp.kubeConfig() });
  await leadingController(service);
  await createSession(client, ns, 'first', { template });
  await sessionInPhase(client, ns, 'first', 'Running');
});

afterAll(async () => {
  await service?.stop();
  await cp?.stop();
});

const informers = () => Object.values(service.caches).filter((i: Informer<KubeObject>) => i.hasSynced()) as Informer<KubeObject>[];

/** The cache holds exactly what the apiserver lists. */
async function cacheMatchesServer(informer: Informer<KubeObject>, path: string, labelSelector?: string): Promise<boolean> {
  const list = await client.list<KubeObject>(path, { labelSelector });
  const server = list.items.map((o) => `${o.metadata?.namespace}/${o.metadata?.name}@${o.metadata?.resourceVersion}`).sort();
  const cached = informer
    .list()
    .map((o) => `${o.metadata?.namespace}/${o.metadata?.name}@${o.metadata?.resourceVersion}`)
    .sort();
  return JSON.stringify(server) === JSON.stringify(cached);
}

describe('the informer caches', () => {
  it('recover from an apiserver restart, and a session created afterwards is reconciled', async () => {
    const before = new Map(informers().map((i) => [i.name, i.stats.watches]));
    await cp.restartApiserver(2000);
    // Every watch broke and was opened again.
    await eventually(async () => informers().every((i) => i.stats.watches > before.get(i.name)!), 60_000);
    await createSession(client, ns, 'after-restart', { template });
    const running = await sessionInPhase(client, ns, 'after-restart', 'Running', 60_000);
    expect(running.status?.podName).toBe('vdi-after-restart');
  });

  it('relist when their resourceVersion was compacted away, and stay correct', async () => {
    const sessions = service.caches.sessions;
    const pods = service.caches.pods;
    const before = { sessionLists: sessions.stats.lists, sessionGone: sessions.stats.gone, podLists: pods.stats.lists, podGone: pods.stats.gone };
    // Changes the caches do not see (other kinds), so their resourceVersions fall behind; then compaction
    // removes the history, and the restart makes every watch resume from its now-compacted version.
    for (let i = 0; i < 20; i++) {
      await client.create(`/api/v1/namespaces/${ns}/configmaps`, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { generateName: 'churn-' } });
    }
    await cp.compactDatastore();
    await cp.restartApiserver();
    await eventually(async () => sessions.stats.gone > before.sessionGone && pods.stats.gone > before.podGone, 60_000);
    expect(sessions.stats.lists).toBeGreaterThan(before.sessionLists);
    expect(pods.stats.lists).toBeGreaterThan(before.podLists);

    await createSession(client, ns, 'after-compaction', { template });
    await sessionInPhase(client, ns, 'after-compaction', 'Running', 60_000);
    await eventually(async () => await cacheMatchesServer(sessions, '/apis/vdi.kasm.io/v1alpha1/vdisessions'));
    await eventually(async () => await cacheMatchesServer(pods, '/api/v1/pods', 'app.kubernetes.io/managed-by=vdi-operator'));
  });
});
