// Pure status rules, all of them: what a session's status says given what the reconciler observed (its pod,
// its route, its template's verdict, the time). The reconciler decides nothing about phases or reasons itself;
// it observes, calls these, and writes the result.
import type { V1ContainerStatus, V1Pod, V1PodCondition } from '@kubernetes/client-node';
import { podReady, podResources, sessionUrl } from './builders.ts';
import type { ReconcilerConfig } from './config.ts';
import { clientConnectedCondition, idleVerdict, idleWarningCondition, type IdleVerdict } from './idle.ts';
import type { IdlePolicy, Resolution } from './resolve.ts';
import { ANNOTATION_STOP_REASON, type Condition, type SessionPhase, type VDISession, type VDISessionStatus } from './v1alpha1.ts';

/** A status to write, before observedGeneration and the merge of conditions (see mergeConditions). */
export interface DesiredStatus {
  status: VDISessionStatus;
  /** Conditions stamped with `now`. */
  conditions: Condition[];
  /** For a Running desktop: what to do about idleness now, and when to look again (operator/idle.ts). */
  idle?: { verdict: IdleVerdict; recheckAt: Date | undefined };
}

export interface ObservedSession {
  session: VDISession;
  /** The desktop pod, if there is one. */
  pod: V1Pod | undefined;
  /** Whether the route objects the apiserver holds are the ones the session needs. */
  routed: boolean;
  /** The session's effective timeout (resolveSession). */
  timeoutMs: number;
  /**
   * What the desktop would run with (resolveSession's GPU, CPU and memory), shown in the status until its pod
   * exists; then the pod's own limits are (podResources).
   */
  resources?: VDISessionStatus['resources'];
  /** The session's effective idle policy (resolveSession); none: idleness is not judged. */
  idle?: IdlePolicy;
  now: Date;
  config: ReconcilerConfig;
}

/**
 * The status of a session whose children are in place: the pod's verdict, and once the desktop has run, its
 * URL, start time and expiry. A desktop that ran does not start again: its pod gone is PodLost, its pod ended is
 * DesktopExited (or the kubelet's own reason for failing it), because a new pod would be another desktop.
 */
export function sessionStatus(o: ObservedSession): DesiredStatus {
  const { session, pod, now } = o;
  const previous = session.status ?? {};
  const fromPod = sessionStatusFromPod(session, pod, o.routed, now, o.config);
  const status: VDISessionStatus = {
    phase: fromPod.phase,
    reason: fromPod.reason,
    message: fromPod.message,
    podName: fromPod.podName,
    nodeName: fromPod.nodeName,
  };
  // A desktop that ran and lost its pod keeps what it ran with.
  const resources = (pod && podResources(pod, o.config)) ?? (previous.startTime ? previous.resources : undefined) ?? o.resources;
  if (resources) status.resources = resources;
  if (!pod && previous.startTime) {
    Object.assign(status, { phase: 'Failed', reason: 'PodLost', message: 'the desktop pod disappeared after it had started' });
  }
  if (status.phase === 'Running' || previous.startTime) {
    status.startTime = previous.startTime ?? now.toISOString();
    status.url = sessionUrl(session, o.config);
  }
  // The timeout counts from the first start: a stop and a resume neither end nor extend the session.
  const firstStart = previous.firstStartTime ?? status.startTime;
  if (firstStart) {
    // Written only once it differs from startTime (after a stop), so running sessions need no new write.
    if (previous.firstStartTime) status.firstStartTime = previous.firstStartTime;
    status.url = sessionUrl(session, o.config);
    status.expiresAt = expiresAt(firstStart, o.timeoutMs);
  }
  // The desktop's own reports (the presence endpoint writes them); the reconciler only reads them.
  if (previous.presence) status.presence = previous.presence;
  // Idleness is judged only where a policy can stop the desktop; the presence endpoint keeps ClientConnected anyway.
  const judged = o.idle && (o.idle.timeoutMs !== undefined || o.idle.maxAgeMs !== undefined);
  if (status.phase !== 'Running' || !o.idle || !judged) return { status, conditions: fromPod.conditions };
  const idle = idleVerdict({ ...session, status }, o.idle, now);
  return {
    status,
    conditions: [...fromPod.conditions, clientConnectedCondition(session, status.presence, now), idleWarningCondition(session, idle.verdict, now)],
    idle,
  };
}

