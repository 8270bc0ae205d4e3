// Prometheus metrics: API operations, WebSocket load, informer health, reconciles and apiserver requests.
import { Kind, type OperationDefinitionNode } from 'graphql';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Caches, CacheName } from '../operator/caches.ts';
import type { ControllerMetrics } from '../operator/controller.ts';
import type { ReconcilerConfig } from '../operator/config.ts';
import { idleReclaimFigures } from './sessions/idle-reclaim.ts';
import { PRESENCE_OUTCOMES } from './desktop-access/presence.ts';
import type { RequestCounter } from './kube/client.ts';

export interface Metrics {
  registry: Registry;
  operations: Histogram<'operation' | 'type' | 'outcome'>;
  wsConnections: Gauge;
  subscriptions: Gauge;
  reconciler: ControllerMetrics;
  kubeRequests: RequestCounter;
  /** Provisioning refused to take over a user's Namespace, RoleBinding or ResourceQuota held by another. */
  namespaceTakeoversRefused: Counter<'kind'>;
  /** Desktops' presence reports by what became of them (src/desktop-access/presence.ts). */
  presenceReports: Counter<'outcome'>;
  watchInformers(caches: Caches, names: CacheName[]): void;
  /** Gauges of idle desktops and what stopping them gave back, read from the session cache at each scrape. */
  watchIdle(caches: Pick<Caches, 'sessions' | 'templates'>, config: ReconcilerConfig): void;
}

/**
 * The `operation` label of an operation: its first root field (`createVDISession`, `sessions`, …), which the
 * schema bounds, never the operation name a client chose (one label value per name would let anyone grow the
 * metrics without limit). Fields the schema does not have, and documents that never became an operation,
 * count as `invalid`.
 */
export function operationLabel(operation: OperationDefinitionNode | null | undefined, rootFields: ReadonlySet<string>): string {
  const first = operation?.selectionSet.selections.find((s) => s.kind === Kind.FIELD);
  if (!first) return operation ? 'fragment' : 'invalid';
  return rootFields.has(first.name.value) ? first.name.value : 'invalid';
}

