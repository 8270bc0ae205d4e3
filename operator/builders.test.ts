import type { V1Container, V1EnvVar, V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import {
  PRESENCE_TOKEN_FILE,
  presenceHook,
  buildIngress,
  buildIngressRoute,
  buildAuthMiddleware,
  buildEndpointSlice,
  buildNetworkPolicy,
  buildPod,
  buildPvc,
  buildRouting,
  buildSecret,
  buildService,
  sessionUrl,
} from './builders.ts';
import type { ReconcilerConfig } from './config.ts';
import { pvcName } from './naming.ts';
import type { EffectiveSession } from './resolve.ts';
import type { VDISession, VDITemplate, VDITemplateSpec } from './v1alpha1.ts';
import { testReconcilerConfig } from '../test/support/reconciler-config.ts';

const config = testReconcilerConfig({ domain: 'vdi.example.com' });

const session: VDISession = {
  apiVersion: 'vdi.kasm.io/v1alpha1',
  kind: 'VDISession',
  metadata: { name: 'desk', namespace: 'team-a', uid: 'uid-1', generation: 3 },
  spec: { user: 'alice@example.com', template: 'ubuntu' },
};

function template(spec: Partial<VDITemplateSpec> = {}): VDITemplate {
  return {
    apiVersion: 'vdi.kasm.io/v1alpha1',
    kind: 'VDITemplate',
    metadata: { name: 'ubuntu', namespace: 'team-a' },
    spec: {
      image: 'ghcr.io/selkies-project/nvidia-egl-desktop:24.04-20241222100454',
      imagePullPolicy: 'IfNotPresent',
      displayName: 'Ubuntu',
      ...spec,
    },
  };
}

const gpuEffective: EffectiveSession = {
  gpu: 1,
  memory: '8Gi',
  cpu: '4',
  persistence: { enabled: true, size: '10Gi' },
  timeoutMs: 8 * 3_600_000,
  idle: { timeoutMs: undefined, warningMs: 300_000, maxAgeMs: undefined },
  encoder: 'nvh264enc',
};
const cpuEffective: EffectiveSession = { ...gpuEffective, gpu: 0, encoder: 'x264enc', persistence: { enabled: false, size: '10Gi' } };

function pod(effective = gpuEffective, t = template(), c: ReconcilerConfig = config): ReturnType<typeof buildPod> {
  return buildPod(session, t, effective, c, 'vdi-desk');
}
function desktop(p: V1Pod): V1Container {
  const container = p.spec?.containers[0];
  if (!container) throw new Error('no container');
  return container;
}
function env(p: V1Pod): V1EnvVar[] {
  return desktop(p).env ?? [];
}
function envValue(p: V1Pod, name: string): string | undefined {
  return env(p).find((e) => e.name === name)?.value;
}

const owned = [
  ['Secret', () => buildSecret(session, 'pw', 'tok', 'presence')],
  ['Pod', () => pod()],
  ['Service', () => buildService(session)],
  ['IngressRoute', () => buildIngressRoute(session, config)],
  ['Ingress', () => buildIngress(session, config)],
] as const;

const shared = [
  ['auth Middleware', () => buildAuthMiddleware(session, config), 'vdi-desktop-auth'],
  ['NetworkPolicy', () => buildNetworkPolicy(session, config), 'vdi-desktops'],
] as const;

describe("every object the namespace's sessions share", () => {
  it.each(shared)('%s is complete for server-side apply, named for the namespace, owned by no session', (kind, build, name) => {
    const object = build();
    expect(object.metadata).toEqual({
      name,
      namespace: 'team-a',
      labels: {
        'app.kubernetes.io/name': 'vdi-desktop',
        'app.kubernetes.io/component': expect.any(String),
        'app.kubernetes.io/part-of': 'vdi-operator',
        'app.kubernetes.io/managed-by': 'vdi-operator',
      },
    });
    // The same object whichever session of the namespace builds it.
    const other = { ...session, metadata: { ...session.metadata, name: 'other', uid: 'uid-2' }, spec: { ...session.spec, user: 'bob@example.com' } };
    expect(kind === 'NetworkPolicy' ? buildNetworkPolicy(other, config) : buildAuthMiddleware(other, config)).toEqual(object);
  });
});

describe('every owned object', () => {
  it.each(owned)('%s is complete for server-side apply and owned by the session', (_kind, build) => {
    const object = build();
    expect(object.apiVersion).toBeTruthy();
    expect(object.kind).toBeTruthy();
    expect(object.metadata.name).toMatch(/^vdi-desk/);
    expect(object.metadata.namespace).toBe('team-a');
    expect(object.metadata.ownerReferences).toEqual([
      { apiVersion: 'vdi.kasm.io/v1alpha1', kind: 'VDISession', name: 'desk', uid: 'uid-1', controller: true, blockOwnerDeletion: true },
    ]);
    expect(object.metadata.labels).toMatchObject({
      'app.kubernetes.io/name': 'vdi-desktop',
      'app.kubernetes.io/instance': 'desk',
      'app.kubernetes.io/component': expect.any(String),
      'app.kubernetes.io/part-of': 'vdi-operator',
      'app.kubernetes.io/managed-by': 'vdi-operator',
      'vdi.kasm.io/session': 'desk',
      'vdi.kasm.io/template': 'ubuntu',
    });
    expect(object.metadata.labels['vdi.kasm.io/user']).toMatch(/^alice_example\.com-[0-9a-f]+$/);
  });

  it('refuses to build owned objects for a session without a uid', () => {
    const noUid = { ...session, metadata: { ...session.metadata, uid: undefined } };
    expect(() => buildService(noUid)).toThrow(/uid/);
  });
});

describe('buildSecret', () => {
  it('is an Opaque Secret holding the given password and TURN token', () => {
    const secret = buildSecret(session, 's3cret', 'turn-tok', 'presence-tok');
    expect(secret.type).toBe('Opaque');
    expect(Buffer.from(secret.data?.password ?? '', 'base64').toString()).toBe('s3cret');
    expect(Buffer.from(secret.data?.turnToken ?? '', 'base64').toString()).toBe('turn-tok');
    expect(Buffer.from(secret.data?.presenceToken ?? '', 'base64').toString()).toBe('presence-tok');
  });
});

describe('the desktop reports its clients (presence)', () => {
  it("runs a report on Selkies' connect and disconnect hooks, to the service's presence URL for this session", () => {
    const p = pod();
    expect(envValue(p, 'SELKIES_RUN_AFTER_CONNECT')).toBe(presenceHook('connected'));
    expect(envValue(p, 'SELKIES_RUN_AFTER_DISCONNECT')).toBe(presenceHook('disconnected'));
    expect(envValue(p, 'VDI_PRESENCE_URL')).toBe('http://vdi-operator.vdi-system.svc:8080/presence/team-a/desk');
    expect(presenceHook('connected')).toMatch(/^python3 -c '[^']+' connected$/);
  });

  it('reads the token from a file mounted from the session Secret, never from the environment', () => {
    const p = pod();
    expect(envValue(p, 'VDI_PRESENCE_AUTH_FILE')).toBe(PRESENCE_TOKEN_FILE);
    const container = p.spec!.containers[0]!;
    expect(container.volumeMounts).toContainEqual({ name: 'presence', mountPath: '/var/run/vdi', readOnly: true });
    expect(p.spec!.volumes).toContainEqual({
      name: 'presence',
      secret: { secretName: 'vdi-desk', items: [{ key: 'presenceToken', path: 'presence-token' }], defaultMode: 0o440, optional: true },
    });
    expect(env(p).some((e) => e.valueFrom?.secretKeyRef?.key === 'presenceToken')).toBe(false);
  });

  it('keeps the hooks and presence settings out of a template’s reach', () => {
    const t = template({
      env: [
        { name: 'SELKIES_RUN_AFTER_CONNECT', value: 'true' },
        { name: 'VDI_PRESENCE_URL', value: 'http://evil' },
      ],
    });
    const p = pod(gpuEffective, t);
    expect(envValue(p, 'SELKIES_RUN_AFTER_CONNECT')).toBe(presenceHook('connected'));
    expect(envValue(p, 'VDI_PRESENCE_URL')).toContain('/presence/team-a/desk');
  });
});

describe('buildPvc', () => {
  const pvc = buildPvc(session, gpuEffective, testReconcilerConfig({ storageClassName: 'longhorn' }));

  it('the PVC has no ownerReference, so it outlives the session', () => {
    expect(pvc.metadata.ownerReferences).toBeUndefined();
  });

  it('is one RWO claim per user and template, sized from the effective settings', () => {
    expect(pvc.metadata.name).toBe(pvcName('alice@example.com', 'ubuntu'));
    expect(pvc.spec?.accessModes).toEqual(['ReadWriteOnce']);
    expect(pvc.spec?.resources?.requests).toEqual({ storage: '10Gi' });
    expect(pvc.spec?.storageClassName).toBe('longhorn');
  });

  it('is labelled by user and template, not by session, and records the exact user (and no retention promise: the StorageClass keeps the data)', () => {
    expect(pvc.metadata.labels['vdi.kasm.io/template']).toBe('ubuntu');
    expect(pvc.metadata.labels['vdi.kasm.io/user']).toMatch(/^alice_example\.com-/);
    expect(pvc.metadata.labels['vdi.kasm.io/session']).toBeUndefined();
    expect(pvc.metadata.annotations).toEqual({ 'vdi.kasm.io/user': 'alice@example.com' });
  });

  it('leaves storageClassName to the cluster default when not configured', () => {
    expect(buildPvc(session, gpuEffective, config).spec).not.toHaveProperty('storageClassName');
  });
});

describe('buildPod', () => {
  it('runs the template image as container desktop on port 8080 named http', () => {
    const p = pod();
    expect(p.spec?.containers).toHaveLength(1);
    expect(desktop(p)).toMatchObject({
      name: 'desktop',
      image: 'ghcr.io/selkies-project/nvidia-egl-desktop:24.04-20241222100454',
      imagePullPolicy: 'IfNotPresent',
      ports: [{ name: 'http', containerPort: 8080, protocol: 'TCP' }],
    });
    expect(p.spec?.hostname).toBe('desk');
  });

  it('requests a GPU slice and the nvidia runtime class when gpu > 0', () => {
    const p = pod();
    expect(desktop(p).resources).toEqual({
      requests: { memory: '8Gi', cpu: '4', 'nvidia.com/gpu': '1' },
      limits: { memory: '8Gi', cpu: '4', 'nvidia.com/gpu': '1' },
    });
    expect(p.spec?.runtimeClassName).toBe('nvidia');
    // Selkies 2.x's name: H.264 on NVENC where the GPU has it, else on the CPU.
    expect(envValue(p, 'SELKIES_ENCODER')).toBe('h264enc');
  });

  it('uses the configured GPU resource name and runtime class', () => {
    const c = testReconcilerConfig({ gpuResourceName: 'nvidia.com/gpu.shared', runtimeClassName: 'nvidia-cdi' });
    const p = pod(gpuEffective, template(), c);
    expect(desktop(p).resources?.limits?.['nvidia.com/gpu.shared']).toBe('1');
    expect(p.spec?.runtimeClassName).toBe('nvidia-cdi');
  });

  it('uses the H.264 encoder (x264 on the CPU) and no GPU limit or runtimeClass when gpu is 0', () => {
    const p = pod(cpuEffective);
    expect(envValue(p, 'SELKIES_ENCODER')).toBe('h264enc');
    expect(Object.keys(desktop(p).resources?.limits ?? {}).sort()).toEqual(['cpu', 'memory']);
    expect(Object.keys(desktop(p).resources?.requests ?? {}).sort()).toEqual(['cpu', 'memory']);
    expect(p.spec).not.toHaveProperty('runtimeClassName');
    expect(p.spec).not.toHaveProperty('tolerations');
  });

  it('leaves NVIDIA_VISIBLE_DEVICES of a GPU desktop to the device plugin, even when the template asks', () => {
    const p = pod(gpuEffective, template({ env: [{ name: 'NVIDIA_VISIBLE_DEVICES', value: 'all' }] }));
    expect(env(p).map((e) => e.name)).not.toContain('NVIDIA_VISIBLE_DEVICES');
    expect(envValue(pod(), 'NVIDIA_DRIVER_CAPABILITIES')).toBe('all');
  });

  it('shows a CPU-only desktop no GPU (NVIDIA_VISIBLE_DEVICES=void), whatever its template or image says', () => {
    const p = pod(cpuEffective, template({ env: [{ name: 'NVIDIA_VISIBLE_DEVICES', value: 'all' }] }));
    expect(env(p).filter((e) => e.name === 'NVIDIA_VISIBLE_DEVICES')).toEqual([{ name: 'NVIDIA_VISIBLE_DEVICES', value: 'void' }]);
  });

  it('keeps a CPU-only desktop off GPU nodes, and a GPU desktop free to use them', () => {
    const terms = pod(cpuEffective).spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms;
    expect(terms).toEqual([{ matchExpressions: [{ key: 'nvidia.com/gpu.present', operator: 'NotIn', values: ['true'] }] }]);
    expect(pod(gpuEffective).spec?.affinity).toBeUndefined();
  });

  it('the password is never a literal value in the pod', () => {
    const p = pod();
    const fromSecret = (name: string) => env(p).find((e) => e.name === name)?.valueFrom?.secretKeyRef;
    expect(fromSecret('SELKIES_BASIC_AUTH_PASSWORD')).toEqual({ name: 'vdi-desk', key: 'password' });
    expect(fromSecret('PASSWD')).toEqual({ name: 'vdi-desk', key: 'password' });
    expect(envValue(p, 'SELKIES_BASIC_AUTH_PASSWORD')).toBeUndefined();
    expect(envValue(p, 'PASSWD')).toBeUndefined();
    expect(
      env(p)
        .filter((e) => /PASSWORD|PASSWD|TOKEN/.test(e.name))
        .every((e) => e.value === undefined),
    ).toBe(true);
  });

  it('enables basic auth for the session user', () => {
    const p = pod();
    expect(envValue(p, 'SELKIES_ENABLE_BASIC_AUTH')).toBe('true');
    expect(envValue(p, 'SELKIES_BASIC_AUTH_USER')).toBe('alice@example.com');
  });

  it('escapes $ in the user so Kubernetes does not expand $(VAR) in it', () => {
    const odd = { ...session, spec: { ...session.spec, user: 'eve$(PASSWD)' } };
    expect(envValue(buildPod(odd, template(), gpuEffective, config, 's'), 'SELKIES_BASIC_AUTH_USER')).toBe('eve$$(PASSWD)');
  });

  it('builds the TURN REST URI from the Secret token, defined before it is referenced', () => {
    const p = pod();
    const names = env(p).map((e) => e.name);
    expect(env(p).find((e) => e.name === 'VDI_TURN_TOKEN')?.valueFrom?.secretKeyRef).toEqual({ name: 'vdi-desk', key: 'turnToken' });
    expect(envValue(p, 'SELKIES_TURN_REST_URI')).toBe('http://vdi-operator.vdi-system.svc:8080/turn/team-a/desk/$(VDI_TURN_TOKEN)');
    expect(names.indexOf('VDI_TURN_TOKEN')).toBeLessThan(names.indexOf('SELKIES_TURN_REST_URI'));
  });

  it('sets resize and UTC', () => {
    expect(envValue(pod(), 'SELKIES_ENABLE_RESIZE')).toBe('true');
    expect(envValue(pod(), 'TZ')).toBe('UTC');
  });

  it('template env cannot override SELKIES_BASIC_AUTH_PASSWORD, TURN or encoder settings', () => {
    const p = pod(
      gpuEffective,
      template({
        env: [
          { name: 'SELKIES_BASIC_AUTH_PASSWORD', value: 'hunter2' },
          { name: 'SELKIES_BASIC_AUTH_USER', value: 'mallory' },
          { name: 'PASSWD', value: 'hunter2' },
          { name: 'SELKIES_TURN_REST_URI', value: 'http://evil/turn' },
          { name: 'SELKIES_TURN_HOST', value: 'evil' },
          { name: 'SELKIES_ENCODER', value: 'jpeg' },
          { name: 'SELKIES_ENABLE_BASIC_AUTH', value: 'false' },
          { name: 'VDI_TURN_TOKEN', value: 'x' },
          { name: 'SELKIES_ENABLE_HTTPS', value: 'true' },
          { name: 'SELKIES_PORT', value: '9000' },
        ],
      }),
    );
    expect(JSON.stringify(env(p))).not.toMatch(/hunter2|mallory|evil/);
    expect(envValue(p, 'SELKIES_ENCODER')).toBe('h264enc');
    expect(envValue(p, 'SELKIES_ENABLE_BASIC_AUTH')).toBe('true');
    // Plain HTTP on 8080, where the Service and the route expect the desktop.
    expect(envValue(p, 'SELKIES_ENABLE_HTTPS')).toBe('false');
    expect(envValue(p, 'SELKIES_PORT')).toBeUndefined();
    expect(new Set(env(p).map((e) => e.name)).size).toBe(env(p).length);
  });

  it('appends other template env and lets it replace harmless defaults without duplicating names', () => {
    const p = pod(
      gpuEffective,
      template({
        env: [
          { name: 'SELKIES_FRAMERATE', value: '30' },
          { name: 'TZ', value: 'Europe/Berlin' },
        ],
      }),
    );
    expect(envValue(p, 'SELKIES_FRAMERATE')).toBe('30');
    expect(envValue(p, 'TZ')).toBe('Europe/Berlin');
    expect(env(p).filter((e) => e.name === 'TZ')).toHaveLength(1);
  });

  it('mounts a memory-backed /dev/shm sized by the template, 1Gi by default', () => {
    const volume = (p: V1Pod) => p.spec?.volumes?.find((v) => v.name === 'dshm');
    expect(volume(pod())?.emptyDir).toEqual({ medium: 'Memory', sizeLimit: '1Gi' });
    expect(volume(pod(gpuEffective, template({ sharedMemorySize: '4Gi' })))?.emptyDir?.sizeLimit).toBe('4Gi');
    expect(desktop(pod()).volumeMounts).toContainEqual({ name: 'dshm', mountPath: '/dev/shm' });
  });

  it('mounts the home PVC when persistence is enabled, else an emptyDir', () => {
    const home = (p: V1Pod) => p.spec?.volumes?.find((v) => v.name === 'home');
    expect(home(pod())?.persistentVolumeClaim?.claimName).toBe(pvcName('alice@example.com', 'ubuntu'));
    expect(home(pod(cpuEffective))).toEqual({ name: 'home', emptyDir: {} });
    expect(desktop(pod()).volumeMounts).toContainEqual({ name: 'home', mountPath: '/home/ubuntu' });
    const custom = pod(gpuEffective, template({ persistence: { mountPath: '/home/user' } }));
    expect(desktop(custom).volumeMounts).toContainEqual({ name: 'home', mountPath: '/home/user' });
  });

  it('probes TCP 8080, leniently for liveness', () => {
    expect(desktop(pod()).readinessProbe).toEqual({ tcpSocket: { port: 8080 }, periodSeconds: 5 });
    expect(desktop(pod()).livenessProbe).toEqual({
      tcpSocket: { port: 8080 },
      initialDelaySeconds: 60,
      periodSeconds: 30,
      failureThreshold: 10,
    });
  });

  it('is locked down: no service links, no API token, RuntimeDefault seccomp, 30 s grace', () => {
    expect(pod().spec).toMatchObject({
      restartPolicy: 'Always',
      enableServiceLinks: false,
      automountServiceAccountToken: false,
      terminationGracePeriodSeconds: 30,
      securityContext: { seccompProfile: { type: 'RuntimeDefault' } },
    });
  });

  it('uses a valid hostname for dotted session names', () => {
    const dotted = { ...session, metadata: { ...session.metadata, name: 'a.b' } };
    expect(buildPod(dotted, template(), gpuEffective, config, 's').spec?.hostname).toMatch(/^[a-z0-9-]+$/);
  });

  it('is pure: the same inputs give the same pod', () => {
    expect(pod()).toEqual(pod());
  });
});

describe('buildService', () => {
  it('is a headless Service on 8080 without a selector (the reconciler writes its EndpointSlice; routes go to the pod address)', () => {
    expect(buildService(session).spec).toEqual({
      type: 'ClusterIP',
      clusterIP: 'None',
      ports: [{ name: 'http', port: 8080, targetPort: 'http', protocol: 'TCP' }],
    });
  });
});

describe('buildEndpointSlice', () => {
  const readyPod = (over: Partial<V1Pod['status']> = {}, metadata: Partial<V1Pod['metadata']> = {}): V1Pod => ({
    metadata: { name: 'vdi-desk', namespace: session.metadata.namespace, uid: 'pod-uid', ...metadata },
    spec: { nodeName: 'gpu-1', containers: [] },
    status: { phase: 'Running', podIP: '10.42.1.9', conditions: [{ type: 'Ready', status: 'True' }], ...over },
  });

  it('belongs to the session Service (by the label ingress controllers read), is not the controller-manager’s, and lists the ready pod', () => {
    const slice = buildEndpointSlice(session, readyPod());
    expect(slice.metadata.name).toBe(buildService(session).metadata.name);
    expect(slice.metadata.labels).toMatchObject({
      'kubernetes.io/service-name': buildService(session).metadata.name,
      'endpointslice.kubernetes.io/managed-by': 'vdi-operator.vdi.kasm.io',
    });
    expect(slice.metadata.ownerReferences).toEqual(buildService(session).metadata.ownerReferences);
    expect(slice.addressType).toBe('IPv4');
    expect(slice.ports).toEqual([{ name: 'http', port: 8080, protocol: 'TCP' }]);
    expect(slice.endpoints).toEqual([
      {
        addresses: ['10.42.1.9'],
        conditions: { ready: true, serving: true, terminating: false },
        nodeName: 'gpu-1',
        targetRef: { kind: 'Pod', namespace: session.metadata.namespace, name: 'vdi-desk', uid: 'pod-uid' },
      },
    ]);
  });

  it('says IPv6 for an IPv6 pod', () => {
    expect(buildEndpointSlice(session, readyPod({ podIP: 'fd00::7' })).addressType).toBe('IPv6');
  });

  it('lists nothing for a pod that is not ready, has no address, is being deleted, or is gone', () => {
    expect(buildEndpointSlice(session, readyPod({ conditions: [{ type: 'Ready', status: 'False' }] })).endpoints).toEqual([]);
    expect(buildEndpointSlice(session, readyPod({ podIP: undefined })).endpoints).toEqual([]);
    expect(buildEndpointSlice(session, readyPod({}, { deletionTimestamp: new Date() })).endpoints).toEqual([]);
    expect(buildEndpointSlice(session, undefined).endpoints).toEqual([]);
  });
});

describe('buildAuthMiddleware', () => {
  const auth = buildAuthMiddleware(session, config);

  it('forwards every header to the auth service and replaces Authorization and Cookie with what it answers', () => {
    expect(auth.apiVersion).toBe('traefik.io/v1alpha1');
    expect(auth.spec).toEqual({
      forwardAuth: {
        address: 'http://vdi-operator.vdi-system.svc:8080/auth/forward',
        trustForwardHeader: true,
        // Traefik deletes each of these from the request and copies the auth response's value, if any: the
        // desktop's Basic credentials replace the caller's Authorization, and the portal cookie is dropped.
        authResponseHeaders: ['Authorization', 'Cookie'],
      },
    });
  });
});

describe('buildIngressRoute', () => {
  it('routes the session host through forwardAuth to the Service', () => {
    const auth = buildAuthMiddleware(session, config);
    const route = buildIngressRoute(session, config);
    expect(route.apiVersion).toBe('traefik.io/v1alpha1');
    expect(route.spec.entryPoints).toEqual(['websecure']);
    expect(route.spec.routes).toEqual([
      {
        match: 'Host(`desk-team-a.vdi.example.com`)',
        kind: 'Rule',
        middlewares: [{ name: auth.metadata.name }],
        services: [{ name: buildService(session).metadata.name, port: 8080 }],
      },
    ]);
    expect(route.spec.tls).toBeUndefined();
  });

  it('adds TLS when configured', () => {
    expect(buildIngressRoute(session, testReconcilerConfig({ tls: { certResolver: 'le' } })).spec.tls).toEqual({ certResolver: 'le' });
    expect(buildIngressRoute(session, testReconcilerConfig({ tls: { secretName: 'wild' } })).spec.tls).toEqual({ secretName: 'wild' });
  });
});

describe('buildIngress', () => {
  const c = testReconcilerConfig({ ingressMode: 'ingress', ingressClassName: 'nginx', tls: { secretName: 'wild' } });
  const ingress = buildIngress(session, c);

  it('routes / on the session host to the Service, with TLS', () => {
    expect(ingress.spec?.ingressClassName).toBe('nginx');
    expect(ingress.spec?.rules).toEqual([
      {
        host: 'desk-team-a.vdi.example.com',
        http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: 'vdi-desk', port: { number: 8080 } } } }] },
      },
    ]);
    expect(ingress.spec?.tls).toEqual([{ hosts: ['desk-team-a.vdi.example.com'], secretName: 'wild' }]);
  });

  it('asks ingress-nginx for external auth against the auth endpoint', () => {
    expect(ingress.metadata.annotations).toMatchObject({
      'nginx.ingress.kubernetes.io/auth-url': 'http://vdi-operator.vdi-system.svc:8080/auth/forward',
      'nginx.ingress.kubernetes.io/auth-response-headers': 'Authorization',
    });
  });

  it('is what buildRouting returns in ingress mode; traefik mode gives the middleware then the route', () => {
    expect(buildRouting(session, c).map((o) => o.kind)).toEqual(['Ingress']);
    expect(buildRouting(session, config).map((o) => o.kind)).toEqual(['Middleware', 'IngressRoute']);
  });
});

