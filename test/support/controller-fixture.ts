// The reconciler's unit-test fixture, after sample-controller's controller_test.go: in-memory informer caches
// filled with the objects of a test case, a client that records every write as an action and answers it from an
// in-memory store, and a controller wired to both. A case runs reconcile(key) and compares the actions.
import { KubeConfig } from '@kubernetes/client-node';
import { createCaches, startCaches, stopCaches, type CacheName, type Caches } from '../../operator/caches.ts';
import type { ReconcilerConfig } from '../../operator/config.ts';
import { SessionController, type ControllerMetrics } from '../../operator/controller.ts';
import type { LeaderTerm } from '../../operator/leader-election.ts';
import type { WatchEvent } from '../../src/kube/client.ts';
import { APPLY_PATCH, KubeClient, KubeError, MERGE_PATCH, type RequestOptions } from '../../src/kube/client.ts';
import { testReconcilerConfig } from './reconciler-config.ts';

/** One write, as sample-controller lists them: verb, resource (with subresource) and object name. */
export interface Action {
  verb: 'create' | 'update' | 'patch' | 'apply' | 'delete';
  /** `pods`, `vdisessions/status`, … */
  resource: string;
  namespace?: string;
  /** The object's name; for a create, the name in the body. */
  name: string;
  body: unknown;
}

/** `verb resource name`, the form the table tests compare. */
export const actionText = (a: Action): string => `${a.verb} ${a.resource} ${a.name}`;

type Stored = { apiVersion?: string; kind?: string; metadata: Record<string, unknown> & { name: string; namespace?: string } } & Record<
  string,
  unknown
>;

const PLURALS: Record<string, string> = {
  VDISession: 'vdisessions',
  VDITemplate: 'vditemplates',
  Pod: 'pods',
  Secret: 'secrets',
  Service: 'services',
  EndpointSlice: 'endpointslices',
  PersistentVolumeClaim: 'persistentvolumeclaims',
  NetworkPolicy: 'networkpolicies',
  Middleware: 'middlewares',
  IngressRoute: 'ingressroutes',
  Ingress: 'ingresses',
  Event: 'events',
  Node: 'nodes',
};

/** `namespace/resource/name` of an object, the store's key (the path without its group and version). */
function storeKey(resource: string, namespace: string | undefined, name: string): string {
  return `${namespace ?? ''}/${resource}/${name}`;
}

function parsePath(path: string): { resource: string; subresource?: string; namespace?: string; name?: string } {
  const parts = path.split('/').filter(Boolean);
  const rest = parts.slice(parts[0] === 'api' ? 2 : 3);
  let namespace: string | undefined;
  if (rest[0] === 'namespaces' && rest.length > 2) {
    namespace = rest[1];
    rest.splice(0, 2);
  }
  return { resource: rest[0]!, name: rest[1], subresource: rest[2], namespace };
}

/** RFC 7386: null deletes, objects merge, everything else replaces. */
function mergePatch(target: unknown, patch: unknown): unknown {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) return patch;
  const out: Record<string, unknown> =
    target && typeof target === 'object' && !Array.isArray(target) ? { ...(target as Record<string, unknown>) } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

/**
 * A KubeClient whose requests never leave the process: writes are recorded and applied to an in-memory store
 * (filled with the case's objects), reads answer from it. `react` may answer a write first (return a value, or
 * throw a KubeError), as client-go's fake reactors do.
 */
export class RecordingClient extends KubeClient {
  readonly actions: Action[] = [];
  readonly store = new Map<string, Stored>();
  react: ((action: Action) => unknown) | undefined;
  private revision = 100;
  private readonly now: Date;

  /** `now` stamps the creationTimestamp of what is created. */
  constructor(objects: object[], now: Date) {
    const kc = new KubeConfig();
    kc.loadFromClusterAndUser({ name: 'fake', server: 'http://fake.invalid', skipTLSVerify: true }, { name: 'fake' });
    super(kc);
    this.now = now;
    for (const obj of objects as Stored[])
      this.store.set(storeKey(PLURALS[obj.kind!]!, obj.metadata.namespace, obj.metadata.name), structuredClone(obj));
  }

