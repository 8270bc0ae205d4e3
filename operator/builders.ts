// Pure builders of the objects a session needs. Each returns a complete object for server-side apply
// (apiVersion, kind, metadata.name and namespace); none does I/O or draws random numbers.
import type {
  V1EndpointSlice,
  V1EnvVar,
  V1Ingress,
  V1NetworkPolicyPeer,
  V1PersistentVolumeClaim,
  V1Pod,
  V1Secret,
  V1Service,
  V1Volume,
} from '@kubernetes/client-node';
import type { ReconcilerConfig } from './config.ts';
import { childName, labelValue, pvcName, sessionHost, sessionKey, sessionLabelValue, userLabelValue } from './naming.ts';
import { quantityText } from '../formats/quantity.ts';
import type { EffectiveSession } from './resolve.ts';
import { API_VERSION, GROUP, LABEL_MANAGED_BY, LABEL_SESSION, LABEL_TEMPLATE, LABEL_USER, MANAGER, SESSION_KIND } from './v1alpha1.ts';
import type { OwnerReference, VDISession, VDITemplate } from './v1alpha1.ts';

/**
 * Selkies 2.x itself (the maintained desktop image starts `selkies --addr=0.0.0.0 --port=${SELKIES_PORT:-8080}`;
 * 1.x images put nginx on the same port): the desktop's only entry point.
 */
export const DESKTOP_PORT = 8080;
export const SECRET_KEY_PASSWORD = 'password';
export const SECRET_KEY_TURN_TOKEN = 'turnToken';
/** The desktop's credential for reporting its clients (src/desktop-access/presence.ts); reaches the pod as a file only. */
export const SECRET_KEY_PRESENCE_TOKEN = 'presenceToken';
/** Where the presence token is mounted in the desktop container. */
export const PRESENCE_TOKEN_DIR = '/var/run/vdi';
export const PRESENCE_TOKEN_FILE = `${PRESENCE_TOKEN_DIR}/presence-token`;
/** On the PVC: the exact user (labels hold a shortened form); compare it before mounting a home into a pod. */
export const ANNOTATION_USER = `${GROUP}/user`;
export const TRAEFIK_API_VERSION = 'traefik.io/v1alpha1';

export interface DesiredMeta {
  name: string;
  namespace: string;
  labels: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: OwnerReference[];
}

/** A Kubernetes type with the fields server-side apply needs made mandatory. */
export type Desired<T> = Omit<T, 'apiVersion' | 'kind' | 'metadata'> & {
  apiVersion: string;
  kind: string;
  metadata: DesiredMeta;
};

export interface TraefikMiddleware {
  apiVersion: typeof TRAEFIK_API_VERSION;
  kind: 'Middleware';
  metadata: DesiredMeta;
  spec: {
    forwardAuth?: { address: string; trustForwardHeader: boolean; authResponseHeaders: string[] };
  };
}

export interface TraefikIngressRoute {
  apiVersion: typeof TRAEFIK_API_VERSION;
  kind: 'IngressRoute';
  metadata: DesiredMeta;
  spec: {
    entryPoints: string[];
    routes: {
      match: string;
      kind: 'Rule';
      middlewares: { name: string }[];
      services: { name: string; port: number }[];
    }[];
    tls?: { secretName?: string; certResolver?: string };
  };
}

/** Labels selecting the session's pod (Service, NetworkPolicy, listing children). */
export function sessionSelector(session: VDISession): Record<string, string> {
  const instance = sessionLabelValue(session);
  return { [LABEL_SESSION]: instance, 'app.kubernetes.io/instance': instance };
}

/** The labels every desktop pod carries, whatever its session: what the namespace's NetworkPolicy selects. */
export function desktopPodSelector(): Record<string, string> {
  const { 'app.kubernetes.io/part-of': _partOf, ...labels } = commonLabels('desktop');
  return labels;
}

export function ownerReference(session: VDISession): OwnerReference {
  const { name } = sessionKey(session);
  const { uid } = session.metadata;
  if (!uid) throw new Error(`VDISession ${name} has no uid: owned objects need one`);
  return { apiVersion: API_VERSION, kind: SESSION_KIND, name, uid, controller: true, blockOwnerDeletion: true };
}

