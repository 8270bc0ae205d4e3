// GPU exhaustion on a cluster of its own (one node, two time-slices), so other test files cannot change the
// arithmetic: the third session waits in Pending with the scheduler's reason and runs once a slice frees.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { V1Pod } from '@kubernetes/client-node';
import { ControlPlane } from '../../dev/control-plane.ts';
import type { KubeClient } from '../../src/kube/client.ts';
import type { Service } from '../../src/service.ts';
import { testNamespace } from '../support/cluster.ts';
import { TEST_STAGES } from '../support/stages.ts';
import {
  createSession,
  createTemplate,
  gone,
  leadingController,
  sessionInPhase,
  sessionPath,
  sessionWhere,
  startReconciler,
} from '../support/reconciler.ts';

let cp: ControlPlane;
let client: KubeClient;
let service: Service;
let ns: string;
let template: string;

beforeAll(async () => {
  cp = await ControlPlane.start({ nodes: [{ name: 'gpu-only', gpus: 2 }], extraStages: TEST_STAGES, handleSignals: false });
  client = cp.client();
  ns = await testNamespace(client, 'gpu');
  template = (await createTemplate(client)).metadata.name!;
  service = await startReconciler({ namespace: ns, kubeConfig: cp.kubeConfig() });
  await leadingController(service);
});

afterAll(async () => {
  await service?.stop();
  await cp?.stop();
});

describe('when every GPU slice is taken', () => {
  it('keeps the next session Pending with WaitingForGPU and the scheduler’s message, and runs it once a slice frees', async () => {
    for (const name of ['one', 'two']) await createSession(client, ns, name, { template });
    for (const name of ['one', 'two']) await sessionInPhase(client, ns, name, 'Running');

    await createSession(client, ns, 'three', { template });
    const waiting = await sessionWhere(client, ns, 'three', (s) => s.status?.reason === 'WaitingForGPU');
    expect(waiting.status?.phase).toBe('Pending');
    expect(waiting.status?.message).toContain('Insufficient nvidia.com/gpu');
    expect(waiting.status?.conditions?.find((c) => c.type === 'Scheduled')).toMatchObject({ status: 'False', reason: 'WaitingForGPU' });
    expect(waiting.status?.url).toBeUndefined();

    await client.delete(sessionPath(ns, 'one'));
    await gone(client, sessionPath(ns, 'one'));
    const running = await sessionInPhase(client, ns, 'three', 'Running');
    expect(running.status?.nodeName).toBe('gpu-only');
    const pod = await client.get<V1Pod>(`/api/v1/namespaces/${ns}/pods/vdi-three`);
    expect(pod.spec?.containers[0]?.resources?.limits?.['nvidia.com/gpu']).toBe('1');
  });
});