  /** The items of a collection (all namespaces), for the caches' lists. */
  itemsOf(resource: string): Stored[] {
    return [...this.store.entries()].filter(([key]) => key.split('/')[1] === resource).map(([, obj]) => obj);
  }

  override async request<T = unknown>(opts: RequestOptions): Promise<T> {
    opts.signal?.throwIfAborted();
    const { resource, subresource, namespace, name } = parsePath(opts.path);
    const method = opts.method ?? 'GET';
    if (method === 'GET') {
      const found = name && this.store.get(storeKey(resource, namespace, name));
      if (!found) throw new KubeError(404, 'NotFound', `${resource} "${name}" not found`);
      return structuredClone(found) as T;
    }
    const body = opts.body as Stored | undefined;
    const verb =
      method === 'POST'
        ? 'create'
        : method === 'PUT'
          ? 'update'
          : method === 'DELETE'
            ? 'delete'
            : opts.contentType === APPLY_PATCH
              ? 'apply'
              : 'patch';
    const action: Action = {
      verb,
      resource: subresource ? `${resource}/${subresource}` : resource,
      namespace,
      name: name ?? body?.metadata?.name ?? '',
      body,
    };
    this.actions.push(action);
    const reacted = this.react?.(action);
    if (reacted !== undefined) return reacted as T;
    const key = storeKey(resource, namespace, action.name);
    const existing = this.store.get(key);
    const stamp = (obj: Stored): Stored => ({ ...obj, metadata: { ...obj.metadata, resourceVersion: String(++this.revision) } });
    switch (verb) {
      case 'create': {
        if (existing) throw new KubeError(409, 'AlreadyExists', `${resource} "${action.name}" already exists`);
        const created = stamp({ ...body!, metadata: { ...body!.metadata, namespace, creationTimestamp: this.now.toISOString() } });
        this.store.set(key, created);
        return structuredClone(created) as T;
      }
      case 'delete': {
        if (!existing) throw new KubeError(404, 'NotFound', `${resource} "${action.name}" not found`);
        this.store.delete(key);
        return { kind: 'Status', status: 'Success' } as T;
      }
      default: {
        if (!existing && verb !== 'apply') throw new KubeError(404, 'NotFound', `${resource} "${action.name}" not found`);
        const next = stamp((opts.contentType === MERGE_PATCH ? mergePatch(existing, body) : { ...existing, ...body }) as Stored);
        this.store.set(key, next);
        return structuredClone(next) as T;
      }
    }
  }

  /** Lists answer from the store; watches stay open and quiet until the cache stops. */
  override async list<T>(path: string): Promise<{ metadata: { resourceVersion: string }; items: T[] }> {
    return { metadata: { resourceVersion: '1' }, items: structuredClone(this.itemsOf(parsePath(path).resource)) as T[] };
  }

  override async watch<T>(_path: string, _query: unknown, _onEvent: (event: WatchEvent<T>) => void, signal: AbortSignal): Promise<void> {
    await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
  }
}

export interface Fixture {
  client: RecordingClient;
  caches: Caches;
  controller: SessionController;
  config: ReconcilerConfig;
  /** The writes made since the fixture was made (or since the last clearActions()). */
  actions(): string[];
  clearActions(): void;
  stop(): Promise<void>;
}

/** A controller over caches holding `objects`, at the fixed time `now`. */
export async function newFixture(
  objects: object[],
  opts: { now: Date; config?: Partial<ReconcilerConfig>; term?: LeaderTerm; metrics?: ControllerMetrics },
): Promise<Fixture> {
  const client = new RecordingClient(objects, opts.now);
  const caches = createCaches(client);
  await startCaches(caches, Object.keys(caches) as CacheName[]);
  const config = testReconcilerConfig(opts.config);
  const quiet = () => undefined;
  const controller = new SessionController({
    client,
    caches,
    config,
    log: { info: quiet, warn: quiet, error: quiet, debug: quiet },
    identity: 'test',
    term: opts.term,
    metrics: opts.metrics,
    now: () => opts.now,
  });
  return {
    client,
    caches,
    controller,
    config,
    actions: () => client.actions.filter((a) => a.resource !== 'events').map(actionText),
    clearActions: () => void client.actions.splice(0),
    async stop() {
      await controller.stop();
      await stopCaches(caches);
    },
  };
}