/**
 * The phases a session's change into is also recorded as a Kubernetes Event: the ends of a desktop (failed, stopped,
 * expired), which an admin looks for after the fact. The way up (Pending, Starting, Running) and Terminating are
 * not: the status and its conditions' transition times say the same, and in a storm of new sessions those Events
 * were the largest share of the writes beyond the objects themselves (ADR 0010).
 */
const EVENT_PHASES: ReadonlySet<SessionPhase> = new Set<SessionPhase>(['Failed', 'Stopped', 'Expired']);

export function recordsEvent(phase: SessionPhase): boolean {
  return EVENT_PHASES.has(phase);
}

export type StopReason = 'Idle' | 'MaxAge' | 'Suspended';

/** Why a suspended session is stopped: the reason the reconciler wrote with spec.suspend, else its user's choice. */
export function stopReason(session: VDISession): StopReason {
  const written = session.metadata.annotations?.[ANNOTATION_STOP_REASON];
  return written === 'Idle' || written === 'MaxAge' ? written : 'Suspended';
}

const STOP_MESSAGES: Record<StopReason, string> = {
  Idle: 'nobody was connected for the idle timeout: the desktop was stopped and its GPU slice freed; the home volume is kept, resume to continue',
  MaxAge: 'the desktop ran for its maximum age: it was stopped and its GPU slice freed; the home volume is kept, resume to continue',
  Suspended: 'the desktop is stopped (spec.suspend); the home volume is kept, resume to continue',
};

/**
 * A stopped desktop: no pod, no presence (the next run reports afresh), its URL and expiry kept (a stopped session
 * still ends at its timeout), and the time it stopped (what the GPU-hours saved count from).
 */
export function stoppedStatus(session: VDISession, now: Date): DesiredStatus {
  const previous = session.status ?? {};
  const reason = previous.phase === 'Stopped' && previous.reason ? (previous.reason as StopReason) : stopReason(session);
  const generation = session.metadata.generation;
  const at = now.toISOString();
  const condition = (type: string, status: Condition['status'], why: string, message: string): Condition => ({
    type,
    status,
    reason: why,
    message,
    lastTransitionTime: at,
    ...(generation !== undefined && { observedGeneration: generation }),
  });
  const status: VDISessionStatus = {
    phase: 'Stopped',
    reason,
    message: STOP_MESSAGES[reason],
    ...(previous.url && { url: previous.url }),
    ...((previous.firstStartTime ?? previous.startTime) && { firstStartTime: previous.firstStartTime ?? previous.startTime }),
    ...(previous.expiresAt && { expiresAt: previous.expiresAt }),
    ...(previous.resources && { resources: previous.resources }),
    stoppedAt: previous.phase === 'Stopped' && previous.stoppedAt ? previous.stoppedAt : at,
  };
  return {
    status,
    conditions: [
      condition('Scheduled', 'False', 'Stopped', 'the desktop is stopped'),
      condition('Ready', 'False', 'Stopped', 'the desktop is stopped'),
      clientConnectedCondition(session, undefined, now),
      idleWarningCondition(session, { action: 'none' }, now),
    ],
  };
}

/** True once the session's expiry has passed. */
export function hasExpired(session: VDISession, now: Date): boolean {
  const at = session.status?.expiresAt;
  return at !== undefined && now.getTime() >= Date.parse(at);
}

export function expiredStatus(session: VDISession): DesiredStatus {
  return {
    status: { phase: 'Expired', reason: 'Timeout', message: `the session reached its timeout of ${session.spec.timeout ?? 'the template default'}` },
    conditions: [],
  };
}

