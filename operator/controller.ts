// The session reconciler: level-triggered and idempotent. reconcile(key) reads the world from the shared
// caches, computes the desired children with the pure builders, writes only what differs, and writes a
// status that says what is really happening. Nothing it needs lives in memory only: a restart converges.
import { AsyncLocalStorage } from 'node:async_hooks';
import { randomBytes } from 'node:crypto';
import type { V1Pod } from '@kubernetes/client-node';
import { KubeError, isConflict, isNotFound, type KubeClient } from '../src/kube/client.ts';
import { buildEndpointSlice, buildNetworkPolicy, buildPod, buildPvc, buildRouting, buildSecret, buildService, podReady } from './builders.ts';
import type { Caches } from './caches.ts';
import type { ReconcilerConfig } from './config.ts';
import { EventRecorder } from './events.ts';
import type { Informer, InformerEventType, KubeObject } from './informer.ts';
import { kindInfo, namedPath, objectPath, type Kind } from './kinds.ts';
import type { LeaderTerm } from './leader-election.ts';
import { childName, pvcName } from './naming.ts';
import { resolveSession, type EffectiveSession } from './resolve.ts';
import {
  expiredStatus,
  hasExpired,
  isSettled,
  mergeConditions,
  recordsEvent,
  sessionStatus,
  statusEqual,
  stoppedStatus,
  terminatingStatus,
  unresolvedStatus,
  type DesiredStatus,
} from './status.ts';
import {
  ANNOTATION_STOP_REASON,
  API_VERSION,
  FINALIZER,
  LABEL_SESSION,
  MANAGER,
  type SessionPhase,
  type VDISession,
  type VDISessionStatus,
  type VDITemplate,
} from './v1alpha1.ts';
import { WorkQueue, type ReconcileResult } from './work-queue.ts';

export interface Logger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
  debug(obj: object, msg?: string): void;
}

export interface ControllerMetrics {
  reconcile(ok: boolean, seconds: number): void;
  /** An Event was dropped because too many were waiting to be written. */
  eventDropped(): void;
  /** A desktop was stopped (idle, max age, or suspended by its user), freeing `slices` GPU slices. */
  desktopStopped?(reason: string, slices: number): void;
}

export interface SessionControllerOptions {
  client: KubeClient;
  caches: Caches;
  config: ReconcilerConfig;
  log: Logger;
  identity: string;
  /** The leadership term this controller works for: once it ends, nothing more is written. */
  term?: LeaderTerm;
  concurrency?: number;
  metrics?: ControllerMetrics;
  now?: () => Date;
}

const sessionPath = (ns: string, name: string) => namedPath('VDISession', ns, name);

/** Paths of the kinds the reconciler writes, by apiVersion and kind. */
/**
 * True when every field of `desired` has the same value in `actual` (fields the apiserver added are
 * ignored): the check that decides whether an owned object drifted and needs applying again.
 */
export function containsDesired(actual: unknown, desired: unknown): boolean {
  if (desired === null || typeof desired !== 'object') return actual === desired || String(actual) === String(desired);
  if (Array.isArray(desired)) {
    return Array.isArray(actual) && actual.length === desired.length && desired.every((d, i) => containsDesired(actual[i], d));
  }
  if (actual === null || typeof actual !== 'object') return false;
  return Object.entries(desired).every(([k, v]) => v === undefined || containsDesired((actual as Record<string, unknown>)[k], v));
}

/**
 * News that finishes a session's start or ends it: its pod running, ended, failing to pull or crashing, or
 * gone. Reconciles for such news go ahead of new sessions' first passes in the work queue.
 */
function podSettled(pod: V1Pod): boolean {
  if (pod.metadata?.deletionTimestamp) return true;
  if (!pod.status?.phase) return false;
  if (pod.status.phase !== 'Pending') return true;
  return (pod.status.containerStatuses ?? []).some((c) => c.state?.waiting?.reason && c.state.waiting.reason !== 'ContainerCreating');
}
/**
 * How long a new session's first status write may wait for news that would replace it at once: the scheduler's
 * verdict on its pod, then the desktop's readiness (seconds on a warm node). Each write saved is also an Event
 * saved, and under a storm of creates every write slows all the others.
 */
