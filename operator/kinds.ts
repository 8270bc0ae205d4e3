// Every kind of object this service reads or writes, in one table: its group/version, plural, scope and the shared
// cache that holds it. REST paths are derived from here and nowhere else.
import { API_VERSION, SESSION_PLURAL, TEMPLATE_PLURAL } from './v1alpha1.ts';

export interface KindInfo {
  apiVersion: string;
  plural: string;
  namespaced: boolean;
  /** The shared informer cache (operator/caches.ts) that holds this kind, when one does. */
  cache?:
    | 'sessions'
    | 'templates'
    | 'nodes'
    | 'pods'
    | 'secrets'
    | 'services'
    | 'endpointSlices'
    | 'pvcs'
    | 'networkPolicies'
    | 'middlewares'
    | 'ingressRoutes'
    | 'ingresses';
}

export const KINDS = {
  VDISession: { apiVersion: API_VERSION, plural: SESSION_PLURAL, namespaced: true, cache: 'sessions' },
  VDITemplate: { apiVersion: API_VERSION, plural: TEMPLATE_PLURAL, namespaced: false, cache: 'templates' },
  Node: { apiVersion: 'v1', plural: 'nodes', namespaced: false, cache: 'nodes' },
  Pod: { apiVersion: 'v1', plural: 'pods', namespaced: true, cache: 'pods' },
  Secret: { apiVersion: 'v1', plural: 'secrets', namespaced: true, cache: 'secrets' },
  Service: { apiVersion: 'v1', plural: 'services', namespaced: true, cache: 'services' },
  EndpointSlice: { apiVersion: 'discovery.k8s.io/v1', plural: 'endpointslices', namespaced: true, cache: 'endpointSlices' },
  PersistentVolumeClaim: { apiVersion: 'v1', plural: 'persistentvolumeclaims', namespaced: true, cache: 'pvcs' },
  NetworkPolicy: { apiVersion: 'networking.k8s.io/v1', plural: 'networkpolicies', namespaced: true, cache: 'networkPolicies' },
  Ingress: { apiVersion: 'networking.k8s.io/v1', plural: 'ingresses', namespaced: true, cache: 'ingresses' },
  Middleware: { apiVersion: 'traefik.io/v1alpha1', plural: 'middlewares', namespaced: true, cache: 'middlewares' },
  IngressRoute: { apiVersion: 'traefik.io/v1alpha1', plural: 'ingressroutes', namespaced: true, cache: 'ingressRoutes' },
  Namespace: { apiVersion: 'v1', plural: 'namespaces', namespaced: false },
  ResourceQuota: { apiVersion: 'v1', plural: 'resourcequotas', namespaced: true },
  RoleBinding: { apiVersion: 'rbac.authorization.k8s.io/v1', plural: 'rolebindings', namespaced: true },
  Lease: { apiVersion: 'coordination.k8s.io/v1', plural: 'leases', namespaced: true },
} as const satisfies Record<string, KindInfo>;

export type Kind = keyof typeof KINDS;

export function kindInfo(kind: string): KindInfo {
  const info = (KINDS as Record<string, KindInfo>)[kind];
  if (!info) throw new Error(`unknown kind ${kind}`);
  return info;
}

/**
 * The collection of `kind`: in `namespace` for a namespaced kind (all namespaces when it is omitted, as a
 * cluster-wide watch lists them), at the cluster level otherwise.
 */
export function collectionPath(kind: Kind, namespace?: string): string {
  const { apiVersion, plural, namespaced } = KINDS[kind];
  const base = apiVersion === 'v1' ? '/api/v1' : `/apis/${apiVersion}`;
  return namespaced && namespace ? `${base}/namespaces/${namespace}/${plural}` : `${base}/${plural}`;
}

/** One object's path; `subresource` such as `status`. */
export function namedPath(kind: Kind, namespace: string | undefined, name: string, subresource?: string): string {
  const path = `${collectionPath(kind, namespace)}/${name}`;
  return subresource ? `${path}/${subresource}` : path;
}

/** The path of an object as it is written (its kind must be in the table). */
export function objectPath(obj: { kind: string; metadata: { namespace?: string; name?: string } }, withName = true): string {
  kindInfo(obj.kind);
  const kind = obj.kind as Kind;
  return withName ? namedPath(kind, obj.metadata.namespace, obj.metadata.name!) : collectionPath(kind, obj.metadata.namespace);
}
