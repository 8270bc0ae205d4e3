// What the reconciler reports when a session cannot run: a failing image fails fast and frees its slice, a
// missing template waits (and recovers when the template appears), a request over the template's limits fails
// without a pod. And a session whose Service an older version made (with a cluster IP) gets a headless one.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { V1Pod, V1Service } from '@kubernetes/client-node';
import { authMiddlewareName, buildAuthMiddleware, buildService, legacyStripCookieName, type TraefikIngressRoute } from '../../operator/builders.ts';
import { childName } from '../../operator/naming.ts';
import type { SessionController } from '../../operator/controller.ts';
import { FINALIZER, type VDITemplate } from '../../operator/v1alpha1.ts';
import { loadConfig } from '../../src/config.ts';
import { reconcilerConfigFrom, type Service } from '../../src/service.ts';
import { adminClient, testNamespace } from '../support/cluster.ts';
import {
  createSession,
  createTemplate,
  deleteNamespace,
  getOrUndefined,
  gone,
  leadingController,
  reconcilerEnv,
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
    const small = await template({ resources: { defaultGPU: 1, maxGPU: 1, maxMemory: '4Gi' } });
    await createSession(client, ns, 'greedy', { template: small.metadata.name!, resources: { gpu: 2 } });
    const failed = await sessionInPhase(client, ns, 'greedy', 'Failed');
    expect(failed.status?.reason).toBe('ExceedsTemplateLimits');
    expect(failed.status?.message).toContain('maxGPU');
    await controller.queue.idle();
    expect(await getOrUndefined<V1Pod>(client, podPath('vdi-greedy'))).toBeUndefined();
  });
});

describe('children made by an earlier version', () => {
  it('a desktop Service with a cluster IP is replaced by a headless one (a cluster IP cannot be removed in place) and the session runs', async () => {
    const name = templateManifest().metadata.name!;
    // Held in Pending (no template yet) so that the old Service is in place before the reconciler writes one.
    const session = await createSession(client, ns, 'legacy', { template: name, resources: { gpu: 0 } });
    await sessionWhere(client, ns, 'legacy', (s) => s.status?.reason === 'TemplateNotFound');
    const old = buildService(session);
    delete old.spec!.clusterIP;
    const before = await client.create<V1Service>(`/api/v1/namespaces/${ns}/services`, old);
    expect(before.spec?.clusterIP).toMatch(/^\d+\.\d+\.\d+\.\d+$/);

    await createTemplate(client, { resources: { defaultGPU: 0, maxGPU: 1 } }, name);
    templates.push(name);
    await sessionInPhase(client, ns, 'legacy', 'Running');
    const after = await client.get<V1Service & { metadata: { uid: string } }>(`/api/v1/namespaces/${ns}/services/${old.metadata.name}`);
    expect(after.spec?.clusterIP).toBe('None');
    expect(after.metadata.uid).not.toBe(before.metadata?.uid);
    expect(after.metadata.ownerReferences?.map((r) => r.uid)).toEqual([session.metadata.uid]);
  });

  it('the cookie-blanking Middleware is deleted once the route no longer names it', async () => {
    const name = templateManifest().metadata.name!;
    const session = await createSession(client, ns, 'old-route', { template: name, resources: { gpu: 0 } });
    await sessionWhere(client, ns, 'old-route', (s) => s.status?.reason === 'TemplateNotFound');
    // What the earlier version wrote: our labels, owned by the session, a headers middleware blanking Cookie.
    const auth = buildAuthMiddleware(session, reconcilerConfigFrom(loadConfig(reconcilerEnv('unused', 'unused'), [])));
    const legacyPath = `/apis/traefik.io/v1alpha1/namespaces/${ns}/middlewares/${legacyStripCookieName(session)}`;
    await client.create(`/apis/traefik.io/v1alpha1/namespaces/${ns}/middlewares`, {
      ...auth,
      metadata: { ...auth.metadata, name: legacyStripCookieName(session) },
      spec: { headers: { customRequestHeaders: { Cookie: '' } } },
    });
    // A bystander in the same namespace that is not ours by name stays.
    await client.create(`/apis/traefik.io/v1alpha1/namespaces/${ns}/middlewares`, {
      apiVersion: 'traefik.io/v1alpha1',
      kind: 'Middleware',
      metadata: { name: 'someone-elses' },
      spec: { headers: { customRequestHeaders: { 'X-Team': 'a' } } },
    });

    await createTemplate(client, { resources: { defaultGPU: 0, maxGPU: 1 } }, name);
    templates.push(name);
    await sessionInPhase(client, ns, 'old-route', 'Running');
    await gone(client, legacyPath);
    const route = await client.get<TraefikIngressRoute>(`/apis/traefik.io/v1alpha1/namespaces/${ns}/ingressroutes/${childName(session)}`);
    expect(route.spec.routes[0]!.middlewares).toEqual([{ name: authMiddlewareName(session) }]);
    expect(await getOrUndefined(client, `/apis/traefik.io/v1alpha1/namespaces/${ns}/middlewares/someone-elses`)).toBeDefined();
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