const AWAIT_FIRST_STATUS_MS = 2_000;
/** The states a new session's first status write may wait out (see AWAIT_FIRST_STATUS_MS). */
const TRANSIENT_REASONS = new Set(['Scheduling', 'ContainerCreating', 'PodInitializing', 'WaitingForReadiness']);

/**
 * How long to hold back a session's first status write, or undefined to write it now: a pod the scheduler has not
 * judged yet, or whose desktop is still starting, brings news worth a write soon (unschedulable, or bound and then
 * ready). Should it not come within AWAIT_FIRST_STATUS_MS of the pod's creation, the transient state is written.
 */
function firstStatusWait(session: VDISession, pod: V1Pod | undefined, desired: DesiredStatus, now: Date): number | undefined {
  if (session.status?.phase || !TRANSIENT_REASONS.has(desired.status.reason ?? '')) return undefined;
  const created = pod?.metadata?.creationTimestamp;
  const podAgeMs = created ? now.getTime() - Date.parse(String(created)) : Infinity;
  return podAgeMs < AWAIT_FIRST_STATUS_MS ? AWAIT_FIRST_STATUS_MS - Math.max(0, podAgeMs) : undefined;
}

/** A kind of child object (operator/kinds.ts gives its path) and its cache. */
interface OwnedKind {
  cache: Informer<KubeObject>;
  kind: Kind;
}

type Writable = { apiVersion: string; kind: string; metadata: { namespace?: string; name?: string } };

/** An events.k8s.io/v1 Event, as recordEvent builds it. */
type SessionEvent = { metadata: { namespace: string; name: string } } & Record<string, unknown>;

export class SessionController {
  readonly queue: WorkQueue;
  /** Events wait for a quiet moment of the queue (see events.ts). */
  readonly events: EventRecorder<SessionEvent>;
  private readonly o: SessionControllerOptions;
  private readonly unsubscribe: (() => void)[] = [];
  private readonly now: () => Date;
  /** Counts API writes by kind, for the benchmarks. */
  readonly writes = new Map<string, number>();
  /** API writes (Events excluded) per session key, while the session exists; see sessionWrites(). */
  private readonly writesBySession = new Map<string, Map<string, number>>();
  /** Writes of a namespace's shared objects in flight, by kind/namespace/name (see applyShared). */
  private readonly sharedWrites = new Map<string, Promise<unknown>>();
  /** Set while rememberOwn() puts a child we just wrote into its cache: that event enqueues nothing. */
  private rememberingOwn = false;
  /** The reconcile running: each write is charged to its session and goes out under its signal. */
  private readonly reconciling = new AsyncLocalStorage<{ key: string; signal: AbortSignal }>();

  constructor(options: SessionControllerOptions) {
    this.o = options;
    this.now = options.now ?? (() => new Date());
    this.queue = new WorkQueue((key, signal) => this.reconcile(key, signal), {
      signal: options.term?.signal,
      concurrency: options.concurrency ?? 16,
      onError: (key, err, attempt) => options.log.warn({ session: key, attempt, error: errorText(err) }, 'reconcile failed, will retry'),
      onDone: (_key, ms, ok) => options.metrics?.reconcile(ok, ms / 1000),
    });
    this.events = new EventRecorder({
      write: (event) => this.writeEvent(event),
      idle: () => this.queue.idle(),
      onDropped: () => {
        options.metrics?.eventDropped();
        options.log.debug({}, 'too many Events waiting; dropped one');
      },
    });
  }

