// What the API shows of a session and a template: the same effective settings, limits and URL the reconciler
// computes (operator/resolve.ts, operator/builders.ts), so a client sees the numbers the pod gets and the
// address the desktop will have, not just what was written into the object.
import { sessionUrl } from '../../operator/builders.ts';
import type { ReconcilerConfig } from '../../operator/config.ts';
import { CONDITION_IDLE_WARNING, idleSchedule } from '../../operator/idle.ts';
import { quantityText } from '../../formats/quantity.ts';
import { resolveSession, sessionLimits } from '../../operator/resolve.ts';
import type { Quantity, VDISession, VDITemplate } from '../../operator/v1alpha1.ts';

export interface SessionSpecView {
  user: string;
  template: string;
  resources: { gpu: number | null; memory: string | null; cpu: string | null };
  persistence: { enabled: boolean; size: string | null } | null;
  timeout: string | null;
  idleTimeout: string | null;
  suspend: boolean;
}

const text = (value: Quantity | undefined): string | null => (value === undefined ? null : quantityText(value));

/**
 * The session's spec with its template's defaults applied. When the reconciler cannot give it a desktop (no
 * template, a request beyond the limits) there are no effective settings: the request is shown as written.
 */
export function sessionSpecView(session: VDISession, template: VDITemplate | undefined, config: ReconcilerConfig): SessionSpecView {
  // A list of 1,000 sessions asks for this 1,000 times per query, of objects that seldom change: resolved once
  // per version of the spec (the cache's object, which the API's copies share) and of its template.
  const known = specViews.get(session.spec);
  const view = known && known.template === template && known.config === config ? known.view : specView(session, template, config);
  if (!known || known.view !== view) specViews.set(session.spec, { template, config, view });
  // Once the reconciler has said what the desktop runs with (its pod's limits), that is the truth: the template
  // may have changed since the start, and a running desktop keeps what it was given.
  const ran = session.status?.resources;
  if (!ran) return view;
  return { ...view, resources: { gpu: ran.gpu, memory: ran.memory, cpu: ran.cpu } };
}

const specViews = new WeakMap<VDISession['spec'], { template: VDITemplate | undefined; config: ReconcilerConfig; view: SessionSpecView }>();

function specView(session: VDISession, template: VDITemplate | undefined, config: ReconcilerConfig): SessionSpecView {
  const { spec } = session;
  const resolution = resolveSession(session, template, config);
  if (resolution.ok) {
    const { effective } = resolution;
    return {
      user: spec.user,
      template: spec.template,
      resources: { gpu: effective.gpu, memory: effective.memory, cpu: effective.cpu },
      persistence: { enabled: effective.persistence.enabled, size: effective.persistence.size },
      timeout: spec.timeout ?? null,
      idleTimeout: spec.idleTimeout ?? null,
      suspend: spec.suspend ?? false,
    };
  }
  return {
    user: spec.user,
    template: spec.template,
    resources: { gpu: spec.resources?.gpu ?? null, memory: text(spec.resources?.memory), cpu: text(spec.resources?.cpu) },
    persistence: spec.persistence ? { enabled: spec.persistence.enabled ?? false, size: text(spec.persistence.size) } : null,
    timeout: spec.timeout ?? null,
    idleTimeout: spec.idleTimeout ?? null,
    suspend: spec.suspend ?? false,
  };
}

export interface SessionPresenceView {
  connected: boolean | null;
  lastActivity: string | null;
  idleSince: string | null;
  stopAt: string | null;
  stopReason: string | null;
  warning: boolean;
}

/** The desktop's report and the idle schedule the reconciler acts on (operator/idle.ts), at `now`. */
export function sessionPresenceView(
  session: VDISession,
  template: VDITemplate | undefined,
  config: ReconcilerConfig,
  now: Date,
): SessionPresenceView {
  const presence = session.status?.presence;
  const resolution = resolveSession(session, template, config);
  const schedule = resolution.ok ? idleSchedule(session, resolution.effective.idle, now) : undefined;
  return {
    connected: presence?.connected ?? null,
    lastActivity: presence?.lastActivity ?? null,
    idleSince: schedule?.idleSince?.toISOString() ?? null,
    stopAt: schedule?.stopAt?.toISOString() ?? null,
    stopReason: schedule?.reason ?? null,
    warning: session.status?.conditions?.some((c) => c.type === CONDITION_IDLE_WARNING && c.status === 'True') ?? false,
  };
}

/** The desktop's URL: the reconciler's once it wrote one, else the one it will write (the same rule). */
export function sessionUrlView(session: VDISession, config: ReconcilerConfig): string {
  if (session.status?.url) return session.status.url;
  // Before the reconciler has written it, the URL is derived (a SHA-256 when the host needs its hashed form):
  // once per session object (the spec is the cache's, shared by the API's copies), not once per query.
  const known = urlViews.get(session.spec);
  if (known && known.config === config) return known.url;
  const url = sessionUrl(session, config);
  urlViews.set(session.spec, { config, url });
  return url;
}

const urlViews = new WeakMap<VDISession['spec'], { config: ReconcilerConfig; url: string }>();

export interface TemplateResourcesView {
  defaultGPU: number;
  maxGPU: number;
  defaultMemory: string;
  maxMemory: string | null;
  defaultCPU: string;
  maxCPU: string | null;
}

/** A template's defaults and maxima as the reconciler enforces them (sessionLimits). */
export function templateView(
  template: VDITemplate,
  config: ReconcilerConfig,
): {
  resources: TemplateResourcesView;
  defaultTimeout: string;
  maxTimeout: string | null;
  persistence: { defaultEnabled: boolean; defaultSize: string; maxSize: string | null };
} {
  const limits = sessionLimits(template, config);
  return {
    resources: {
      defaultGPU: limits.gpu.default,
      // Always bounded: a desktop uses at most MAX_GPU_SLICES_PER_DESKTOP.
      maxGPU: limits.gpu.max ?? limits.gpu.default,
      defaultMemory: quantityText(limits.memory.default),
      maxMemory: text(limits.memory.max),
      defaultCPU: quantityText(limits.cpu.default),
      maxCPU: text(limits.cpu.max),
    },
    defaultTimeout: limits.timeout.default,
    maxTimeout: limits.timeout.max ?? null,
    persistence: {
      defaultEnabled: limits.persistence.defaultEnabled,
      defaultSize: quantityText(limits.persistence.size.default),
      maxSize: text(limits.persistence.size.max),
    },
  };
}