export function createMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'vdi_' });
  const operations = new Histogram({
    name: 'vdi_graphql_operation_duration_seconds',
    help: 'GraphQL operations by root field, type and outcome',
    labelNames: ['operation', 'type', 'outcome'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });
  const wsConnections = new Gauge({ name: 'vdi_websocket_connections', help: 'Open graphql-ws connections', registers: [registry] });
  const subscriptions = new Gauge({ name: 'vdi_subscriptions', help: 'Active GraphQL subscriptions', registers: [registry] });
  const reconciles = new Histogram({
    name: 'vdi_reconcile_duration_seconds',
    help: 'Session reconciles by outcome',
    labelNames: ['outcome'] as const,
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5],
    registers: [registry],
  });
  const eventsDropped = new Counter({
    name: 'vdi_events_dropped_total',
    help: 'Kubernetes Events the reconciler dropped because over 1,000 were waiting to be written',
    registers: [registry],
  });
  const kubeRequests = new Counter({
    name: 'vdi_kube_requests_total',
    help: 'Requests to the Kubernetes API by verb and status code',
    labelNames: ['verb', 'code'] as const,
    registers: [registry],
  });
  const namespaceTakeoversRefused = new Counter({
    name: 'vdi_namespace_takeovers_refused_total',
    help: "Objects of a user's namespace that provisioning refused to take over because another user owns them, by kind",
    labelNames: ['kind'] as const,
    registers: [registry],
  });
  const presenceReports = new Counter({
    name: 'vdi_presence_reports_total',
    help: "Desktops' client reports by outcome: written (a real change, one status write), unchanged, stale, stopped, throttled (over a desktop's writes per minute), refused (bad token)",
    labelNames: ['outcome'] as const,
    registers: [registry],
  });
  for (const outcome of PRESENCE_OUTCOMES) presenceReports.inc({ outcome }, 0);
  const idleStops = new Counter({
    name: 'vdi_idle_stops_total',
    help: 'Desktops the reconciler stopped, by reason (Idle, MaxAge, Suspended)',
    labelNames: ['reason'] as const,
    registers: [registry],
  });
  const slicesReclaimedTotal = new Counter({
    name: 'vdi_gpu_slices_reclaimed_total',
    help: 'GPU slices freed by stopping desktops',
    registers: [registry],
  });
  return {
    registry,
    operations,
    namespaceTakeoversRefused,
    presenceReports,
    wsConnections,
    subscriptions,
    reconciler: {
      reconcile: (ok, seconds) => reconciles.observe({ outcome: ok ? 'success' : 'error' }, seconds),
      eventDropped: () => eventsDropped.inc(),
      desktopStopped: (reason, slices) => {
        idleStops.inc({ reason });
        slicesReclaimedTotal.inc(slices);
      },
    },
    kubeRequests: { count: (verb, _path, code) => kubeRequests.inc({ verb, code: String(code) }) },
    watchIdle(caches, config) {
      // One computation per scrape, shared by the gauges below (each collect() runs in the same scrape).
      let cached: { at: number; figures: ReturnType<typeof idleReclaimFigures> } | undefined;
      const figures = () => {
        if (!cached || Date.now() - cached.at > 1000) {
          cached = { at: Date.now(), figures: idleReclaimFigures(caches.sessions.list(), (name) => caches.templates.get(name), config, new Date()) };
        }
        return cached.figures;
      };
      new Gauge({
        name: 'vdi_sessions_idle',
        help: 'Running desktops nobody is connected to (or that have not reported)',
        registers: [registry],
        collect() {
          this.set(figures().idleSessions);
        },
      });
      new Gauge({
        name: 'vdi_sessions_idle_warned',
        help: 'Running desktops warned of a coming stop',
        registers: [registry],
        collect() {
          this.set(figures().warnedSessions);
        },
      });
      new Gauge({
        name: 'vdi_sessions_stopped',
        help: 'Stopped desktops by reason',
        labelNames: ['reason'] as const,
        registers: [registry],
        collect() {
          this.reset();
          for (const reason of ['Idle', 'MaxAge', 'Suspended']) this.set({ reason }, 0);
          for (const { reason, count } of figures().stoppedSessions) this.set({ reason }, count);
        },
      });
      new Gauge({
        name: 'vdi_gpu_slices_reclaimed',
        help: 'GPU slices the stopped desktops would otherwise hold',
        registers: [registry],
        collect() {
          this.set(figures().slicesReclaimed);
        },
      });
      new Gauge({
        name: 'vdi_gpu_hours_saved',
        help: 'GPU slice-hours not held by the desktops stopped now, from each stop until now or expiry',
        registers: [registry],
        collect() {
          this.set(figures().gpuHoursSaved);
        },
      });
    },
    watchInformers(caches, names) {
      const label = ['informer'] as const;
      new Gauge({
        name: 'vdi_informer_seconds_since_last_event',
        help: 'Informer lag: seconds since the watch last delivered an event or bookmark',
        labelNames: label,
        registers: [registry],
        collect() {
          for (const n of names) {
            const at = caches[n].stats.lastEventAt;
            this.set({ informer: n }, at ? (Date.now() - at) / 1000 : -1);
          }
        },
      });
      new Gauge({
        name: 'vdi_informer_objects',
        help: 'Objects in each informer cache',
        labelNames: label,
        registers: [registry],
        collect() {
          for (const n of names) this.set({ informer: n }, caches[n].size);
        },
      });
      new Gauge({
        name: 'vdi_informer_relists',
        help: 'Full relists per informer (410 Gone and restarts)',
        labelNames: label,
        registers: [registry],
        collect() {
          for (const n of names) this.set({ informer: n }, caches[n].stats.lists);
        },
      });
    },
  };
}