  /** Subscribes to the caches and enqueues every session (the caches must be synced). */
  start(): void {
    const { caches } = this.o;
    // Owned objects name their session in the ownerReference (labels may hold a shortened name).
    const enqueueOwner = (obj: KubeObject, urgent: boolean) => {
      if (this.rememberingOwn) return;
      const m = obj.metadata as
        { namespace?: string; labels?: Record<string, string>; ownerReferences?: { kind: string; name: string }[] } | undefined;
      const name = m?.ownerReferences?.find((r) => r.kind === 'VDISession')?.name ?? m?.labels?.[LABEL_SESSION];
      if (m?.namespace && name) this.queue.add(`${m.namespace}/${name}`, urgent);
      else if (m?.namespace) {
        // A namespace's shared object (its auth Middleware, its NetworkPolicy) changed or went away: any of
        // its sessions puts it back; all are enqueued, and the first to run writes it once.
        for (const s of caches.sessions.list()) if (s.metadata.namespace === m.namespace) this.queue.add(`${m.namespace}/${s.metadata.name}`);
      }
    };
    const bySession = (_type: InformerEventType, obj: KubeObject) => enqueueOwner(obj, false);
    this.unsubscribe.push(
      caches.sessions.on((_type, s) => this.queue.add(`${s.metadata.namespace}/${s.metadata.name}`)),
      caches.templates.on((_type, t) => {
        for (const s of caches.sessions.list()) if (s.spec.template === t.metadata.name) this.queue.add(`${s.metadata.namespace}/${s.metadata.name}`);
      }),
      // A pod that just started, ended, failed or went away is news that finishes its session's work.
      caches.pods.on((type, pod, old) => enqueueOwner(pod, type === 'DELETED' || (podSettled(pod) && !(old && podSettled(old))))),
      caches.services.on(bySession),
      caches.endpointSlices.on(bySession),
      caches.secrets.on(bySession),
      caches.networkPolicies.on(bySession),
      ...this.routeKinds().map(({ cache }) => cache.on(bySession)),
    );
    for (const s of caches.sessions.list()) this.queue.add(`${s.metadata.namespace}/${s.metadata.name}`);
  }

  /**
   * Stops reconciling: takes no more keys, cancels the reconciles under way and waits for them to return, then
   * writes the Events held (unless the leadership term has ended).
   */
  async stop(): Promise<void> {
    for (const off of this.unsubscribe.splice(0)) off();
    await this.queue.stop();
    await this.events.stop();
  }

  private countWrite(kind: string): void {
    this.writes.set(kind, (this.writes.get(kind) ?? 0) + 1);
    const key = this.reconciling.getStore()?.key;
    if (!key || kind === 'event') return;
    const byKind = this.writesBySession.get(key) ?? new Map<string, number>();
    byKind.set(kind, (byKind.get(kind) ?? 0) + 1);
    this.writesBySession.set(key, byKind);
  }

  /** API writes made for one session (`namespace/name`) so far, Events excluded: the write budget's measure. */
  sessionWrites(key: string): number {
    return [...(this.writesBySession.get(key)?.values() ?? [])].reduce((a, b) => a + b, 0);
  }

  /** The same, by kind (`status`, `finalizer`, `Pod`, `Secret`, …). */
  sessionWritesByKind(key: string): Record<string, number> {
    return Object.fromEntries(this.writesBySession.get(key) ?? []);
  }

  /**
   * Brings one session (`namespace/name`) to its desired state. Every write goes out under `signal` (the work
   * queue's: aborted when the controller stops or its leadership term ends), and none starts after it aborted.
   */
  reconcile(key: string, signal: AbortSignal = this.queue.signal): Promise<ReconcileResult> {
    return this.reconciling.run({ key, signal }, () => this.reconcileSession(key));
  }

  private async reconcileSession(key: string): Promise<ReconcileResult> {
    const [namespace, name] = key.split('/') as [string, string];
    const session = this.o.caches.sessions.get(key);
    if (!session) {
      await this.deleteOrphans(namespace, name);
      this.writesBySession.delete(key);
      return {};
    }
    if (session.metadata.deletionTimestamp) return await this.finalize(session);
    // The finalizer is written beside the children, not before them: until it lands, deleting the session still
    // takes every owned child with it (ownerReferences), and the PVC is kept either way, so a new session's
    // desktop pod waits for no extra round trip. Every path below waits for it before returning.
    const finalizer = this.addFinalizer(session);
    const settled = isSettled(session);
    if (settled) return await this.settle(session, settled, finalizer);

    const template = this.o.caches.templates.get(session.spec.template);
    const resolution = resolveSession(session, template, this.o.config);
    if (!resolution.ok) {
      await finalizer;
      await this.writeStatus(session, unresolvedStatus(resolution));
      if (resolution.phase === 'Failed') await this.deletePod(namespace, childName(session));
      return {};
    }
    const now = this.now();
    if (hasExpired(session, now)) {
      await finalizer;
      await this.writeStatus(session, expiredStatus(session));
      await this.deleteSession(session);
      return {};
    }
    if (session.spec.suspend) return await this.stopDesktop(session, resolution.effective, finalizer, now);
    if (session.status?.phase === 'Stopped') await this.forgetStopReason(session);

    const pod = await this.applyChildren(session, template!, resolution.effective, finalizer);
    const { effective } = resolution;
    const desired = sessionStatus({
      session,
      pod,
      routed: this.routeObserved(session, pod),
      timeoutMs: effective.timeoutMs,
      resources: { gpu: effective.gpu, cpu: effective.cpu, memory: effective.memory },
      idle: effective.idle,
      now,
      config: this.o.config,
    });
    const wait = firstStatusWait(session, pod, desired, now);
    if (wait !== undefined) return { requeueAfterMs: wait };
    const verdict = desired.idle?.verdict;
    if (verdict?.action === 'stop') return await this.suspendForIdle(session, verdict.reason, effective, now);
    await this.writeStatus(session, desired);
    if (desired.status.phase === 'Failed') await this.stopPod(session);
    // Back at the expiry, to end the session then, or earlier for an idle warning or stop.
    return requeueAt(now, desired.status.expiresAt, desired.idle?.recheckAt);
  }

