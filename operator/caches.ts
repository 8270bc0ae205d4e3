// The shared informer caches: one watch per resource for the whole process, read by the reconciler, the
// GraphQL API, forwardAuth and the subscriptions alike.
import type {
  V1EndpointSlice,
  V1Ingress,
  V1NetworkPolicy,
  V1Node,
  V1PersistentVolumeClaim,
  V1Pod,
  V1Secret,
  V1Service,
} from '@kubernetes/client-node';
import type { KubeClient } from '../src/kube/client.ts';
import { Informer, type InformerOptions, type KubeObject } from './informer.ts';
import { collectionPath } from './kinds.ts';
import { LABEL_MANAGED_BY, MANAGER, type VDISession, type VDITemplate } from './v1alpha1.ts';

const OURS = `${LABEL_MANAGED_BY}=${MANAGER}`;

/** A Traefik object as cached; the reconciler compares it with what its builders want, field by field. */
export type TraefikObject = KubeObject & { spec?: Record<string, unknown> };

export interface Caches {
  sessions: Informer<VDISession>;
  templates: Informer<VDITemplate>;
  nodes: Informer<V1Node>;
  /** Only objects labelled as ours (app.kubernetes.io/managed-by=vdi-operator). */
  pods: Informer<V1Pod>;
  secrets: Informer<V1Secret>;
  services: Informer<V1Service>;
  /** The session Services' EndpointSlices, which the reconciler writes (buildEndpointSlice). */
  endpointSlices: Informer<V1EndpointSlice>;
  pvcs: Informer<V1PersistentVolumeClaim>;
  networkPolicies: Informer<V1NetworkPolicy>;
  middlewares: Informer<TraefikObject>;
  ingressRoutes: Informer<TraefikObject>;
  ingresses: Informer<V1Ingress>;
}

export type CacheName = keyof Caches;

/** Which caches each part of the service needs; the API reads session Secrets for forwardAuth and TURN, not routes. */
export const API_CACHES: CacheName[] = ['sessions', 'templates', 'nodes', 'pods', 'secrets'];
/** The reconciler's caches besides the route kinds, which depend on the ingress mode (src/service.ts). */
export const RECONCILER_CACHES: CacheName[] = ['sessions', 'templates', 'pods', 'secrets', 'services', 'endpointSlices', 'pvcs', 'networkPolicies'];

export function createCaches(client: KubeClient, opts: Partial<InformerOptions> = {}): Caches {
  const make = <T extends object>(name: string, path: string, labelSelector?: string) =>
    new Informer<T & { metadata?: { name?: string } }>(client, { ...opts, name, path, labelSelector });
  return {
    sessions: make<VDISession>('vdisessions', collectionPath('VDISession')),
    templates: make<VDITemplate>('vditemplates', collectionPath('VDITemplate')),
    nodes: make<V1Node>('nodes', collectionPath('Node')),
    pods: make<V1Pod>('pods', collectionPath('Pod'), OURS),
    secrets: make<V1Secret>('secrets', collectionPath('Secret'), OURS),
    services: make<V1Service>('services', collectionPath('Service'), OURS),
    endpointSlices: make<V1EndpointSlice>('endpointslices', collectionPath('EndpointSlice'), OURS),
    pvcs: make<V1PersistentVolumeClaim>('persistentvolumeclaims', collectionPath('PersistentVolumeClaim'), OURS),
    networkPolicies: make<V1NetworkPolicy>('networkpolicies', collectionPath('NetworkPolicy'), OURS),
    middlewares: make<TraefikObject>('middlewares', collectionPath('Middleware'), OURS),
    ingressRoutes: make<TraefikObject>('ingressroutes', collectionPath('IngressRoute'), OURS),
    ingresses: make<V1Ingress>('ingresses', collectionPath('Ingress'), OURS),
  } as Caches;
}

/** Starts the named caches (once each) and resolves when all of them have synced. */
export async function startCaches(caches: Caches, names: CacheName[]): Promise<void> {
  const unique = [...new Set(names)];
  for (const name of unique) caches[name].start();
  await Promise.all(unique.map((name) => caches[name].waitForSync()));
}

export async function stopCaches(caches: Caches): Promise<void> {
  await Promise.all(Object.values(caches).map((informer: Informer<object & { metadata?: object }>) => informer.stop()));
}
