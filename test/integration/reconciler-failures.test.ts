// What the reconciler reports when a session cannot run: a failing image fails fast and frees its slice, a
// missing template waits (and recovers when the template appears), a request over the template's limits fails
// without a pod.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { V1Pod } from '@kubernetes/client-node';
import { AUTH_MIDDLEWARE_NAME, NETWORK_POLICY_NAME } from '../../operator/builders.ts';
import type { SessionController } from '../../operator/controller.ts';
import { FINALIZER, type VDITemplate } from '../../operator/v1alpha1.ts';
import type { Service } from '../../src/service.ts';
import { adminClient, eventually, testNamespace } from '../support/cluster.ts';
import {
  createSession,
  createTemplate,
  deleteNamespace,
  getOrUndefined,
  gone,
  leadingController,
  sessionInPhase,
  sessionWhere,
  startReconciler,
  templateManifest,
} from '../support/reconciler.ts';

const client = adminClient();
let ns: string;
let service: Service;
let controller: SessionController;
const templates: string[] = [];

async function template(spec: Parameters<typeof createTemplate>[1]): Promise<VDITemplate> {
  const created = await createTemplate(client, spec);
  templates.push(created.metadata.name!);
  return created;
}

beforeAll(async () => {
  ns = await testNamespace(client, 'recfail');
  service = await startReconciler({ namespace: ns });
  controller = await leadingController(service);
});

afterAll(async () => {
  await deleteNamespace(client, ns);
  await service?.stop();
  for (const name of templates) await client.delete(`/apis/vdi.kasm.io/v1alpha1/vditemplates/${name}`).catch(() => undefined);
});

const podPath = (name: string) => `/api/v1/namespaces/${ns}/pods/${name}`;

describe('a desktop image that cannot be pulled', () => {
  it('fails the session with ImagePullBackOff at once and deletes its pod, releasing the GPU slice', async () => {
    const broken = await template({ image: 'ghcr.io/selkies-project/nvidia-egl-desktop:broken' });
    await createSession(client, ns, 'broken', { template: broken.metadata.name! });
    const failed = await sessionInPhase(client, ns, 'broken', 'Failed');
    expect(failed.status?.reason).toMatch(/^(ImagePullBackOff|ErrImagePull)$/);
    expect(failed.status?.message).toContain('container desktop');
    expect(failed.status?.conditions?.find((c) => c.type === 'Ready')).toMatchObject({ status: 'False', reason: failed.status?.reason });
    await gone(client, podPath('vdi-broken'));
    // Terminal: the reconciler does not start another pod.
    await controller.queue.idle();
    expect(await getOrUndefined<V1Pod>(client, podPath('vdi-broken'))).toBeUndefined();
    expect((await sessionInPhase(client, ns, 'broken', 'Failed')).status?.reason).toBe(failed.status?.reason);
  });
});

describe('a session naming a template that does not exist', () => {
  it('waits in Pending with TemplateNotFound, then runs once the template is created', async () => {
    const name = templateManifest().metadata.name!;
    await createSession(client, ns, 'early', { template: name, resources: { gpu: 0 } });
    const pending = await sessionWhere(client, ns, 'early', (s) => s.status?.reason === 'TemplateNotFound');
    expect(pending.status?.phase).toBe('Pending');
    expect(pending.status?.message).toContain(name);
    expect(await getOrUndefined<V1Pod>(client, podPath('vdi-early'))).toBeUndefined();

    await createTemplate(client, { resources: { defaultGPU: 0, maxGPU: 1 } }, name);
    templates.push(name);
    const running = await sessionInPhase(client, ns, 'early', 'Running');
    expect(running.status?.reason).toBe('Ready');
    expect(running.status?.podName).toBe('vdi-early');
  });
});

describe('a session asking for more than its template allows', () => {
  it('fails with ExceedsTemplateLimits and never gets a pod', async () => {
    const small = await template({ resources: { defaultGPU: 0, maxGPU: 0, maxMemory: '4Gi' } });
    await createSession(client, ns, 'greedy', { template: small.metadata.name!, resources: { gpu: 1 } });
    const failed = await sessionInPhase(client, ns, 'greedy', 'Failed');
    expect(failed.status?.reason).toBe('ExceedsTemplateLimits');
    expect(failed.status?.message).toContain('maxGPU');
    await controller.queue.idle();
    expect(await getOrUndefined<V1Pod>(client, podPath('vdi-greedy'))).toBeUndefined();
  });
});

describe('a session without the finalizer (a cluster without the admission policy, or taken off by hand)', () => {
  it('gets it back from the reconciler, so its deletion stays graceful', async () => {
    const t = await template({ resources: { defaultGPU: 0, maxGPU: 1 } });
    await createSession(client, ns, 'bare', { template: t.metadata.name!, resources: { gpu: 0 } });
    await sessionInPhase(client, ns, 'bare', 'Running');
    await controller.queue.idle();
    const path = `/apis/vdi.kasm.io/v1alpha1/namespaces/${ns}/vdisessions/bare`;
    const before = controller.sessionWritesByKind(`${ns}/bare`).finalizer ?? 0;
    await client.mergePatch(path, { metadata: { finalizers: null } });
    const back = await sessionWhere(client, ns, 'bare', (s) => (s.metadata.finalizers ?? []).includes(FINALIZER));
    expect(back.metadata.finalizers).toEqual([FINALIZER]);
    expect(controller.sessionWritesByKind(`${ns}/bare`).finalizer).toBe(before + 1);
  });
});

describe("the namespace's shared NetworkPolicy and auth Middleware", () => {
  it('come back when deleted or changed while its sessions run', async () => {
    const t = await template({ resources: { defaultGPU: 0, maxGPU: 1 } });
    await createSession(client, ns, 'guarded', { template: t.metadata.name!, resources: { gpu: 0 } });
    const running = await sessionInPhase(client, ns, 'guarded', 'Running');
    // Quiet first: the cache holds the Running session, nothing is queued and no delayed run is due before
    // its expiry, so whatever reconciles the session next is the change below.
    const key = `${ns}/guarded`;
    await eventually(async () => {
      const due = controller.queue.dueAt(key);
      return (
        service.caches.sessions.get(key)?.metadata.resourceVersion === running.metadata.resourceVersion &&
        (due === undefined || due > Date.now() + 60_000)
      );
    });
    await controller.queue.idle();
    const policyPath = `/apis/networking.k8s.io/v1/namespaces/${ns}/networkpolicies/${NETWORK_POLICY_NAME}`;
    const authPath = `/apis/traefik.io/v1alpha1/namespaces/${ns}/middlewares/${AUTH_MIDDLEWARE_NAME}`;
    const before = await client.get<{ metadata: { uid: string }; spec: unknown }>(policyPath);

    await client.delete(policyPath);
    await client.mergePatch(authPath, { spec: { forwardAuth: { address: 'http://elsewhere.example/' } } });
    const back = await eventually(async () => {
      const p = await getOrUndefined<{ metadata: { uid: string }; spec: unknown }>(client, policyPath);
      return p && p.metadata.uid !== before.metadata.uid ? p : undefined;
    });
    expect(back.spec).toEqual(before.spec);
    await eventually(async () => {
      const m = await client.get<{ spec: { forwardAuth: { address: string } } }>(authPath);
      return m.spec.forwardAuth.address !== 'http://elsewhere.example/';
    });
  });
});