function commonLabels(component: string): Record<string, string> {
  return {
    'app.kubernetes.io/name': 'vdi-desktop',
    'app.kubernetes.io/component': component,
    'app.kubernetes.io/part-of': MANAGER,
    [LABEL_MANAGED_BY]: MANAGER,
  };
}

/**
 * Metadata of an object every session of a namespace shares (its forwardAuth Middleware, its NetworkPolicy):
 * written once for the namespace, owned by no session, so it stays while sessions come and go.
 */
function sharedMeta(session: VDISession, component: string, name: string): DesiredMeta {
  return { name, namespace: sessionKey(session).namespace, labels: commonLabels(component) };
}

/** Metadata of an object that lives and dies with the session. */
function ownedMeta(session: VDISession, component: string, name = childName(session)): DesiredMeta {
  return {
    name,
    namespace: sessionKey(session).namespace,
    labels: {
      ...commonLabels(component),
      ...sessionSelector(session),
      [LABEL_USER]: userLabelValue(session.spec.user),
      [LABEL_TEMPLATE]: labelValue(session.spec.template),
    },
    ownerReferences: [ownerReference(session)],
  };
}

/**
 * `password`: Selkies basic auth; `turnToken`: the per-session secret in the TURN REST URL path; `presenceToken`:
 * what the desktop shows when it reports its clients (each session's own, so none can report for another).
 */
export function buildSecret(session: VDISession, password: string, turnToken: string, presenceToken: string): Desired<V1Secret> {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: ownedMeta(session, 'credentials'),
    type: 'Opaque',
    // `data`, not `stringData`: stringData is write-only and never matches on the next apply.
    data: {
      [SECRET_KEY_PASSWORD]: Buffer.from(password).toString('base64'),
      [SECRET_KEY_TURN_TOKEN]: Buffer.from(turnToken).toString('base64'),
      [SECRET_KEY_PRESENCE_TOKEN]: Buffer.from(presenceToken).toString('base64'),
    },
  };
}

/**
 * The user's home for this template. Deliberately without an ownerReference: it must survive the session
 * (terminate keeps the user's files) and is reused by the user's next session of the same template.
 */
export function buildPvc(session: VDISession, effective: EffectiveSession, config: ReconcilerConfig): Desired<V1PersistentVolumeClaim> {
  const { user, template } = session.spec;
  return {
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: {
      name: pvcName(user, template),
      namespace: sessionKey(session).namespace,
      labels: {
        ...commonLabels('home'),
        [LABEL_USER]: userLabelValue(user),
        [LABEL_TEMPLATE]: labelValue(template),
      },
      // No ownerReference and no annotation promising retention: the PVC outlives its sessions because nothing
      // deletes it, and its data outlives the PVC only under a Retain StorageClass (the chart's homeStorageClass).
      annotations: { [ANNOTATION_USER]: user },
    },
    spec: {
      accessModes: ['ReadWriteOnce'],
      resources: { requests: { storage: effective.persistence.size } },
      ...(config.storageClassName !== undefined && { storageClassName: config.storageClassName }),
    },
  };
}

/**
 * Env names a template may not set: the credentials, TURN and encoder settings the operator owns (with the
 * image's older unprefixed spellings), where Selkies listens and whether it speaks TLS (the Service and the
 * route depend on both), and NVIDIA_VISIBLE_DEVICES, which under the NVIDIA runtime would hand
 * the container GPUs the scheduler never allocated to it.
 */
const PROTECTED_ENV =
  /^(?:SELKIES_)?(?:ENCODER|ENABLE_BASIC_AUTH|BASIC_AUTH_\w*|TURN_\w*|RUN_AFTER_CONNECT|RUN_AFTER_DISCONNECT)$|^SELKIES_(?:ENABLE_HTTPS|PORT|ADDR|PUBLIC)$|^CUSTOM_WS_PORT$|^(?:WEBRTC_ENCODER|PASSWD|VDI_TURN_TOKEN|VDI_PRESENCE_\w*|NVIDIA_VISIBLE_DEVICES)$/;

