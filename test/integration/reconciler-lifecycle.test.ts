// The embedded reconciler on the real control plane: a VDISession written with the Kubernetes client becomes a
// desktop pod with its Secret, Service, routing and NetworkPolicy, reports a truthful status, and terminates
// cleanly, keeping the user's home for the next session.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { V1Ingress, V1NetworkPolicy, V1PersistentVolumeClaim, V1Pod, V1Secret, V1Service } from '@kubernetes/client-node';
import {
  buildIngressRoute,
  AUTH_MIDDLEWARE_NAME,
  NETWORK_POLICY_NAME,
  buildAuthMiddleware,
  buildNetworkPolicy,
  buildPod,
  buildEndpointSlice,
  buildService,
  type TraefikIngressRoute,
  type TraefikMiddleware,
} from '../../operator/builders.ts';
import { containsDesired, type SessionController } from '../../operator/controller.ts';
import { pvcName } from '../../operator/naming.ts';
import { resolveSession } from '../../operator/resolve.ts';
import { FINALIZER, type VDISession, type VDITemplate } from '../../operator/v1alpha1.ts';
import { loadConfig, reconcilerConfigFrom } from '../../src/config.ts';
import type { Service } from '../../src/service.ts';

import { adminClient, eventually, testNamespace } from '../support/cluster.ts';
import {
  createSession,
  createTemplate,
  deleteNamespace,
  firstDifference,
  getOrUndefined,
  getSession,
  gone,
  leadingController,
  reconcilerEnv,
  sessionInPhase,
  sessionPath,
  sessionWhere,
  startReconciler,
} from '../support/reconciler.ts';

const client = adminClient();
// What the reconciler under test builds with: the same environment gives the same config.
const reconcilerConfig = reconcilerConfigFrom(loadConfig(reconcilerEnv('unused', 'unused'), []));

let ns: string;
let service: Service;
let controller: SessionController;
let template: VDITemplate;
const owned: string[] = [];

beforeAll(async () => {
  ns = await testNamespace(client, 'rec');
  template = await createTemplate(client, { persistence: { defaultEnabled: true, defaultSize: '1Gi', maxSize: '10Gi', mountPath: '/home/ubuntu' } });
  owned.push(template.metadata.name!);
  service = await startReconciler({ namespace: ns });
  controller = await leadingController(service);
});

afterAll(async () => {
  await deleteNamespace(client, ns);
  await service?.stop();
  for (const name of owned) await client.delete(`/apis/vdi.kasm.io/v1alpha1/vditemplates/${name}`).catch(() => undefined);
});

const core = (kind: string, name: string) => `/api/v1/namespaces/${ns}/${kind}/${name}`;
const traefik = (kind: string, name: string) => `/apis/traefik.io/v1alpha1/namespaces/${ns}/${kind}/${name}`;
const netpol = (name: string) => `/apis/networking.k8s.io/v1/namespaces/${ns}/networkpolicies/${name}`;
const ingress = (name: string) => `/apis/networking.k8s.io/v1/namespaces/${ns}/ingresses/${name}`;

/** A PersistentVolume reserved for one claim, so the claim binds and the scheduler accepts the pod. */
async function volumeFor(claim: string): Promise<string> {
  const name = `pv-${ns}-${claim}`.slice(0, 63).replace(/-+$/, '');
  await client.create('/api/v1/persistentvolumes', {
    apiVersion: 'v1',
    kind: 'PersistentVolume',
    metadata: { name },
    spec: {
      capacity: { storage: '10Gi' },
      accessModes: ['ReadWriteOnce'],
      persistentVolumeReclaimPolicy: 'Retain',
      hostPath: { path: `/tmp/${name}` },
      claimRef: { namespace: ns, name: claim },
    },
  });
  return name;
}

interface EventsV1 {
  items: { reason: string; action: string; type: string; note?: string; regarding: { name: string; kind: string } }[];
}

