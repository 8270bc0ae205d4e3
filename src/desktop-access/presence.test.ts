import { describe, expect, it } from 'vitest';
import { presenceDecision, PresenceReports, PRESENCE_WRITES_PER_MINUTE, reportTime } from './presence.ts';
import type { VDISession } from '../../operator/v1alpha1.ts';
import type { KubeClient } from '../kube/client.ts';

const NOW = new Date('2030-01-01T10:00:00Z');
const minutes = (m: number) => new Date(NOW.getTime() + m * 60_000);

function session(
  status: VDISession['status'] = { phase: 'Running', startTime: minutes(-10).toISOString() },
  spec: Partial<VDISession['spec']> = {},
): VDISession {
  return {
    apiVersion: 'vdi.kasm.io/v1alpha1',
    kind: 'VDISession',
    metadata: { name: 'desk', namespace: 'ns', generation: 2, resourceVersion: '7' },
    spec: { user: 'alice@example.com', template: 'ubuntu', ...spec },
    status,
  };
}

describe('presenceDecision', () => {
  it('writes the first report of a run, with the ClientConnected condition', () => {
    const d = presenceDecision(session(), 'connected', NOW, NOW);
    expect(d.outcome).toBe('written');
    expect(d.status?.presence).toEqual({ connected: true, lastActivity: NOW.toISOString() });
    expect(d.status?.conditions).toContainEqual(expect.objectContaining({ type: 'ClientConnected', status: 'True', observedGeneration: 2 }));
  });

  it('records when the last client left', () => {
    const s = session({ phase: 'Running', presence: { connected: true, lastActivity: minutes(-5).toISOString() } });
    expect(presenceDecision(s, 'disconnected', NOW, NOW).status?.presence).toEqual({
      connected: false,
      lastActivity: NOW.toISOString(),
      idleSince: NOW.toISOString(),
    });
  });

  it('writes nothing for a report that repeats the recorded state', () => {
    const s = session({ phase: 'Running', presence: { connected: true, lastActivity: minutes(-5).toISOString() } });
    expect(presenceDecision(s, 'connected', NOW, NOW)).toEqual({ outcome: 'unchanged' });
  });

  it('writes nothing for a report older than the recorded one (a retried hook arriving late)', () => {
    const s = session({ phase: 'Running', presence: { connected: true, lastActivity: minutes(1).toISOString() } });
    expect(presenceDecision(s, 'disconnected', NOW, NOW)).toEqual({ outcome: 'stale' });
  });

  it('writes nothing for a stopped, suspended or deleted session', () => {
    expect(presenceDecision(session({ phase: 'Stopped' }), 'connected', NOW, NOW).outcome).toBe('stopped');
    expect(presenceDecision(session(undefined, { suspend: true }), 'connected', NOW, NOW).outcome).toBe('stopped');
  });

  it('cancels an idle warning when a client connects', () => {
    const warned = session({
      phase: 'Running',
      presence: { connected: false, lastActivity: minutes(-30).toISOString(), idleSince: minutes(-30).toISOString() },
      conditions: [
        { type: 'IdleWarning', status: 'True', reason: 'IdleTimeout', message: 'stops soon', lastTransitionTime: minutes(-1).toISOString() },
      ],
    });
    const conditions = presenceDecision(warned, 'connected', NOW, NOW).status?.conditions ?? [];
    expect(conditions.find((c) => c.type === 'IdleWarning')).toMatchObject({
      status: 'False',
      reason: 'NotDue',
      lastTransitionTime: NOW.toISOString(),
    });
  });
});

describe('reportTime', () => {
  it("takes the desktop's time, never later than now, and now when it says nothing usable", () => {
    expect(reportTime({ at: minutes(-1).getTime() / 1000 }, NOW)).toEqual(minutes(-1));
    expect(reportTime({ at: minutes(5).getTime() / 1000 }, NOW)).toEqual(NOW);
    for (const body of [undefined, {}, { at: 'soon' }, { at: -1 }]) expect(reportTime(body, NOW)).toEqual(NOW);
  });
});

