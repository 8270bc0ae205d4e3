// Presence reports from the desktops. Selkies runs a hook when its first client connects and when its last one
// leaves (operator/builders.ts presenceHook); the hook POSTs `/presence/<namespace>/<session>/<state>` with the
// session's own token (a file in its pod, from its Secret) and the desktop's clock. Pushed, not polled: the
// service reads no pod, and a report costs one status write only when the desktop's state really changed.
// docs/adr/0009-idle-reclaim.md has the reasoning.
import express from 'express';
import type { Caches } from '../../operator/caches.ts';
import { SECRET_KEY_PRESENCE_TOKEN } from '../../operator/builders.ts';
import { CONDITION_IDLE_WARNING, clientConnectedCondition, idleWarningCondition } from '../../operator/idle.ts';
import { childName } from '../../operator/naming.ts';
import { mergeConditions } from '../../operator/status.ts';
import { type Condition, type SessionPresence, type VDISession } from '../../operator/v1alpha1.ts';
import { KubeError, isConflict, type KubeClient } from '../kube/client.ts';
import type { Logger } from '../log.ts';
import { RateLimiter } from '../rate-limit.ts';
import { exactRouter } from '../routing.ts';
import { sameSecret } from './turn.ts';
import { namedPath } from '../../operator/kinds.ts';

export type PresenceState = 'connected' | 'disconnected';

/** What became of a report (also the metric's label). */
export const PRESENCE_OUTCOMES = ['written', 'unchanged', 'stale', 'stopped', 'throttled', 'refused'] as const;
export type PresenceOutcome = (typeof PRESENCE_OUTCOMES)[number];

/**
 * Status writes one desktop's reports may cause per minute. A person connecting and leaving makes a few; a desktop
 * whose user (root in it) replays its hook in a loop would otherwise turn each flip into an apiserver write. Over
 * the budget a report gets a 503, which the hook retries for about 30 s, by when the budget has refilled: the last
 * state still lands.
 */
export const PRESENCE_WRITES_PER_MINUTE = 20;

export interface PresenceDecision {
  outcome: Exclude<PresenceOutcome, 'refused'>;
  /** The status fields to write, when outcome is `written`. */
  status?: { presence: SessionPresence; conditions: Condition[] };
}

/**
 * What a report changes in the session's status (pure): nothing when it repeats the state already recorded, or
 * is older than the report recorded (hooks retry, so an old report can arrive after a newer one), or comes from a
 * desktop that is stopped or going away. A client connecting also cancels a warning of an idle stop.
 */
export function presenceDecision(session: VDISession, state: PresenceState, at: Date, now: Date): PresenceDecision {
  if (session.metadata.deletionTimestamp || session.spec.suspend || session.status?.phase === 'Stopped') return { outcome: 'stopped' };
  const previous = session.status?.presence;
  if (previous && Date.parse(previous.lastActivity) > at.getTime()) return { outcome: 'stale' };
  const connected = state === 'connected';
  if (previous && previous.connected === connected) return { outcome: 'unchanged' };
  const presence: SessionPresence = connected
    ? { connected, lastActivity: at.toISOString() }
    : { connected, lastActivity: at.toISOString(), idleSince: at.toISOString() };
  const changed = [clientConnectedCondition(session, presence, now)];
  const warned = session.status?.conditions?.some((c) => c.type === CONDITION_IDLE_WARNING && c.status === 'True');
  if (connected && warned) changed.push(idleWarningCondition(session, { action: 'none' }, now));
  return { outcome: 'written', status: { presence, conditions: mergeConditions(session.status?.conditions, changed, now) } };
}

/** The time a report says it was made (Unix seconds), never later than now; now when it says nothing usable. */
export function reportTime(body: unknown, now: Date): Date {
  const at = typeof body === 'object' && body !== null ? (body as { at?: unknown }).at : undefined;
  if (typeof at !== 'number' || !Number.isFinite(at) || at <= 0) return now;
  return new Date(Math.min(at * 1000, now.getTime()));
}

export interface PresenceOptions {
  caches: Pick<Caches, 'sessions' | 'secrets'>;
  /** Writes as the service itself: the desktop has no Kubernetes identity. */
  client: KubeClient;
  log: Logger;
  onReport?: (outcome: PresenceOutcome) => void;
  now?: () => Date;
}

const sessionStatusPath = (namespace: string, name: string) => namedPath('VDISession', namespace, name, 'status');

