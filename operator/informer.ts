// A supervised list+watch cache of one resource, shared by the reconciler and the API.
//
// @kubernetes/client-node's informer stops for good on any error but 410 and stalls silently on a half-open
// connection. This one never gives up: it relists on 410 Gone, backs off on errors, treats a watch that
// has been silent longer than `idleMs` (bookmarks included) as dead, ends each watch after a few minutes on
// the server's side, and replays the whole cache to listeners every `resyncMs`.
import { KubeError, type KubeClient, type WatchEvent } from '../src/kube/client.ts';

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; namespace?: string; resourceVersion?: string; labels?: Record<string, string> };
}

export type InformerEventType = 'ADDED' | 'MODIFIED' | 'DELETED' | 'RESYNC';

/** `old` is the previous cached object for MODIFIED, DELETED and RESYNC. */
export type Listener<T> = (type: InformerEventType, obj: T, old?: T) => void;

export interface InformerOptions {
  /** Collection path, e.g. /apis/vdi.kasm.io/v1alpha1/vdisessions (all namespaces). */
  path: string;
  name?: string;
  labelSelector?: string;
  resyncMs?: number;
  idleMs?: number;
  pageSize?: number;
  maxBackoffMs?: number;
}

export interface InformerStats {
  lists: number;
  watches: number;
  errors: number;
  gone: number;
  lastEventAt: number;
  resourceVersion: string;
}

export function objectKey(obj: KubeObject): string {
  const m = obj.metadata ?? {};
  return m.namespace ? `${m.namespace}/${m.name}` : (m.name ?? '');
}

class GoneError extends Error {}

export class Informer<T extends KubeObject> {
  readonly name: string;
  readonly stats: InformerStats = { lists: 0, watches: 0, errors: 0, gone: 0, lastEventAt: 0, resourceVersion: '' };
  private readonly store = new Map<string, T>();
  /** Typed over KubeObject so that an Informer of a narrower kind still reads as an Informer<KubeObject>. */
  private readonly listeners = new Set<Listener<KubeObject>>();
  private readonly client: KubeClient;
  private readonly opts: Required<Omit<InformerOptions, 'labelSelector' | 'name'>> & Pick<InformerOptions, 'labelSelector'>;
  private abort = new AbortController();
  private synced = false;
  private syncWaiters: (() => void)[] = [];
  private resyncTimer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private onError: (err: unknown) => void = () => {};
  private onListenerFailure: (err: unknown) => void = () => {};

  constructor(client: KubeClient, options: InformerOptions) {
    this.client = client;
    this.name = options.name ?? options.path;
    this.opts = {
      path: options.path,
      labelSelector: options.labelSelector,
      resyncMs: options.resyncMs ?? 10 * 60_000,
      // Longer than the longest server-side watch timeout below: a healthy watch is never silent that long.
      idleMs: options.idleMs ?? 150_000,
      pageSize: options.pageSize ?? 500,
      maxBackoffMs: options.maxBackoffMs ?? 30_000,
    };
  }

  /** Listens to every change; `old` is the previous cached object for MODIFIED and RESYNC. */
  on(listener: Listener<T>): () => void {
    // A wrapper per subscription, so that the same function subscribed twice is called twice.
    const subscription: Listener<KubeObject> = (type, obj, old) => listener(type, obj as T, old as T | undefined);
    this.listeners.add(subscription);
    return () => this.listeners.delete(subscription);
  }

  /**
   * Receives what a listener threw. Each listener is called on its own: one that throws neither keeps the event
   * from the listeners after it nor ends the watch that delivered it.
   */
  onListenerError(handler: (err: unknown) => void): void {
    this.onListenerFailure = handler;
  }

  /** Receives each error the informer recovers from (for logs and metrics). */
  onRecoveredError(handler: (err: unknown) => void): void {
    this.onError = handler;
  }

  get(key: string): T | undefined {
    return this.store.get(key);
  }

  list(): T[] {
    return [...this.store.values()];
  }

  get size(): number {
    return this.store.size;
  }

  hasSynced(): boolean {
    return this.synced;
  }

  async waitForSync(): Promise<void> {
    if (this.synced) return;
    await new Promise<void>((resolve) => this.syncWaiters.push(resolve));
  }

  start(): void {
    if (this.running) return;
    this.abort = new AbortController();
    this.running = this.loop();
    this.resyncTimer = setInterval(() => {
      for (const obj of this.store.values()) this.emit('RESYNC', obj, obj);
    }, this.opts.resyncMs);
    this.resyncTimer.unref();
  }

  async stop(): Promise<void> {
    this.abort.abort();
    clearInterval(this.resyncTimer);
    await this.running;
    this.running = undefined;
  }