/** A session being deleted: the rest of its status stays as it was, for the user to read. */
export function terminatingStatus(session: VDISession): DesiredStatus {
  return { status: { ...session.status, phase: 'Terminating', reason: 'Deleted', message: 'the desktop is shutting down' }, conditions: [] };
}

/** A session its template cannot serve (missing template, limits exceeded, a value that does not parse). */
export function unresolvedStatus(resolution: Extract<Resolution, { ok: false }>): DesiredStatus {
  return { status: { phase: resolution.phase, reason: resolution.reason, message: resolution.message }, conditions: [] };
}

/**
 * Terminal: a Failed status written for the current generation stays (the user reads it; the pod is deleted to
 * free its GPU slice), and an Expired session is deleted. A new generation (an edited spec) is judged afresh.
 */
export function isSettled(session: VDISession): 'Expired' | 'Failed' | undefined {
  const status = session.status;
  if (status?.phase === 'Expired') return 'Expired';
  if (status?.phase === 'Failed' && status.observedGeneration === (session.metadata.generation ?? 0)) return 'Failed';
  return undefined;
}

export interface PodDerivedStatus {
  phase: SessionPhase;
  reason: string;
  message: string;
  podName: string | undefined;
  nodeName: string | undefined;
  /** Scheduled, Ready and Routed, stamped with `now`: pass them through mergeConditions before writing. */
  conditions: Condition[];
}

/** Waiting reasons that will not resolve by waiting: report them at once instead of sitting in Starting. */
const FATAL_WAITING_REASONS = new Set(['ErrImagePull', 'ImagePullBackOff', 'InvalidImageName', 'CrashLoopBackOff', 'CreateContainerConfigError']);

interface Verdict {
  phase: SessionPhase;
  reason: string;
  message: string;
}

export function sessionStatusFromPod(
  session: VDISession,
  pod: V1Pod | undefined,
  routeReady: boolean,
  now: Date,
  config: ReconcilerConfig,
): PodDerivedStatus {
  const verdict = judgePod(pod, routeReady, config);
  const scheduledCondition = podCondition(pod, 'PodScheduled');
  const scheduled = scheduledCondition?.status === 'True' || Boolean(pod?.spec?.nodeName);
  const ready = podReady(pod);

  const at = now.toISOString();
  const generation = session.metadata.generation;
  const condition = (type: string, ok: boolean, reason: string, message: string): Condition => ({
    type,
    status: ok ? 'True' : 'False',
    reason,
    message,
    lastTransitionTime: at,
    ...(generation !== undefined && { observedGeneration: generation }),
  });

  return {
    ...verdict,
    podName: pod?.metadata?.name,
    nodeName: pod?.spec?.nodeName,
    conditions: [
      scheduled
        ? condition('Scheduled', true, 'Scheduled', `scheduled on ${pod?.spec?.nodeName ?? 'a node'}`)
        : condition('Scheduled', false, verdict.phase === 'Pending' ? verdict.reason : 'NotScheduled', verdict.message),
      ready ? condition('Ready', true, 'PodReady', 'the desktop accepts connections') : condition('Ready', false, verdict.reason, verdict.message),
      routeReady
        ? condition('Routed', true, 'RouteReady', 'the route to the desktop is in place')
        : condition('Routed', false, 'RouteNotReady', 'the route to the desktop is not in place yet'),
    ],
  };
}