/**
 * What Selkies' presence hooks run (`run_after_connect` when the first client connects, `run_after_disconnect`
 * when the last one leaves, also at shutdown): POST `<VDI_PRESENCE_URL>/<state>` with the desktop's clock and the
 * token from the mounted file. Python, because Selkies is Python and the image may lack curl. Retried with
 * backoff for about 30 s (Selkies kills a hook after 300 s): a lost "connected" would let a watched desktop be
 * stopped. Reports carry their time, so a retried old one never overrides a newer one.
 */
export function presenceHook(state: 'connected' | 'disconnected'): string {
  const script = [
    'import os,sys,time,json,urllib.request as u',
    'b=json.dumps({"at":time.time()}).encode()',
    't=open(os.environ["VDI_PRESENCE_AUTH_FILE"]).read().strip()',
    'r=u.Request(os.environ["VDI_PRESENCE_URL"]+"/"+sys.argv[1],data=b,headers={"Authorization":"Bearer "+t,"Content-Type":"application/json"})',
    'for i in range(5):',
    ' try:',
    '  u.urlopen(r,timeout=10);break',
    ' except u.HTTPError as e:',
    '  if e.code<500 and e.code!=429:break',
    ' except Exception:pass',
    ' time.sleep(2**i)',
  ].join('\n');
  return `python3 -c '${script}' ${state}`;
}

/**
 * Selkies 2.x names encoders by codec (`selkies --help`): each runs on NVENC or VA-API where the GPU has it and
 * falls back to the CPU by itself. Templates keep 1.x's GStreamer element names; the three H.264 ones are one now.
 */
const SELKIES_ENCODERS: Record<EffectiveSession['encoder'], string> = {
  nvh264enc: 'h264enc',
  vah264enc: 'h264enc',
  x264enc: 'h264enc',
  vp8enc: 'vp8enc',
  vp9enc: 'vp9enc',
};

function fromSecret(name: string, secretName: string, key: string): V1EnvVar {
  return { name, valueFrom: { secretKeyRef: { name: secretName, key } } };
}

/** Kubernetes expands `$(VAR)` in env values; `$$` keeps a user-controlled string literal. */
function literal(text: string): string {
  return text.replaceAll('$', '$$$$');
}

function desktopEnv(
  session: VDISession,
  template: VDITemplate,
  effective: EffectiveSession,
  config: ReconcilerConfig,
  secretName: string,
): V1EnvVar[] {
  const { name, namespace } = sessionKey(session);
  const env: V1EnvVar[] = [
    { name: 'SELKIES_ENCODER', value: SELKIES_ENCODERS[effective.encoder] ?? effective.encoder },
    { name: 'SELKIES_ENABLE_BASIC_AUTH', value: 'true' },
    // The 2.x image serves HTTPS on a certificate of its own by default; TLS ends at the ingress, and the route
    // speaks plain HTTP to the pod.
    { name: 'SELKIES_ENABLE_HTTPS', value: 'false' },
    { name: 'SELKIES_BASIC_AUTH_USER', value: literal(session.spec.user) },
    fromSecret('SELKIES_BASIC_AUTH_PASSWORD', secretName, SECRET_KEY_PASSWORD),
    fromSecret('PASSWD', secretName, SECRET_KEY_PASSWORD),
    // Must precede its use: $(VAR) only expands variables defined earlier in the list. Selkies drops the
    // query string of the REST URI, so the token travels in the path.
    fromSecret('VDI_TURN_TOKEN', secretName, SECRET_KEY_TURN_TOKEN),
    {
      name: 'SELKIES_TURN_REST_URI',
      value: `${config.turnRestBaseUrl.replace(/\/+$/, '')}/${namespace}/${name}/$(VDI_TURN_TOKEN)`,
    },
    // Presence (src/desktop-access/presence.ts): where to report and which file holds the token; neither is secret.
    { name: 'VDI_PRESENCE_URL', value: `${config.presenceBaseUrl.replace(/\/+$/, '')}/${namespace}/${name}` },
    { name: 'VDI_PRESENCE_AUTH_FILE', value: PRESENCE_TOKEN_FILE },
    { name: 'SELKIES_RUN_AFTER_CONNECT', value: literal(presenceHook('connected')) },
    { name: 'SELKIES_RUN_AFTER_DISCONNECT', value: literal(presenceHook('disconnected')) },
    { name: 'SELKIES_ENABLE_RESIZE', value: 'true' },
    { name: 'NVIDIA_DRIVER_CAPABILITIES', value: 'all' },
    // The desktop images set NVIDIA_VISIBLE_DEVICES=all: where nvidia is the default runtime (the GPU operator's
    // usual install) a CPU-only desktop would get every GPU outside slice accounting. `void` gives it none.
    ...(effective.gpu === 0 ? [{ name: 'NVIDIA_VISIBLE_DEVICES', value: 'void' }] : []),
    { name: 'TZ', value: 'UTC' },
  ];
  for (const { name: envName, value } of template.spec.env ?? []) {
    if (PROTECTED_ENV.test(envName)) continue;
    // Replace an overridable default in place rather than append a duplicate name.
    const existing = env.find((entry) => entry.name === envName);
    if (existing) existing.value = value;
    else env.push({ name: envName, value });
  }
  return env;
}