describe('PresenceReports', () => {
  const secretOf = (token: string) => ({ data: { presenceToken: Buffer.from(token).toString('base64') } });
  const caches = (s: VDISession | undefined, token = 'right') => ({
    sessions: { get: (key: string) => (key === 'ns/desk' ? s : undefined), remember: () => undefined },
    secrets: { get: (key: string) => (key === 'ns/vdi-desk' ? secretOf(token) : undefined) },
  });

  it("accepts only the session's own token; one answer for a wrong token and an unknown session", () => {
    const reports = new PresenceReports({ caches: caches(session()) as never, client: {} as KubeClient, log: console as never });
    expect(reports.authentic('ns', 'desk', 'right')).toBe(true);
    expect(reports.authentic('ns', 'desk', 'wrong')).toBe(false);
    expect(reports.authentic('ns', 'desk', '')).toBe(false);
    expect(reports.authentic('ns', 'other', 'right')).toBe(false);
  });

  /** One session, stored; its status patches are recorded and applied, each a new resourceVersion. */
  const store = (now: () => Date) => {
    const patches: { path: string; body: { metadata: { resourceVersion: string }; status: VDISession['status'] } }[] = [];
    let current = session();
    const client = {
      mergePatch: async (path: string, body: { metadata: { resourceVersion: string }; status: VDISession['status'] }) => {
        patches.push({ path, body });
        current = {
          ...current,
          metadata: { ...current.metadata, resourceVersion: String(Number(current.metadata.resourceVersion) + 1) },
          status: { ...current.status, ...body.status },
        };
        return current;
      },
    } as unknown as KubeClient;
    const c = { sessions: { get: () => current, remember: () => undefined }, secrets: { get: () => secretOf('right') } };
    return { patches, current: () => current, reports: new PresenceReports({ caches: c as never, client, log: console as never, now }) };
  };

  it('writes the status conditionally on the version it read, and once per change', async () => {
    const { patches, reports } = store(() => NOW);
    expect(await reports.report('ns', 'desk', 'connected', NOW)).toBe('written');
    expect(await reports.report('ns', 'desk', 'connected', minutes(1))).toBe('unchanged');
    expect(patches).toHaveLength(1);
    expect(patches[0]!.path).toBe('/apis/vdi.kasm.io/v1alpha1/namespaces/ns/vdisessions/desk/status');
    expect(patches[0]!.body.metadata.resourceVersion).toBe('7');
  });

  it('writes at most PRESENCE_WRITES_PER_MINUTE changes of one desktop a minute, then again as the budget refills', async () => {
    let now = NOW;
    const { patches, current, reports } = store(() => now);
    const flip = (i: number) => reports.report('ns', 'desk', i % 2 ? 'disconnected' : 'connected', new Date(NOW.getTime() + i * 100));
    const outcomes: string[] = [];
    for (let i = 0; i < PRESENCE_WRITES_PER_MINUTE; i++) outcomes.push(await flip(i));
    expect(outcomes).toEqual(Array(PRESENCE_WRITES_PER_MINUTE).fill('written'));
    // One more change, and the hook's retries of it within the same seconds: no write.
    expect(await flip(PRESENCE_WRITES_PER_MINUTE)).toBe('throttled');
    expect(await flip(PRESENCE_WRITES_PER_MINUTE)).toBe('throttled');
    expect(patches).toHaveLength(PRESENCE_WRITES_PER_MINUTE);
    // A retry a few seconds later finds the budget refilled: the last state lands.
    now = new Date(NOW.getTime() + 6_000);
    expect(await flip(PRESENCE_WRITES_PER_MINUTE)).toBe('written');
    expect(current().status?.presence?.connected).toBe(PRESENCE_WRITES_PER_MINUTE % 2 === 0);
  });
});