describe('a session from create to delete', () => {
  const user = 'alice@example.com';
  let session: VDISession;
  let home: string;
  let homeUid: string;

  it('gets a finalizer, every child object and a Running status with url, pod, node, times and conditions', async () => {
    home = pvcName(user, template.metadata.name!);
    await volumeFor(home);
    session = await createSession(client, ns, 'desk', { user, template: template.metadata.name!, timeout: '2h' });

    // The admission policy (deploy/rbac) put the finalizer on at creation, as it does for kubectl.
    expect(session.metadata.finalizers).toEqual([FINALIZER]);
    const running = await sessionInPhase(client, ns, 'desk', 'Running');
    expect(running.metadata.finalizers).toContain(FINALIZER);
    const status = running.status!;
    expect(status.reason).toBe('Ready');
    expect(status.url).toBe(`https://desk-${ns}.vdi.localhost/`);
    expect(status.podName).toBe('vdi-desk');
    expect(status.nodeName).toMatch(/^gpu-node-[12]$/);
    expect(Date.parse(status.startTime!)).not.toBeNaN();
    expect(Date.parse(status.expiresAt!) - Date.parse(status.startTime!)).toBe(2 * 3600_000);
    expect(status.observedGeneration).toBe(running.metadata.generation);
    const conditions = Object.fromEntries((status.conditions ?? []).map((c) => [c.type, c]));
    for (const type of ['Scheduled', 'Ready', 'Routed']) {
      expect(conditions[type], type).toMatchObject({ status: 'True', observedGeneration: running.metadata.generation });
      expect(Date.parse(conditions[type]!.lastTransitionTime)).not.toBeNaN();
    }
    session = running;
  });

  it("owns every child through an ownerReference, except the PVC and the namespace's shared auth Middleware and NetworkPolicy", async () => {
    const ref = {
      apiVersion: 'vdi.kasm.io/v1alpha1',
      kind: 'VDISession',
      name: 'desk',
      uid: session.metadata.uid,
      controller: true,
      blockOwnerDeletion: true,
    };
    const paths = [
      core('secrets', 'vdi-desk'),
      core('services', 'vdi-desk'),
      `/apis/discovery.k8s.io/v1/namespaces/${ns}/endpointslices/vdi-desk`,
      core('pods', 'vdi-desk'),
      traefik('ingressroutes', 'vdi-desk'),
    ];
    for (const path of paths) {
      const obj = await client.get<{ metadata: { ownerReferences?: unknown[]; labels?: Record<string, string> } }>(path);
      expect(obj.metadata.ownerReferences, path).toEqual([ref]);
      expect(obj.metadata.labels, path).toMatchObject({ 'vdi.kasm.io/session': 'desk', 'app.kubernetes.io/managed-by': 'vdi-operator' });
    }
    const pvc = await client.get<V1PersistentVolumeClaim>(core('persistentvolumeclaims', home));
    expect(pvc.metadata?.ownerReferences).toBeUndefined();
    homeUid = pvc.metadata!.uid!;
    for (const path of [traefik('middlewares', AUTH_MIDDLEWARE_NAME), netpol(NETWORK_POLICY_NAME)]) {
      const obj = await client.get<{ metadata: { ownerReferences?: unknown[]; labels?: Record<string, string> } }>(path);
      expect(obj.metadata.ownerReferences, path).toBeUndefined();
      expect(obj.metadata.labels, path).toMatchObject({ 'app.kubernetes.io/managed-by': 'vdi-operator' });
      expect(obj.metadata.labels, path).not.toHaveProperty('vdi.kasm.io/session');
    }
  });

  it('writes every object as the builders made it: the apiserver (Traefik CRDs included) accepted them unchanged', async () => {
    const resolution = resolveSession(session, template, reconcilerConfig);
    if (!resolution.ok) throw new Error(resolution.message);
    const auth = buildAuthMiddleware(session, reconcilerConfig);
    const livePodForSlice = await client.get<V1Pod>(core('pods', 'vdi-desk'));
    const expectations: [string, object][] = [
      [core('services', 'vdi-desk'), buildService(session)],
      // The Service has no selector: its one EndpointSlice is the reconciler's, listing the ready pod.
      [`/apis/discovery.k8s.io/v1/namespaces/${ns}/endpointslices/vdi-desk`, buildEndpointSlice(session, livePodForSlice)],
      [traefik('middlewares', AUTH_MIDDLEWARE_NAME), auth],
      [traefik('ingressroutes', 'vdi-desk'), buildIngressRoute(session, reconcilerConfig)],
      [netpol(NETWORK_POLICY_NAME), buildNetworkPolicy(session, reconcilerConfig)],
    ];
    // Admission adds the default not-ready/unreachable tolerations to a pod: ours must be among them.
    const desiredPod = buildPod(session, template, resolution.effective, reconcilerConfig, 'vdi-desk');
    const { tolerations, ...podSpec } = desiredPod.spec!;
    expectations.push([core('pods', 'vdi-desk'), { ...desiredPod, spec: podSpec }]);
    const livePod = await client.get<V1Pod>(core('pods', 'vdi-desk'));
    expect(livePod.spec!.tolerations).toEqual(expect.arrayContaining(tolerations!));
    for (const [path, desired] of expectations) {
      const actual = await client.get(path);
      expect(firstDifference(actual, desired), path).toBeUndefined();
      expect(containsDesired(actual, desired)).toBe(true);
    }
    const route = await client.get<TraefikIngressRoute>(traefik('ingressroutes', 'vdi-desk'));
    expect(route.spec.routes[0]!.match).toBe(`Host(\`desk-${ns}.vdi.localhost\`)`);
    expect(route.spec.routes[0]!.middlewares).toEqual([{ name: AUTH_MIDDLEWARE_NAME }]);
    const forward = await client.get<TraefikMiddleware>(traefik('middlewares', AUTH_MIDDLEWARE_NAME));
    expect(forward.spec.forwardAuth?.authResponseHeaders).toEqual(['Authorization', 'Cookie']);
    const policy = await client.get<V1NetworkPolicy>(netpol(NETWORK_POLICY_NAME));
    expect(policy.spec?.ingress?.[0]?._from ?? (policy.spec?.ingress?.[0] as { from?: unknown[] })?.from).toHaveLength(1);

    const pod = await client.get<V1Pod>(core('pods', 'vdi-desk'));
    const container = pod.spec!.containers[0]!;
    expect(container.resources?.limits).toMatchObject({ 'nvidia.com/gpu': '1' });
    expect(pod.spec!.runtimeClassName).toBe('nvidia');
    expect(pod.spec!.volumes?.find((v) => v.name === 'home')?.persistentVolumeClaim?.claimName).toBe(home);
    expect(container.env?.find((e) => e.name === 'SELKIES_BASIC_AUTH_PASSWORD')?.valueFrom?.secretKeyRef).toEqual({
      name: 'vdi-desk',
      key: 'password',
    });

    const secret = await client.get<V1Secret>(core('secrets', 'vdi-desk'));
    expect(Object.keys(secret.data ?? {}).sort()).toEqual(['password', 'presenceToken', 'turnToken']);
    // No credential is in the status, and the presence token reaches the desktop as a file, not in its environment.
    for (const key of ['password', 'presenceToken', 'turnToken']) {
      expect(JSON.stringify(session.status)).not.toContain(Buffer.from(secret.data![key]!, 'base64').toString());
    }
    expect(container.env?.some((e) => e.valueFrom?.secretKeyRef?.key === 'presenceToken')).toBe(false);
  });

  it('records no Event on the way to Running: the status and its conditions say that (a desktop’s end is an Event)', async () => {
    await controller.queue.idle();
    await eventually(async () => controller.events.length === 0);
    const list = await client.list<EventsV1['items'][number]>(`/apis/events.k8s.io/v1/namespaces/${ns}/events`);
    expect(list.items.filter((e) => e.regarding.name === 'desk' && e.regarding.kind === 'VDISession')).toEqual([]);
  });

  it('writes each child exactly once on the way to Running', async () => {
    await controller.queue.idle();
    const writes = controller.sessionWritesByKind(`${ns}/desk`);
    console.log(`[reconciler] API writes for the session, create → Running, Events excluded: ${JSON.stringify(writes)}`);
    // Every child is written exactly once, the finalizer never (admission added it). The status is written once per distinct state the session showed on
    // its way to Running (how many depends on how fast the scheduler and the volume binder answer; no-op
    // writes are skipped by statusEqual, unit-tested), so only its presence is asserted here.
    const { status = 0, ...children } = writes;
    expect(children).toEqual({
      Secret: 1,
      PersistentVolumeClaim: 1,
      NetworkPolicy: 1,
      Service: 1,
      Middleware: 1,
      IngressRoute: 1,
      Pod: 1,
      EndpointSlice: 1,
    });
    expect(status).toBeGreaterThanOrEqual(1);
  });

  it("keeps saying what the desktop runs with (its pod's limits) when the template's defaults change after the start", async () => {
    const templatePath = `/apis/vdi.kasm.io/v1alpha1/vditemplates/${template.metadata.name}`;
    const pod = await client.get<V1Pod>(`/api/v1/namespaces/${ns}/pods/vdi-desk`);
    const limits = pod.spec!.containers[0]!.resources!.limits!;
    const ran = { gpu: Number(limits['nvidia.com/gpu'] ?? 0), cpu: String(limits.cpu), memory: String(limits.memory) };
    expect((await sessionWhere(client, ns, 'desk', (s) => s.status?.phase === 'Running')).status!.resources).toEqual(ran);
    // An admin doubles the template's default memory: the running desktop keeps its 2Gi.
    const edited = await client.mergePatch<VDITemplate>(templatePath, { spec: { resources: { defaultMemory: '4Gi' } } });
    try {
      // The change reaches the reconciler (its template cache), which reconciles the template's sessions.
      await eventually(
        async () => service.caches.templates.get(template.metadata.name!)?.metadata.resourceVersion === edited.metadata.resourceVersion,
      );
      await controller.queue.idle();
      const after = (await getSession(client, ns, 'desk'))!;
      expect(after.status).toMatchObject({ phase: 'Running', resources: ran });
      expect((await client.get<V1Pod>(`/api/v1/namespaces/${ns}/pods/vdi-desk`)).spec!.containers[0]!.resources!.limits).toEqual(limits);
    } finally {
      await client.mergePatch(templatePath, { spec: { resources: { defaultMemory: template.spec.resources!.defaultMemory } } });
    }
  });

  it('on delete says Terminating, removes the pod, then the finalizer; the owned objects go and the PVC stays', async () => {
    const watched: string[] = [];
    const abort = new AbortController();
    const watching = client
      .watch<VDISession>(
        `/apis/vdi.kasm.io/v1alpha1/namespaces/${ns}/vdisessions`,
        { fieldSelector: 'metadata.name=desk', resourceVersion: session.metadata.resourceVersion },
        (event) => {
          const s = event.object;
          watched.push(`${event.type}:${s.status?.phase}:${s.metadata?.finalizers?.length ?? 0}`);
        },
        abort.signal,
        60_000,
      )
      .catch(() => undefined);
    await client.delete(sessionPath(ns, 'desk'));
    await gone(client, sessionPath(ns, 'desk'));
    // A read can see the deletion before the watch delivers it (kine's watch polls its table): wait for the event.
    await expect.poll(() => watched.at(-1), { timeout: 10_000 }).toMatch(/^DELETED:/);
    abort.abort();
    await watching;
    const terminating = watched.findIndex((w) => w.startsWith('MODIFIED:Terminating:1'));
    expect(terminating, watched.join(' ')).toBeGreaterThanOrEqual(0);
    // The finalizer was the only one: the session is gone once the reconciler has removed it.
    expect(watched.at(-1)).toMatch(/^DELETED:Terminating:/);

    await gone(client, core('pods', 'vdi-desk'));
    for (const path of [core('secrets', 'vdi-desk'), core('services', 'vdi-desk'), traefik('ingressroutes', 'vdi-desk')]) {
      await gone(client, path);
    }
    const pvc = await getOrUndefined<V1PersistentVolumeClaim>(client, core('persistentvolumeclaims', home));
    expect(pvc?.metadata?.uid).toBe(homeUid);
    // The namespace's shared objects stay for its next sessions.
    expect(await getOrUndefined(client, traefik('middlewares', AUTH_MIDDLEWARE_NAME))).toBeDefined();
    expect(await getOrUndefined(client, netpol(NETWORK_POLICY_NAME))).toBeDefined();
  });

  it("mounts the same PVC into the user's next session of the template", async () => {
    await createSession(client, ns, 'desk-again', { user, template: template.metadata.name! });
    await sessionInPhase(client, ns, 'desk-again', 'Running');
    await controller.queue.idle();
    const writes = controller.sessionWritesByKind(`${ns}/desk-again`);
    console.log(`[reconciler] API writes for a session reusing its home PVC, create → Running, Events excluded: ${JSON.stringify(writes)}`);
    const { status = 0, ...children } = writes;
    // The namespace's auth Middleware and NetworkPolicy are there already: nothing to write for them.
    expect(children).toEqual({ Secret: 1, Service: 1, IngressRoute: 1, Pod: 1, EndpointSlice: 1 });
    expect(status).toBeGreaterThanOrEqual(1);
    const pod = await client.get<V1Pod>(core('pods', 'vdi-desk-again'));
    expect(pod.spec!.volumes?.find((v) => v.name === 'home')?.persistentVolumeClaim?.claimName).toBe(home);
    const pvc = await client.get<V1PersistentVolumeClaim>(core('persistentvolumeclaims', home));
    expect(pvc.metadata?.uid).toBe(homeUid);
    const claims = await client.list<V1PersistentVolumeClaim>(`/api/v1/namespaces/${ns}/persistentvolumeclaims`);
    expect(claims.items).toHaveLength(1);
  });
});