const DNS_LABEL = /^[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?$/;
/** The label the GPU operator (GPU feature discovery) puts on GPU nodes. */
export const GPU_NODE_LABEL = 'nvidia.com/gpu.present';
/**
 * Where a CPU-only desktop may run: any node but a GPU node (NotIn also matches nodes without the label). It
 * leaves the GPU nodes' CPU and memory to GPU desktops, and keeps it away from GPUs it must not see.
 */
const OFF_GPU_NODES = { matchExpressions: [{ key: GPU_NODE_LABEL, operator: 'NotIn', values: ['true'] }] };
/** The desktop image's user (ubuntu, uid/gid 1000) must be able to write a freshly provisioned home. */
const DESKTOP_GID = 1000;

/**
 * What a desktop pod runs with, read back from its container's limits (buildPod's `amounts`): the truth once the
 * pod exists, since a template edited after the start changes no running pod. Undefined for a pod without the
 * desktop container.
 */
export function podResources(pod: V1Pod, config: ReconcilerConfig): { gpu: number; cpu: string; memory: string } | undefined {
  const limits = pod.spec?.containers.find((c) => c.name === 'desktop')?.resources?.limits;
  if (!limits?.cpu || !limits.memory) return undefined;
  return { gpu: Number(limits[config.gpuResourceName] ?? 0), cpu: String(limits.cpu), memory: String(limits.memory) };
}

/**
 * The desktop: a bare pod, never a Deployment, because two pods for one session would fight over one
 * browser. restartPolicy Always restarts the container in place.
 */
export function buildPod(
  session: VDISession,
  template: VDITemplate,
  effective: EffectiveSession,
  config: ReconcilerConfig,
  secretName: string,
): Desired<V1Pod> {
  const { name } = sessionKey(session);
  const hasGpu = effective.gpu > 0;
  // requests = limits: Guaranteed QoS, so a running desktop is the last thing the node evicts.
  const amounts: Record<string, string> = { memory: effective.memory, cpu: effective.cpu };
  if (hasGpu) amounts[config.gpuResourceName] = String(effective.gpu);
  const home: V1Volume = effective.persistence.enabled
    ? { name: 'home', persistentVolumeClaim: { claimName: pvcName(session.spec.user, session.spec.template) } }
    : { name: 'home', emptyDir: {} };

  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: ownedMeta(session, 'desktop'),
    spec: {
      hostname: DNS_LABEL.test(name) ? name : childName(session),
      restartPolicy: 'Always',
      enableServiceLinks: false,
      automountServiceAccountToken: false,
      terminationGracePeriodSeconds: 30,
      securityContext: {
        seccompProfile: { type: 'RuntimeDefault' },
        fsGroup: DESKTOP_GID,
        fsGroupChangePolicy: 'OnRootMismatch',
      },
      // K3s injects the driver only under the nvidia runtime class; CPU-only pods must not ask for it, as
      // nodes without GPUs usually lack that class.
      ...(hasGpu
        ? {
            runtimeClassName: config.runtimeClassName,
            tolerations: [{ key: config.gpuResourceName, operator: 'Exists', effect: 'NoSchedule' }],
          }
        : { affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [OFF_GPU_NODES] } } } }),
      containers: [
        {
          name: 'desktop',
          image: template.spec.image,
          ...(template.spec.imagePullPolicy && { imagePullPolicy: template.spec.imagePullPolicy }),
          ports: [{ name: 'http', containerPort: DESKTOP_PORT, protocol: 'TCP' }],
          env: desktopEnv(session, template, effective, config, secretName),
          resources: { requests: { ...amounts }, limits: { ...amounts } },
          volumeMounts: [
            { name: 'dshm', mountPath: '/dev/shm' },
            { name: 'presence', mountPath: PRESENCE_TOKEN_DIR, readOnly: true },
            { name: 'home', mountPath: template.spec.persistence?.mountPath ?? '/home/ubuntu' },
          ],
          // TCP, not HTTP: with basic auth on, /health answers 401.
          readinessProbe: { tcpSocket: { port: DESKTOP_PORT }, periodSeconds: 5 },
          // Lenient: a restart ends the user's desktop session.
          livenessProbe: {
            tcpSocket: { port: DESKTOP_PORT },
            initialDelaySeconds: 60,
            periodSeconds: 30,
            failureThreshold: 10,
          },
        },
      ],
      volumes: [
        // Docker's 64 MiB default /dev/shm crashes browsers and GStreamer; memory-backed, it counts against
        // the memory limit.
        { name: 'dshm', emptyDir: { medium: 'Memory', sizeLimit: quantityText(template.spec.sharedMemorySize ?? '1Gi') } },
        // The presence token only, as a file the desktop user (group DESKTOP_GID via fsGroup) may read: never in
        // the environment, which every process of the desktop inherits.
        {
          name: 'presence',
          // Optional: a Secret made before presence existed lacks the key, and its desktop still starts (reporting
          // nothing, it counts as unwatched).
          secret: { secretName, items: [{ key: SECRET_KEY_PRESENCE_TOKEN, path: 'presence-token' }], defaultMode: 0o440, optional: true },
        },
        home,
      ],
    },
  };
}