  /**
   * The idle deadline passed: spec.suspend is set (with the reason), conditional on the version the decision was
   * made from, so a client that connected meanwhile (a status write) wins and nothing stops. The stop itself
   * follows at once, as for any suspended session.
   */
  private async suspendForIdle(session: VDISession, reason: 'Idle' | 'MaxAge', effective: EffectiveSession, now: Date): Promise<ReconcileResult> {
    const { namespace, name, resourceVersion } = session.metadata as { namespace: string; name: string; resourceVersion?: string };
    let updated: VDISession;
    try {
      updated = await this.write('suspend', (client) =>
        client.mergePatch<VDISession>(sessionPath(namespace, name), {
          metadata: { resourceVersion, annotations: { [ANNOTATION_STOP_REASON]: reason } },
          spec: { suspend: true },
        }),
      );
    } catch (err) {
      // The session changed since it was read: its watch event brings it back to be judged again.
      if (isConflict(err)) return {};
      throw err;
    }
    this.o.caches.sessions.remember(updated);
    this.o.log.info({ session: `${namespace}/${name}`, reason }, 'stopping an idle desktop');
    return await this.stopDesktop(updated, effective, undefined, now);
  }

  /** A suspended session: its pod goes (the GPU slice with it), the rest stays; back at the expiry to end it. */
  private async stopDesktop(
    session: VDISession,
    effective: EffectiveSession,
    finalizer: Promise<void> | undefined,
    now: Date,
  ): Promise<ReconcileResult> {
    await finalizer;
    const { namespace } = session.metadata as { namespace: string };
    const hadPod = this.o.caches.pods.get(`${namespace}/${childName(session)}`);
    await this.stopPod(session);
    const desired = stoppedStatus(session, now);
    if (session.status?.phase !== 'Stopped' && hadPod) this.o.metrics?.desktopStopped?.(desired.status.reason!, effective.gpu);
    await this.writeStatus(session, desired);
    return requeueAt(now, desired.status.expiresAt, undefined);
  }

  /** A session resumed with kubectl keeps the reconciler's stop reason; it no longer applies (resumeVDISession clears it itself). */
  private async forgetStopReason(session: VDISession): Promise<void> {
    if (!session.metadata.annotations?.[ANNOTATION_STOP_REASON]) return;
    const { namespace, name } = session.metadata as { namespace: string; name: string };
    const updated = await this.write('annotation', (client) =>
      client.mergePatch<VDISession>(sessionPath(namespace, name), { metadata: { annotations: { [ANNOTATION_STOP_REASON]: null } } }),
    );
    this.o.caches.sessions.remember(updated);
  }

  /** The finalizer's write, when the session lacks it; the cache learns the result at once. */
  private addFinalizer(session: VDISession): Promise<void> | undefined {
    if (session.metadata.finalizers?.includes(FINALIZER)) return undefined;
    const {
      namespace,
      name,
      finalizers = [],
      resourceVersion,
    } = session.metadata as { namespace: string; name: string; finalizers?: string[]; resourceVersion?: string };
    return this.write('finalizer', (client) =>
      client.mergePatch<VDISession>(sessionPath(namespace, name), { metadata: { finalizers: [...finalizers, FINALIZER], resourceVersion } }),
    ).then((updated) => this.o.caches.sessions.remember(updated));
  }