describe('timeouts', () => {
  it('expires a session at its timeout: the status says Expired, then the session is deleted', async () => {
    const phases: string[] = [];
    const abort = new AbortController();
    const list = await client.list(`/apis/vdi.kasm.io/v1alpha1/namespaces/${ns}/vdisessions`);
    const watching = client
      .watch<VDISession>(
        `/apis/vdi.kasm.io/v1alpha1/namespaces/${ns}/vdisessions`,
        { fieldSelector: 'metadata.name=short', resourceVersion: list.metadata.resourceVersion },
        (event) => void phases.push(`${event.type}:${event.object.status?.phase ?? '-'}`),
        abort.signal,
        60_000,
      )
      .catch(() => undefined);
    await createSession(client, ns, 'short', { template: template.metadata.name!, timeout: '3s', persistence: { enabled: false } });
    const running = await sessionInPhase(client, ns, 'short', 'Running');
    expect(Date.parse(running.status!.expiresAt!) - Date.parse(running.status!.startTime!)).toBe(3000);
    await gone(client, sessionPath(ns, 'short'));
    // A read can see the deletion before the watch delivers it (kine's watch polls its table): wait for the event.
    await expect.poll(() => phases.at(-1), { timeout: 10_000 }).toMatch(/^DELETED:/);
    abort.abort();
    await watching;
    const expired = phases.indexOf('MODIFIED:Expired');
    expect(expired, phases.join(' ')).toBeGreaterThan(phases.indexOf('MODIFIED:Running'));
    expect(phases.at(-1)).toBe('DELETED:Expired');
    await gone(client, core('pods', 'vdi-short'));
  });
});