/**
 * Headless: the ingress controller routes to the pod's address from the EndpointSlice (Traefik and ingress
 * controllers do so by default), so a desktop needs no cluster IP. Allocating one is the slowest write a new
 * session makes (the apiserver hands out IPs one at a time: about 1 s each in a storm of 200), and a /16 service
 * range would cap a cluster at 65k desktops.
 *
 * Without a selector: the reconciler writes the Service's one EndpointSlice itself (buildEndpointSlice), once
 * its pod is ready, instead of the controller-manager's EndpointSlice and Endpoints controllers writing two
 * objects and updating both when the pod becomes ready (ADR 0010).
 */
export function buildService(session: VDISession): Desired<V1Service> {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: ownedMeta(session, 'desktop'),
    spec: {
      type: 'ClusterIP',
      clusterIP: 'None',
      ports: [{ name: 'http', port: DESKTOP_PORT, targetPort: 'http', protocol: 'TCP' }],
    },
  };
}

/** Whether the pod's Ready condition is True: what a kubelet's readiness probe decided. */
export function podReady(pod: V1Pod | undefined): boolean {
  return pod?.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
}

/** The managed-by value of the EndpointSlices the reconciler writes (the controller-manager leaves them alone). */
export const ENDPOINT_SLICE_MANAGER = `${MANAGER}.${GROUP}`;

/**
 * The session Service's EndpointSlice: the desktop pod's address while it is ready, none otherwise (a pod not
 * ready, stopped or gone). The endpoint carries the pod as its target, as the controller-manager's would, so
 * `kubectl describe` and ingress controllers see the same thing.
 */