  /** An Expired session is deleted; a Failed one keeps its status and loses its pod (the GPU slice is freed). */
  private async settle(session: VDISession, settled: 'Expired' | 'Failed', finalizer: Promise<void> | undefined): Promise<ReconcileResult> {
    await finalizer;
    if (settled === 'Expired') await this.deleteSession(session);
    else await this.stopPod(session);
    return {};
  }

  /**
   * Writes each child that is missing or drifted from what the builders want, all at once: none depends on another
   * at the API (the pod names its Secret and PVC, which the kubelet needs, not the apiserver). Returns the pod as
   * it now is. A desktop whose pod is gone after it started gets no new pod (see sessionStatus: PodLost).
   */
  private async applyChildren(
    session: VDISession,
    template: VDITemplate,
    effective: EffectiveSession,
    finalizer: Promise<void> | undefined,
  ): Promise<V1Pod | undefined> {
    const { caches, config } = this.o;
    const namespace = session.metadata.namespace!;
    const podName = childName(session);
    let pod = caches.pods.get(`${namespace}/${podName}`);
    const writes: Promise<unknown>[] = finalizer ? [finalizer] : [];
    if (!caches.secrets.get(`${namespace}/${childName(session)}`)) {
      // Random per session, created once; never logged, never in status.
      writes.push(
        this.createIfAbsent(
          buildSecret(session, randomBytes(18).toString('base64url'), randomBytes(24).toString('base64url'), randomBytes(24).toString('base64url')),
        ),
      );
    }
    if (effective.persistence.enabled && !caches.pvcs.get(`${namespace}/${pvcName(session.spec.user, session.spec.template)}`)) {
      writes.push(this.createIfAbsent(buildPvc(session, effective, config)));
    }
    writes.push(this.applyShared(buildNetworkPolicy(session, config), caches.networkPolicies));
    writes.push(this.applyIfDrifted(buildService(session), caches.services));
    for (const obj of buildRouting(session, config)) {
      if (obj.kind === 'Middleware') writes.push(this.applyShared(obj, caches.middlewares));
      else writes.push(this.applyIfDrifted(obj, this.cacheOf(obj.kind)!));
    }
    if (!pod && !session.status?.startTime) {
      writes.push(
        this.createIfAbsent(buildPod(session, template, effective, config, childName(session))).then((created) => {
          pod = (created as V1Pod | undefined) ?? caches.pods.get(`${namespace}/${podName}`);
        }),
      );
    }
    writes.push(this.routeTo(session, pod));
    // Every write settles before any failure is reported, so a retry finds what did succeed in the caches.
    const outcomes = await Promise.allSettled(writes);
    const failed = outcomes.find((o): o is PromiseRejectedResult => o.status === 'rejected');
    if (failed) throw failed.reason;
    return pod;
  }

  /**
   * Whether the route objects the apiserver holds (as last seen) are those the session needs, and, once its pod is
   * ready, whether the Service's EndpointSlice lists that pod: Running means the desktop can be reached.
   */
  private routeObserved(session: VDISession, pod: V1Pod | undefined): boolean {
    const objects = podReady(pod)
      ? [...buildRouting(session, this.o.config), buildEndpointSlice(session, pod)]
      : buildRouting(session, this.o.config);
    return objects.every((obj) => {
      const { apiVersion: _a, kind: _k, ...desired } = obj;
      return containsDesired(this.cacheOf(obj.kind)?.get(`${obj.metadata.namespace}/${obj.metadata.name}`), desired);
    });
  }

  /**
   * The Service's EndpointSlice, when it must change: the pod's address once it is ready, none once it is not
   * (not ready, stopping, gone). Not written before the pod is first ready: a Service without a slice has no
   * endpoints, which is what an empty one says, one write sooner.
   */
  private async routeTo(session: VDISession, pod: V1Pod | undefined): Promise<void> {
    const slice = buildEndpointSlice(session, pod);
    const cached = this.o.caches.endpointSlices.get(`${slice.metadata.namespace}/${slice.metadata.name}`);
    if (!slice.endpoints?.length && !cached?.endpoints?.length) return;
    await this.applyIfDrifted(slice, this.o.caches.endpointSlices);
  }