function judgePod(pod: V1Pod | undefined, routeReady: boolean, config: ReconcilerConfig): Verdict {
  if (!pod) return { phase: 'Pending', reason: 'Creating', message: 'creating the desktop pod' };

  const podPhase = pod.status?.phase;
  if (podPhase === 'Failed' || podPhase === 'Succeeded') {
    // The kubelet's own reason when it failed the pod (Evicted, UnexpectedAdmissionError); else the desktop ended.
    return pod.status?.reason
      ? {
          phase: 'Failed',
          reason: pod.status.reason,
          message: pod.status.message ?? `the desktop pod ${podPhase === 'Failed' ? 'failed' : 'exited'}`,
        }
      : { phase: 'Failed', reason: 'DesktopExited', message: `the desktop pod ended with phase ${podPhase}` };
  }
  if (pod.metadata?.deletionTimestamp) {
    return { phase: 'Pending', reason: 'PodTerminating', message: 'the desktop pod is being deleted' };
  }

  const statuses: V1ContainerStatus[] = [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])];
  const fatal = statuses.find((status) => FATAL_WAITING_REASONS.has(status.state?.waiting?.reason ?? ''));
  if (fatal?.state?.waiting?.reason) {
    const { reason, message } = fatal.state.waiting;
    return { phase: 'Failed', reason, message: `container ${fatal.name}: ${message ?? reason}` };
  }

  const scheduled = podCondition(pod, 'PodScheduled');
  if (scheduled?.status !== 'True' && !pod.spec?.nodeName) {
    if (scheduled?.status !== 'False') {
      return { phase: 'Pending', reason: 'Scheduling', message: 'waiting for the scheduler' };
    }
    const message = scheduled.message ?? 'no node can run the desktop';
    // The common case on a shared cluster: every GPU slice is taken. Say so plainly.
    const reason = message.includes(`Insufficient ${config.gpuResourceName}`) ? 'WaitingForGPU' : 'Unschedulable';
    return { phase: 'Pending', reason, message };
  }

  if (podReady(pod)) {
    return routeReady
      ? { phase: 'Running', reason: 'Ready', message: 'the desktop is ready' }
      : { phase: 'Starting', reason: 'Routing', message: 'the desktop is ready; waiting for its route' };
  }
  const waiting = statuses.find((status) => status.state?.waiting)?.state?.waiting;
  if (waiting) {
    return { phase: 'Starting', reason: waiting.reason ?? 'ContainerCreating', message: waiting.message ?? '' };
  }
  if (statuses.some((status) => status.state?.running)) {
    return { phase: 'Starting', reason: 'WaitingForReadiness', message: 'the desktop is starting' };
  }
  return { phase: 'Starting', reason: 'ContainerCreating', message: 'creating the desktop container' };
}

function podCondition(pod: V1Pod | undefined, type: string): V1PodCondition | undefined {
  return pod?.status?.conditions?.find((condition) => condition.type === type);
}

/**
 * `next` applied over `old` (by type; other types are kept, in their place): lastTransitionTime stays when
 * the status did not change, and is `now` when it did, as metav1.Condition requires.
 */
export function mergeConditions(old: Condition[] | undefined, next: Condition[], now: Date): Condition[] {
  const merged = [...(old ?? [])];
  for (const condition of next) {
    const index = merged.findIndex((existing) => existing.type === condition.type);
    const previous = index >= 0 ? merged[index] : undefined;
    const lastTransitionTime = previous && previous.status === condition.status ? previous.lastTransitionTime : now.toISOString();
    const updated = { ...condition, lastTransitionTime };
    if (index >= 0) merged[index] = updated;
    else merged.push(updated);
  }
  return merged;
}

/** True when writing `b` over `a` would change nothing (absent and undefined fields and condition order aside). */
export function statusEqual(a: VDISessionStatus | undefined, b: VDISessionStatus | undefined): boolean {
  return canonical(a ?? {}) === canonical(b ?? {});
}

function canonical(status: VDISessionStatus): string {
  const conditions = status.conditions?.length ? [...status.conditions].sort((x, y) => x.type.localeCompare(y.type)) : undefined;
  return JSON.stringify({ ...status, conditions }, (_key, value: unknown) =>
    value && typeof value === 'object' && !Array.isArray(value)
      ? Object.fromEntries(Object.entries(value).sort(([x], [y]) => x.localeCompare(y)))
      : value,
  );
}

/** When a session started at `startTime` with a timeout of `timeoutMs` expires, as an RFC 3339 timestamp. */
export function expiresAt(startTime: string | Date, timeoutMs: number): string {
  const start = typeof startTime === 'string' ? Date.parse(startTime) : startTime.getTime();
  return new Date(start + timeoutMs).toISOString();
}