describe('drift', () => {
  beforeAll(async () => {
    await createSession(client, ns, 'drift', { template: template.metadata.name!, persistence: { enabled: false } });
    await sessionInPhase(client, ns, 'drift', 'Running');
  });

  it("puts back the Service's port when someone changes it", async () => {
    await client.mergePatch(core('services', 'vdi-drift'), { spec: { ports: [{ name: 'http', port: 9090, targetPort: 'http', protocol: 'TCP' }] } });
    const fixed = await eventually(async () => {
      const svc = await client.get<V1Service>(core('services', 'vdi-drift'));
      return svc.spec?.ports?.length === 1 && svc.spec.ports[0]!.port === 8080 ? svc : undefined;
    });
    expect(fixed.spec!.ports).toEqual([expect.objectContaining({ name: 'http', port: 8080, targetPort: 'http' })]);
  });

  it('recreates an IngressRoute deleted by hand', async () => {
    const before = await client.get<TraefikIngressRoute & { metadata: { uid: string } }>(traefik('ingressroutes', 'vdi-drift'));
    await client.delete(traefik('ingressroutes', 'vdi-drift'));
    const after = await eventually(async () => {
      const route = await getOrUndefined<TraefikIngressRoute & { metadata: { uid: string } }>(client, traefik('ingressroutes', 'vdi-drift'));
      return route && route.metadata.uid !== before.metadata.uid ? route : undefined;
    });
    expect(after.spec).toEqual(before.spec);
    const s = await sessionWhere(client, ns, 'drift', (x) => x.status?.phase === 'Running');
    expect(s.status?.conditions?.find((c) => c.type === 'Routed')?.status).toBe('True');
  });
});