export function buildEndpointSlice(session: VDISession, pod: V1Pod | undefined): Desired<V1EndpointSlice> {
  const address = pod?.status?.podIP;
  const ready = !!address && !pod?.metadata?.deletionTimestamp && podReady(pod);
  const meta = ownedMeta(session, 'desktop');
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: {
      ...meta,
      labels: { ...meta.labels, 'kubernetes.io/service-name': childName(session), 'endpointslice.kubernetes.io/managed-by': ENDPOINT_SLICE_MANAGER },
    },
    addressType: address?.includes(':') ? 'IPv6' : 'IPv4',
    ports: [{ name: 'http', port: DESKTOP_PORT, protocol: 'TCP' }],
    endpoints: ready
      ? [
          {
            addresses: [address],
            conditions: { ready: true, serving: true, terminating: false },
            ...(pod?.spec?.nodeName && { nodeName: pod.spec.nodeName }),
            targetRef: { kind: 'Pod', namespace: meta.namespace, name: pod!.metadata!.name!, uid: pod!.metadata!.uid! },
          },
        ]
      : [],
  };
}

/** The forwardAuth Middleware every session route of a namespace runs (one per namespace). */
export const AUTH_MIDDLEWARE_NAME = 'vdi-desktop-auth';
/** The NetworkPolicy that guards every desktop pod of a namespace (one per namespace). */
export const NETWORK_POLICY_NAME = 'vdi-desktops';

/**
 * The one Middleware a session's route runs, shared by every session of the namespace (its spec names no
 * session): forwardAuth to the service, which finds the session by the request's host. The auth service still sees every
 * header of the request (authRequestHeaders is left unset), the portal's cookie included. On 2xx, for each
 * header named in authResponseHeaders Traefik deletes the request's header and copies the auth response's
 * one, if any, in its place (pkg/middlewares/auth/forward.go):
 * - Authorization: the auth response carries the desktop's Basic credentials, so a client-supplied
 *   Authorization (a bearer token) never reaches the pod;
 * - Cookie: the auth response carries none, so the portal session never reaches the desktop, where its user
 *   is effectively root.
 * trustForwardHeader: the auth service finds the session by X-Forwarded-Host; the entry point already
 * replaces X-Forwarded-* from untrusted clients (Traefik's default), so the values are Traefik's own.
 */
export function buildAuthMiddleware(session: VDISession, config: ReconcilerConfig): TraefikMiddleware {
  return {
    apiVersion: TRAEFIK_API_VERSION,
    kind: 'Middleware',
    metadata: sharedMeta(session, 'auth', AUTH_MIDDLEWARE_NAME),
    spec: {
      forwardAuth: { address: config.authEndpoint, trustForwardHeader: true, authResponseHeaders: ['Authorization', 'Cookie'] },
    },
  };
}

export function buildIngressRoute(session: VDISession, config: ReconcilerConfig): TraefikIngressRoute {
  return {
    apiVersion: TRAEFIK_API_VERSION,
    kind: 'IngressRoute',
    metadata: ownedMeta(session, 'route'),
    spec: {
      entryPoints: [...config.traefikEntryPoints],
      routes: [
        {
          match: `Host(\`${sessionHost(session, config)}\`)`,
          kind: 'Rule',
          // Same namespace, by name: Traefik ignores cross-namespace middlewares unless allowCrossNamespace.
          middlewares: [{ name: AUTH_MIDDLEWARE_NAME }],
          services: [{ name: childName(session), port: DESKTOP_PORT }],
        },
      ],
      ...(config.tls && { tls: { ...config.tls } }),
    },
  };
}

/**
 * The plain Ingress for clusters without Traefik. No middleware can be attached here, so authentication
 * must come from the ingress controller itself; the annotations configure ingress-nginx's external auth
 * against the same endpoint (it forwards the request's headers and copies Authorization back). Other
 * controllers need the equivalent, or the desktop is protected by its basic-auth password alone.
 */