describe('buildNetworkPolicy', () => {
  it('admits only the ingress controller, on 8080, to every desktop pod of the namespace (so no desktop to another)', () => {
    const policy = buildNetworkPolicy(session, config);
    expect(policy.spec?.podSelector).toEqual({
      matchLabels: {
        'app.kubernetes.io/name': 'vdi-desktop',
        'app.kubernetes.io/component': 'desktop',
        'app.kubernetes.io/managed-by': 'vdi-operator',
      },
    });
    // It selects the desktop pods the builders make.
    expect(pod().metadata.labels).toMatchObject(policy.spec.podSelector.matchLabels);
    expect(policy.spec?.policyTypes).toEqual(['Ingress']);
    expect(policy.spec?.ingress).toEqual([
      {
        from: [
          {
            namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kube-system' } },
            podSelector: { matchLabels: { 'app.kubernetes.io/name': 'traefik' } },
          },
        ],
        ports: [{ protocol: 'TCP', port: 8080 }],
      },
    ]);
  });

  it('lets a configured TURN relay reach the desktop for media', () => {
    const c = testReconcilerConfig({ turnNamespace: 'turn', turnPodLabels: { app: 'coturn' }, turnCidrs: ['10.0.0.0/24'] });
    expect(buildNetworkPolicy(session, c).spec?.ingress?.[1]).toEqual({
      from: [
        { podSelector: { matchLabels: { app: 'coturn' } }, namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'turn' } } },
        { ipBlock: { cidr: '10.0.0.0/24' } },
      ],
    });
  });
});

describe('sessionUrl', () => {
  it('is <scheme>://<host>/', () => {
    expect(sessionUrl(session, config)).toBe('https://desk-team-a.vdi.example.com/');
  });

  it("carries the entry point's port when one is configured (the local default serves desktops on :8000)", () => {
    expect(sessionUrl(session, { ...config, urlScheme: 'http', urlPort: 8000 })).toBe('http://desk-team-a.vdi.example.com:8000/');
  });
});