  /** Termination: stop the desktop, say so, and let garbage collection take the owned objects. The PVC stays. */
  private async finalize(session: VDISession): Promise<ReconcileResult> {
    if (!session.metadata.finalizers?.includes(FINALIZER)) return {};
    const { namespace, name } = session.metadata as { namespace: string; name: string };
    if (session.status?.phase !== 'Terminating' && session.status?.phase !== 'Expired') {
      await this.writeStatus(session, terminatingStatus(session));
    }
    const podName = childName(session);
    const pod = this.o.caches.pods.get(`${namespace}/${podName}`);
    // The desktop stops taking connections before it stops: its address leaves the route first.
    await this.routeTo(session, undefined);
    if (pod) {
      if (!pod.metadata?.deletionTimestamp) await this.deletePod(namespace, podName);
      // The pod's DELETED event brings us back here.
      return {};
    }
    await this.write('finalizer', (client) =>
      client.mergePatch(sessionPath(namespace, name), {
        metadata: {
          finalizers: (session.metadata.finalizers ?? []).filter((f) => f !== FINALIZER),
          resourceVersion: session.metadata.resourceVersion,
        },
      }),
    );
    this.o.log.info({ session: `${namespace}/${name}` }, 'session terminated');
    return {};
  }

  /**
   * The route kinds of the ingress mode in use, routes before the middlewares they name. Only their caches are
   * started (src/service.ts): the other mode's kinds may not even be served by this cluster.
   */
  private routeKinds(): OwnedKind[] {
    const { caches, config } = this.o;
    return config.ingressMode === 'ingress'
      ? [{ cache: caches.ingresses, kind: 'Ingress' }]
      : [
          { cache: caches.ingressRoutes, kind: 'IngressRoute' },
          { cache: caches.middlewares, kind: 'Middleware' },
        ];
  }

  /** Children of ours whose session no longer exists (garbage collection normally gets there first). */
  private async deleteOrphans(namespace: string, name: string): Promise<void> {
    const { caches } = this.o;
    const kinds: OwnedKind[] = [
      { cache: caches.pods, kind: 'Pod' },
      ...this.routeKinds(),
      { cache: caches.endpointSlices, kind: 'EndpointSlice' },
      { cache: caches.services, kind: 'Service' },
      { cache: caches.networkPolicies, kind: 'NetworkPolicy' },
      { cache: caches.secrets, kind: 'Secret' },
    ];
    for (const { cache, kind } of kinds) {
      for (const obj of cache.list()) {
        const m = obj.metadata as { namespace?: string; name?: string; labels?: Record<string, string>; deletionTimestamp?: string } | undefined;
        if (m?.namespace !== namespace || m.labels?.[LABEL_SESSION] !== name || m.deletionTimestamp) continue;
        await this.write('delete-orphan', (client) => client.delete(namedPath(kind, namespace, m.name!))).catch(ignoreNotFound);
        this.o.log.info({ session: `${namespace}/${name}`, kind }, 'deleted an orphaned object');
      }
    }
  }

  /**
   * An object every session of a namespace shares: applied once when missing or drifted. The reconciles of
   * a namespace's sessions run concurrently (a storm of creates), so one write serves all that find it
   * missing at the same time.
   */
  private applyShared(obj: Writable, cache: { get(key: string): unknown }): Promise<unknown> {
    const key = `${obj.kind}/${obj.metadata.namespace}/${obj.metadata.name}`;
    let inFlight = this.sharedWrites.get(key);
    if (!inFlight) {
      inFlight = this.applyIfDrifted(obj, cache).finally(() => this.sharedWrites.delete(key));
      this.sharedWrites.set(key, inFlight);
    }
    return inFlight;
  }

  private async deleteSession(session: VDISession): Promise<void> {
    const { namespace, name } = session.metadata as { namespace: string; name: string };
    await this.write('delete-session', (client) => client.delete(sessionPath(namespace, name))).catch(ignoreNotFound);
  }

  /** The desktop stops (its GPU slice freed) and its address leaves the route: the pod's IP is soon another pod's. */
  private async stopPod(session: VDISession): Promise<void> {
    await Promise.all([this.deletePod(session.metadata.namespace!, childName(session)), this.routeTo(session, undefined)]);
  }