describe('orphans', () => {
  it('deletes a pod and a route labelled as ours whose session does not exist', async () => {
    const labels = { 'app.kubernetes.io/managed-by': 'vdi-operator', 'vdi.kasm.io/session': 'ghost' };
    await client.create(`/api/v1/namespaces/${ns}/pods`, {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'vdi-ghost', labels },
      spec: { nodeName: 'cpu-node-1', containers: [{ name: 'desktop', image: 'desktop:test' }] },
    });
    await client.create(`/apis/traefik.io/v1alpha1/namespaces/${ns}/ingressroutes`, {
      apiVersion: 'traefik.io/v1alpha1',
      kind: 'IngressRoute',
      metadata: { name: 'vdi-ghost', labels },
      spec: {
        entryPoints: ['websecure'],
        routes: [{ match: 'Host(`ghost.vdi.localhost`)', kind: 'Rule', services: [{ name: 'vdi-ghost', port: 8080 }] }],
      },
    });
    await gone(client, core('pods', 'vdi-ghost'));
    await gone(client, traefik('ingressroutes', 'vdi-ghost'));
  });

  it('leaves alone objects of ours whose session exists', async () => {
    const pod = await client.get<V1Pod>(core('pods', 'vdi-drift'));
    expect(pod.metadata?.deletionTimestamp).toBeUndefined();
    expect((await client.get<VDISession>(sessionPath(ns, 'drift'))).status?.phase).toBe('Running');
  });
});

