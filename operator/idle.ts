// Pure idle rules: when a running desktop counts as unwatched, when its user is warned, and when it is stopped
// to give its GPU slice back (docs/adr/0009-idle-reclaim.md). The reconciler, the presence endpoint and the API's
// view all call these, so the time a dashboard shows is the time the reconciler acts on.
import type { IdlePolicy } from './resolve.ts';
import { ANNOTATION_EXTENDED_AT, type Condition, type SessionPresence, type VDISession } from './v1alpha1.ts';

export type StopReason = 'Idle' | 'MaxAge';

export const CONDITION_CLIENT_CONNECTED = 'ClientConnected';
export const CONDITION_IDLE_WARNING = 'IdleWarning';

export interface IdleSchedule {
  /** Since when no client has been seen in this run; undefined while one is connected (or not running). */
  idleSince: Date | undefined;
  /** When the desktop will be stopped, and why; undefined when nothing will stop it. */
  stopAt: Date | undefined;
  reason: StopReason | undefined;
  /** When the warning starts (never before the desktop started or went idle). */
  warnAt: Date | undefined;
}

const NOTHING: IdleSchedule = { idleSince: undefined, stopAt: undefined, reason: undefined, warnAt: undefined };

function time(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const ms = Date.parse(text);
  return Number.isNaN(ms) ? undefined : ms;
}

/**
 * The stop schedule of a Running desktop. A desktop that reported nothing in this run is unknown, not busy: it
 * counts as idle from the moment it became Running. A connected client holds the idle clock; the last one leaving
 * (or an extend, ANNOTATION_EXTENDED_AT) starts it again. maxAge stops a desktop however busy it is.
 */
export function idleSchedule(session: VDISession, policy: IdlePolicy, now: Date): IdleSchedule {
  const status = session.status;
  const started = time(status?.startTime);
  if (status?.phase !== 'Running' || started === undefined) return NOTHING;
  const presence = status.presence;
  // An extend stamped in the future would hold the clock forever: only a time already past counts.
  const extended = time(session.metadata.annotations?.[ANNOTATION_EXTENDED_AT]);
  const activity = [started, time(presence?.idleSince), extended !== undefined && extended <= now.getTime() ? extended : undefined];
  const idleSince = presence?.connected ? undefined : Math.max(...activity.filter((t): t is number => t !== undefined));

  const candidates: [number, StopReason][] = [];
  if (idleSince !== undefined && policy.timeoutMs !== undefined) candidates.push([idleSince + policy.timeoutMs, 'Idle']);
  if (policy.maxAgeMs !== undefined) candidates.push([started + policy.maxAgeMs, 'MaxAge']);
  candidates.sort((a, b) => a[0] - b[0]);
  const [first] = candidates;
  if (!first) return { ...NOTHING, idleSince: idleSince === undefined ? undefined : new Date(idleSince) };
  const [stopAt, reason] = first;
  const from = reason === 'Idle' ? idleSince! : started;
  return {
    idleSince: idleSince === undefined ? undefined : new Date(idleSince),
    stopAt: new Date(stopAt),
    reason,
    warnAt: new Date(Math.max(from, stopAt - policy.warningMs)),
  };
}

export type IdleVerdict = { action: 'stop'; reason: StopReason } | { action: 'warn'; stopAt: Date; reason: StopReason } | { action: 'none' };

/** What the reconciler does about idleness now, and when it must look again (undefined: not for idleness). */
export function idleVerdict(session: VDISession, policy: IdlePolicy, now: Date): { verdict: IdleVerdict; recheckAt: Date | undefined } {
  const { stopAt, warnAt, reason } = idleSchedule(session, policy, now);
  if (!stopAt || !reason) return { verdict: { action: 'none' }, recheckAt: undefined };
  if (now >= stopAt) return { verdict: { action: 'stop', reason }, recheckAt: undefined };
  if (warnAt && now >= warnAt) return { verdict: { action: 'warn', stopAt, reason }, recheckAt: stopAt };
  return { verdict: { action: 'none' }, recheckAt: warnAt ?? stopAt };
}

/** Stamps conditions the way status.ts does: `now`, and the session's generation. */
function condition(session: VDISession, now: Date, type: string, status: Condition['status'], reason: string, message: string): Condition {
  const generation = session.metadata.generation;
  return {
    type,
    status,
    reason,
    message,
    lastTransitionTime: now.toISOString(),
    ...(generation !== undefined && { observedGeneration: generation }),
  };
}

/** What the desktop said about its clients, as a condition: Unknown until it reports in this run. */
export function clientConnectedCondition(session: VDISession, presence: SessionPresence | undefined, now: Date): Condition {
  if (!presence)
    return condition(session, now, CONDITION_CLIENT_CONNECTED, 'Unknown', 'NoReport', 'the desktop has not reported a client since it started');
  return presence.connected
    ? condition(session, now, CONDITION_CLIENT_CONNECTED, 'True', 'ClientConnected', 'a client is connected')
    : condition(session, now, CONDITION_CLIENT_CONNECTED, 'False', 'NoClient', 'no client is connected');
}

/** The warning before a stop: True from warnAt, naming the time; False (one constant reason) otherwise. */
export function idleWarningCondition(session: VDISession, verdict: IdleVerdict, now: Date): Condition {
  if (verdict.action !== 'warn') return condition(session, now, CONDITION_IDLE_WARNING, 'False', 'NotDue', 'no stop is due soon');
  const at = verdict.stopAt.toISOString();
  return verdict.reason === 'Idle'
    ? condition(
        session,
        now,
        CONDITION_IDLE_WARNING,
        'True',
        'IdleTimeout',
        `no client is connected: the desktop stops at ${at} unless one connects or the session is extended`,
      )
    : condition(session, now, CONDITION_IDLE_WARNING, 'True', 'MaxAge', `the desktop reaches its maximum age and stops at ${at}`);
}