  private async deletePod(namespace: string, name: string): Promise<void> {
    const pod = this.o.caches.pods.get(`${namespace}/${name}`);
    if (!pod || pod.metadata?.deletionTimestamp) return;
    const deleted = await this.write('delete-pod', (client) => client.delete<V1Pod>(namedPath('Pod', namespace, name))).catch(ignoreNotFound);
    // A graceful delete answers with the pod, now carrying its deletionTimestamp: no second delete.
    if (deleted?.kind === 'Pod') this.rememberOwn('Pod', deleted);
  }

  /**
   * A child object as our write returned it, into its cache at once (see Informer.remember), without the run it
   * would bring its session: the reconcile that wrote it goes on from the cache that now holds it. Not for the
   * session itself: the version a write returns may carry someone else's change made meanwhile (a new spec, a
   * presence report), whose own watch event, older, the cache then skips; that run is what sees it.
   */
  private rememberOwn(kind: string, obj: KubeObject): void {
    this.rememberingOwn = true;
    try {
      this.cacheOf(kind)?.remember(obj);
    } finally {
      this.rememberingOwn = false;
    }
  }

  /** The cache that holds objects of `kind` (for writing through what we just wrote). */
  private cacheOf(kind: string): Informer<KubeObject> | undefined {
    const cache = kindInfo(kind).cache;
    return cache && (this.o.caches[cache] as unknown as Informer<KubeObject>);
  }

  private async createIfAbsent(obj: Writable): Promise<unknown> {
    try {
      const created = await this.write(obj.kind, (client) => client.create<KubeObject>(objectPath(obj, false), obj));
      this.rememberOwn(obj.kind, created);
      return created;
    } catch (err) {
      // Created by an earlier run whose cache had not caught up yet: exactly the state we want.
      if (isConflict(err)) return undefined;
      throw err;
    }
  }

  /** Server-side apply when the cached object is missing or differs; returns true when in place. */
  private async applyIfDrifted(obj: Writable, cache: { get(key: string): unknown }): Promise<boolean> {
    const cached = cache.get(`${obj.metadata.namespace}/${obj.metadata.name}`);
    const { apiVersion: _a, kind: _k, ...desired } = obj;
    if (cached && containsDesired(cached, desired)) return true;
    let applied = await this.write(obj.kind, (client) => client.apply<KubeObject>(objectPath(obj), obj, MANAGER)).catch((err: unknown) => {
      if (err instanceof KubeError && err.status === 422) return undefined;
      throw err;
    });
    if (!applied || !containsDesired(applied, desired)) {
      // Someone else's edit owns a conflicting list entry (a Service port changed by hand keeps its entry,
      // and apply adds ours beside it, or fails on the duplicate port name). A merge patch replaces lists
      // whole, which puts back exactly what we want.
      applied = await this.write(obj.kind, (client) => client.mergePatch<KubeObject>(objectPath(obj), obj, undefined, MANAGER));
    }
    this.rememberOwn(obj.kind, applied);
    return true;
  }

  /** Writes the status when it differs from the one the session has; a phase change is logged and recorded as an Event. */
  private async writeStatus(session: VDISession, { status: next, conditions }: DesiredStatus): Promise<void> {
    const prev = session.status ?? {};
    const generation = session.metadata.generation ?? 0;
    const status: VDISessionStatus = {
      ...next,
      observedGeneration: generation,
      conditions: mergeConditions(prev.conditions ?? [], conditions, this.now()),
    };
    if (statusEqual(prev, status)) return;
    const { namespace, name } = session.metadata as { namespace: string; name: string };
    // Fields absent from the new status are removed (null in a merge patch), so a stale reason never lingers.
    // status.presence is the presence endpoint's: written only when the reconciler means to change it (a stop
    // clears it), never copied back from a cache that may not have seen the endpoint's latest write.
    const patch: Record<string, unknown> = {};
    for (const k of new Set([...Object.keys(prev), ...Object.keys(status)])) {
      if (k === 'presence' && statusEqual({ presence: prev.presence }, { presence: status.presence })) continue;
      patch[k] = (status as Record<string, unknown>)[k] ?? null;
    }
    const updated = await this.write('status', (client) =>
      client.mergePatch<VDISession>(`${sessionPath(namespace, name)}/status`, { status: patch }),
    );
    this.o.caches.sessions.remember(updated);
    if (prev.phase !== status.phase) {
      this.o.log.info({ session: `${namespace}/${name}`, phase: status.phase, reason: status.reason }, 'session phase changed');
      if (recordsEvent(status.phase!))
        this.recordEvent(session, status.phase!, status.reason ?? status.phase!, status.message ?? `phase ${status.phase}`);
    }
  }