export function buildIngress(session: VDISession, config: ReconcilerConfig): Desired<V1Ingress> {
  const host = sessionHost(session, config);
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'Ingress',
    metadata: {
      ...ownedMeta(session, 'route'),
      annotations: {
        'nginx.ingress.kubernetes.io/auth-url': config.authEndpoint,
        'nginx.ingress.kubernetes.io/auth-response-headers': 'Authorization',
        // nginx closes a proxied WebSocket after 60 s without traffic; an idle desktop is still in use.
        'nginx.ingress.kubernetes.io/proxy-read-timeout': '3600',
        'nginx.ingress.kubernetes.io/proxy-send-timeout': '3600',
      },
    },
    spec: {
      ...(config.ingressClassName !== undefined && { ingressClassName: config.ingressClassName }),
      rules: [
        {
          host,
          http: {
            paths: [
              {
                path: '/',
                pathType: 'Prefix',
                backend: { service: { name: childName(session), port: { number: DESKTOP_PORT } } },
              },
            ],
          },
        },
      ],
      ...(config.tls && {
        tls: [{ hosts: [host], ...(config.tls.secretName !== undefined && { secretName: config.tls.secretName }) }],
      }),
    },
  };
}

/** Whichever routing objects config.ingressMode calls for, in apply order (the middleware before the route). */
export function buildRouting(session: VDISession, config: ReconcilerConfig): (TraefikMiddleware | TraefikIngressRoute | Desired<V1Ingress>)[] {
  return config.ingressMode === 'traefik'
    ? [buildAuthMiddleware(session, config), buildIngressRoute(session, config)]
    : [buildIngress(session, config)];
}

/**
 * One per namespace, for all its desktop pods. Only the ingress controller may open a desktop's port, so desktops (and anything else in the cluster)
 * cannot reach each other's unauthenticated-by-cookie nginx. The TURN relay, when configured, may send on any
 * port: WebRTC media arrives over UDP on the ports Selkies' ICE candidates chose, never on 8080.
 *
 * Written with the wire name `from`: the reconciler sends raw JSON. (client-node's model types call the
 * field `_from`; sent raw that is an unknown field, and a rule without `from` would admit everyone.)
 */
/** A NetworkPolicy as the apiserver spells it (see buildNetworkPolicy). */
export interface NetworkPolicyWire {
  apiVersion: string;
  kind: string;
  metadata: DesiredMeta;
  spec: {
    podSelector: { matchLabels: Record<string, string> };
    policyTypes: string[];
    ingress: { from: V1NetworkPolicyPeer[]; ports?: { protocol: string; port: number }[] }[];
  };
}

export function buildNetworkPolicy(session: VDISession, config: ReconcilerConfig): NetworkPolicyWire {
  const ingress: NetworkPolicyWire['spec']['ingress'] = [
    {
      from: [
        {
          namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': config.ingressControllerNamespace } },
          podSelector: { matchLabels: { ...config.ingressControllerPodLabels } },
        },
      ],
      ports: [{ protocol: 'TCP', port: DESKTOP_PORT }],
    },
  ];
  const turnPeers: V1NetworkPolicyPeer[] = [];
  if (config.turnPodLabels) {
    turnPeers.push({
      podSelector: { matchLabels: { ...config.turnPodLabels } },
      ...(config.turnNamespace !== undefined && {
        namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': config.turnNamespace } },
      }),
    });
  }
  for (const cidr of config.turnCidrs ?? []) turnPeers.push({ ipBlock: { cidr } });
  if (turnPeers.length > 0) ingress.push({ from: turnPeers });

  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: sharedMeta(session, 'network-policy', NETWORK_POLICY_NAME),
    spec: {
      // Every desktop pod of the namespace: each admits the ingress controller (and the TURN relay), and none
      // another desktop, which is not among the sources.
      podSelector: { matchLabels: desktopPodSelector() },
      policyTypes: ['Ingress'],
      ingress,
    },
  };
}

export function sessionUrl(session: VDISession, config: ReconcilerConfig): string {
  const port = config.urlPort === undefined ? '' : `:${config.urlPort}`;
  return `${config.urlScheme}://${sessionHost(session, config)}${port}/`;
}