  private async loop(): Promise<void> {
    let resourceVersion = '';
    let backoff = 250;
    const signal = this.abort.signal;
    while (!signal.aborted) {
      try {
        if (!resourceVersion) {
          resourceVersion = await this.relist();
          backoff = 250;
        }
        this.stats.watches++;
        await this.client.watch<T>(
          this.opts.path,
          {
            resourceVersion,
            allowWatchBookmarks: true,
            labelSelector: this.opts.labelSelector,
            // The server ends each watch after 1-2 minutes (we then resume from the last resourceVersion, no
            // relist); spreading the ends avoids bursts, and bounding them lets idleMs spot a dead connection.
            timeoutSeconds: 60 + Math.floor(Math.random() * 60),
          },
          (event: WatchEvent<T>) => {
            this.stats.lastEventAt = Date.now();
            // The connection works: the next failure starts backing off from the bottom again, not from
            // wherever an outage long ago left it.
            backoff = 250;
            if (event.type === 'ERROR') {
              const status = event.object as unknown as { code?: number; message?: string };
              if (status.code === 410) throw new GoneError(status.message);
              throw new KubeError(status.code ?? 500, 'WatchError', status.message ?? 'watch error');
            }
            const rv = event.object.metadata?.resourceVersion;
            if (rv) resourceVersion = rv;
            if (event.type !== 'BOOKMARK') this.apply(event.type, event.object);
          },
          signal,
          this.opts.idleMs,
        );
        backoff = 250;
      } catch (err) {
        if (signal.aborted) break;
        if (err instanceof GoneError || (err instanceof KubeError && err.status === 410)) {
          // Our resourceVersion was compacted away: the only correct recovery is a fresh list.
          this.stats.gone++;
          resourceVersion = '';
          continue;
        }
        this.stats.errors++;
        // 429: the apiserver asks for a moment, as while it (re)builds the watch cache of a resource whose CRD was
        // just installed ("storage is (re)initializing"). client-go's reflectors back off from it without a word;
        // so do we. Anything else is worth a report.
        if (!(err instanceof KubeError && err.status === 429)) this.onError(err);
        await sleep(backoff + Math.random() * backoff, signal);
        backoff = Math.min(backoff * 2, this.opts.maxBackoffMs);
      }
    }
  }

  /** Lists everything (paginated), replaces the cache and emits the differences. */
  private async relist(): Promise<string> {
    this.stats.lists++;
    const fresh = new Map<string, T>();
    let cont: string | undefined;
    let resourceVersion: string;
    do {
      const page = await this.client.list<T>(this.opts.path, {
        labelSelector: this.opts.labelSelector,
        limit: this.opts.pageSize,
        continue: cont,
      });
      for (const item of page.items) fresh.set(objectKey(item), item);
      cont = page.metadata.continue || undefined;
      resourceVersion = page.metadata.resourceVersion;
    } while (cont);
    for (const [key, old] of this.store) if (!fresh.has(key)) this.apply('DELETED', old);
    for (const obj of fresh.values()) this.apply(this.store.has(objectKey(obj)) ? 'MODIFIED' : 'ADDED', obj);
    this.stats.resourceVersion = resourceVersion;
    if (!this.synced) {
      this.synced = true;
      for (const resolve of this.syncWaiters.splice(0)) resolve();
    }
    return resourceVersion;
  }

  /**
   * An object this process has just written, as the apiserver returned it: cached (and emitted) at once, so
   * that work done before the watch delivers the same version does not act on the older one and write again.
   * The watch's copy of that version, and any older one still in flight, are then ignored.
   */
  remember(obj: T): void {
    if (!obj?.metadata?.name || !obj.metadata.resourceVersion) return;
    if (this.running) this.apply('MODIFIED', obj);
  }

  private apply(type: 'ADDED' | 'MODIFIED' | 'DELETED', obj: T): void {
    const key = objectKey(obj);
    const old = this.store.get(key);
    if (type === 'DELETED') {
      if (!old) return;
      this.store.delete(key);
      this.emit('DELETED', obj, old);
      return;
    }
    if (old?.metadata?.resourceVersion === obj.metadata?.resourceVersion) return;
    if (isOlder(obj.metadata?.resourceVersion, old?.metadata?.resourceVersion)) return;
    obj = withoutManagedFields(obj);
    this.store.set(key, obj);
    this.emit(old ? 'MODIFIED' : 'ADDED', obj, old);
  }

  private emit(type: InformerEventType, obj: T, old?: T): void {
    for (const listener of [...this.listeners]) {
      try {
        listener(type, obj, old);
      } catch (err) {
        this.onListenerFailure(err);
      }
    }
  }
}

/**
 * The object without `metadata.managedFields`: server-side apply's bookkeeping, often the largest part of a
 * small object and read by nothing that uses the cache (client-go's informers strip it the same way).
 */
export function withoutManagedFields<T extends KubeObject>(obj: T): T {
  const metadata = obj.metadata as (KubeObject['metadata'] & { managedFields?: unknown }) | undefined;
  if (!metadata?.managedFields) return obj;
  const { managedFields: _dropped, ...rest } = metadata;
  return { ...obj, metadata: rest };
}

/**
 * True when resourceVersion `a` is known to precede `b`. Resource versions are opaque, but etcd-backed
 * apiservers hand out decimal revisions; only those are compared, anything else counts as not older.
 */
export function isOlder(a: string | undefined, b: string | undefined): boolean {
  if (!a || !b || !/^\d+$/.test(a) || !/^\d+$/.test(b)) return false;
  return BigInt(a) < BigInt(b);
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        resolve();
      },
      { once: true },
    );
  });
}