  /** An events.k8s.io/v1 Event on the session, stamped now and written when the queue is quiet; best effort. */
  private recordEvent(session: VDISession, phase: SessionPhase, reason: string, note: string): void {
    const { namespace, name, uid } = session.metadata as { namespace: string; name: string; uid: string };
    this.events.record({
      apiVersion: 'events.k8s.io/v1',
      kind: 'Event',
      // client-go's naming (generateName may not end in a dot): the session's name and a unique suffix.
      metadata: { name: eventName(name), namespace },
      eventTime: this.now().toISOString().replace(/Z$/, '000Z'),
      reportingController: `${API_VERSION.split('/')[0]}/${MANAGER}`,
      reportingInstance: this.o.identity,
      action: phase,
      reason: reason.slice(0, 128),
      note: note.slice(0, 1024),
      type: phase === 'Failed' ? 'Warning' : 'Normal',
      regarding: { apiVersion: API_VERSION, kind: 'VDISession', name, namespace, uid },
    });
  }

  private async writeEvent(event: SessionEvent): Promise<void> {
    const { namespace } = event.metadata;
    try {
      // Under the term's signal only: Events held when the controller stops are still written, unless the lease is lost.
      await this.write(
        'event',
        (client) => client.create(`/apis/events.k8s.io/v1/namespaces/${namespace}/events`, event),
        this.o.term?.signal ?? NEVER,
      );
    } catch (err) {
      this.o.log.debug({ event: event.metadata.name, error: errorText(err) }, 'could not record an event');
    }
  }

  /**
   * Every API write goes through here: refused once its signal (by default the running reconcile's) has aborted
   * or the leadership term no longer holds, and cancelled when they end while it is in flight.
   */
  private async write<T>(
    kind: string,
    fn: (client: KubeClient) => Promise<T>,
    signal = this.reconciling.getStore()?.signal ?? this.queue.signal,
  ): Promise<T> {
    signal.throwIfAborted();
    this.o.term?.confirm();
    this.countWrite(kind);
    return await fn(this.o.client.withSignal(signal));
  }
}

const NEVER = new AbortController().signal;

/** Back at the earliest of the times given (the expiry, an idle warning or stop), or not at all. */
function requeueAt(now: Date, expiresAt: string | undefined, recheckAt: Date | undefined): ReconcileResult {
  const times = [expiresAt ? Date.parse(expiresAt) : undefined, recheckAt?.getTime()].filter((t): t is number => t !== undefined && !Number.isNaN(t));
  return times.length ? { requeueAfterMs: Math.max(0, Math.min(...times) - now.getTime()) } : {};
}

function ignoreNotFound(err: unknown): undefined {
  if (!isNotFound(err)) throw err;
  return undefined;
}

/** `<object>.<16 hex>`, at most 253 characters, as client-go names its Events. */
export function eventName(objectName: string): string {
  return `${objectName.slice(0, 253 - 17).replace(/[.-]+$/, '')}.${randomBytes(8).toString('hex')}`;
}

/**
 * A log-safe description of an error: the Kubernetes status and reason, the apiserver's own message for server
 * errors (it describes the server, e.g. "range is full"), and only the field names of a validation failure
 * (its message may quote values from the object, such as the TURN path secret in the pod's env). Never headers
 * or bodies.
 */
export function errorText(err: unknown): string {
  if (err instanceof KubeError) {
    if (err.status >= 500 || err.status === 429) return `${err.status} ${err.reason}: ${err.message}`;
    const causes = (err.details as { causes?: { field?: string }[] } | undefined)?.causes ?? [];
    const fields = [...new Set(causes.map((c) => c.field).filter((f): f is string => !!f))];
    return fields.length ? `${err.status} ${err.reason} (fields: ${fields.join(', ')})` : `${err.status} ${err.reason}`;
  }
  return err instanceof Error ? err.message : String(err);
}