export class PresenceReports {
  private readonly o: PresenceOptions;
  /** Reports of one session are applied one after another. */
  private readonly chains = new Map<string, Promise<unknown>>();
  /** Status writes per session (PRESENCE_WRITES_PER_MINUTE). */
  private readonly writes = new RateLimiter(PRESENCE_WRITES_PER_MINUTE);

  constructor(options: PresenceOptions) {
    this.o = options;
  }

  /** True when `token` is the one in the session's Secret. One answer for no session and a wrong token. */
  authentic(namespace: string, name: string, token: string): boolean {
    const session = this.o.caches.sessions.get(`${namespace}/${name}`);
    const secret = session && this.o.caches.secrets.get(`${namespace}/${childName(session)}`);
    const expected = secret?.data?.[SECRET_KEY_PRESENCE_TOKEN];
    return !!expected && sameSecret(token, Buffer.from(expected, 'base64').toString('utf8'));
  }

  report(namespace: string, name: string, state: PresenceState, at: Date): Promise<PresenceOutcome> {
    const key = `${namespace}/${name}`;
    const run = (this.chains.get(key) ?? Promise.resolve()).catch(() => undefined).then(() => this.apply(namespace, name, state, at));
    this.chains.set(key, run);
    void run.finally(() => this.chains.get(key) === run && this.chains.delete(key)).catch(() => undefined);
    return run;
  }

  private async apply(namespace: string, name: string, state: PresenceState, at: Date): Promise<PresenceOutcome> {
    let session = this.o.caches.sessions.get(`${namespace}/${name}`);
    for (let attempt = 0; session && attempt < 5; attempt++) {
      const decision = presenceDecision(session, state, at, this.o.now?.() ?? new Date());
      if (decision.outcome !== 'written') return decision.outcome;
      if (!this.writes.take(`${namespace}/${name}`, (this.o.now?.() ?? new Date()).getTime())) return 'throttled';
      try {
        // Conditional on the version read: the reconciler may be stopping this desktop at the same moment.
        const updated = await this.o.client.mergePatch<VDISession>(sessionStatusPath(namespace, name), {
          metadata: { resourceVersion: session.metadata.resourceVersion },
          status: decision.status,
        });
        this.o.caches.sessions.remember(updated);
        return 'written';
      } catch (err) {
        if (!isConflict(err)) throw err;
        // Someone wrote the session meanwhile (the reconciler): decide again on the version the cache gets next.
        session = await this.newerThan(namespace, name, session.metadata.resourceVersion);
      }
    }
    return 'stopped';
  }

  private async newerThan(namespace: string, name: string, resourceVersion: string | undefined): Promise<VDISession | undefined> {
    const key = `${namespace}/${name}`;
    for (let waited = 0; waited < 5_000; waited += 50) {
      const cached = this.o.caches.sessions.get(key);
      if (!cached || cached.metadata.resourceVersion !== resourceVersion) return cached;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error('the session cache did not catch up with a concurrent write');
  }
}

export function presenceRouter(reports: PresenceReports, log: Logger, onReport?: (outcome: PresenceOutcome) => void): express.Router {
  const router = exactRouter();
  router.post('/presence/:namespace/:session/:state', express.json({ limit: '1kb' }), async (req, res) => {
    res.set('Cache-Control', 'no-store');
    const { namespace, session: name, state } = req.params;
    const token = /^Bearer (.+)$/.exec(req.get('authorization') ?? '')?.[1] ?? '';
    if ((state !== 'connected' && state !== 'disconnected') || !reports.authentic(namespace, name, token)) {
      onReport?.('refused');
      log.info({ session: `${namespace}/${name}` }, 'refused a presence report');
      res.status(403).json({ error: 'forbidden' });
      return;
    }
    try {
      const outcome = await reports.report(namespace, name, state, reportTime(req.body, new Date()));
      onReport?.(outcome);
      if (outcome === 'written') log.info({ session: `${namespace}/${name}`, state }, 'desktop presence changed');
      if (outcome === 'throttled') res.set('Retry-After', '3');
      res.status(outcome === 'stopped' ? 409 : outcome === 'throttled' ? 503 : 200).json({ outcome });
    } catch (err) {
      // Status and reason only: a Kubernetes error's message may quote the object.
      const error = err instanceof KubeError ? `${err.status} ${err.reason}` : err instanceof Error ? err.message : String(err);
      log.warn({ session: `${namespace}/${name}`, error }, 'could not record a presence report');
      // 5xx: the hook retries.
      res.status(503).json({ error: 'unavailable' });
    }
  });
  return router;
}