describe('orphans in ingress mode', () => {
  beforeAll(async () => {
    // A reconciler in ingress mode takes over the Lease: it routes with plain Ingresses, and watches those.
    await service.stop();
    service = await startReconciler({ namespace: ns, env: { VDI_INGRESS_MODE: 'ingress' } });
    controller = await leadingController(service);
    await eventually(async () => await getOrUndefined(client, ingress('vdi-drift')));
  });

  it('deletes an Ingress labelled as ours whose session does not exist', async () => {
    const labels = { 'app.kubernetes.io/managed-by': 'vdi-operator', 'vdi.kasm.io/session': 'phantom' };
    await client.create(`/apis/networking.k8s.io/v1/namespaces/${ns}/ingresses`, {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'Ingress',
      metadata: { name: 'vdi-phantom', labels },
      spec: {
        rules: [
          {
            host: 'phantom.vdi.localhost',
            http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: 'vdi-phantom', port: { number: 8080 } } } }] },
          },
        ],
      },
    });
    await gone(client, ingress('vdi-phantom'));
  });

  it('leaves alone the Ingress of a session that exists', async () => {
    const route = await client.get<V1Ingress>(ingress('vdi-drift'));
    expect(route.metadata?.deletionTimestamp).toBeUndefined();
    expect(route.metadata?.labels).toMatchObject({ 'vdi.kasm.io/session': 'drift' });
  });
});
