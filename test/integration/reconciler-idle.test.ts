// Idle desktops give their GPU slice back (#18), on a control plane of its own with one GPU slice and a CPU node,
// the whole service (API, presence endpoint, reconciler) in this process: presence reports and forged ones, the
// warning, the stop (slice freed: another user's waiting session starts on it), the resume with the same home,
// and a restart of the service in the middle keeping the schedule.
import { randomBytes } from 'node:crypto';
import type { V1EndpointSlice, V1Pod, V1Secret } from '@kubernetes/client-node';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ControlPlane } from '../../dev/control-plane.ts';
import { startOidcIssuer, type OidcIssuer } from '../../dev/oidc-issuer.ts';
import { SECRET_KEY_PRESENCE_TOKEN } from '../../operator/builders.ts';
import { ANNOTATION_STOP_REASON, type VDISession } from '../../operator/v1alpha1.ts';
import { loadConfig } from '../../src/config.ts';
import type { KubeClient } from '../../src/kube/client.ts';
import { startService, type Service } from '../../src/service.ts';
import { AUDIENCE, USERS } from '../support/api.ts';
import { eventually } from '../support/cluster.ts';
import { createTemplate, sessionPath, sessionWhere } from '../support/reconciler.ts';
import { TEST_STAGES } from '../support/stages.ts';

let cp: ControlPlane;
let client: KubeClient;
let issuer: OidcIssuer;
let service: Service;
let template: string;
const leaseNamespace = `vdi-system-${randomBytes(3).toString('hex')}`;
// Short enough for a test, long enough that every step below happens well inside the windows.
const IDLE_TIMEOUT_S = 15;

async function start(): Promise<Service> {
  const config = loadConfig(
    {
      PORT: '0',
      HOST: '127.0.0.1',
      OIDC_ISSUER_URL: issuer.issuer,
      OIDC_AUDIENCE: AUDIENCE,
      OIDC_ALLOW_INSECURE_ISSUER: 'true',
      POD_NAMESPACE: leaseNamespace,
      POD_NAME: `idle-test-${randomBytes(2).toString('hex')}`,
      VDI_URL_SCHEME: 'http',
      VDI_DOMAIN: 'vdi.test',
      VDI_LEASE_DURATION_MS: '3000',
      VDI_RENEW_DEADLINE_MS: '2000',
      VDI_RETRY_PERIOD_MS: '300',
      LOG_LEVEL: 'silent',
    },
    [],
  );
  const started = await startService({ config, kubeConfig: cp.kubeConfig(), log: pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }) });
  await started.synced;
  await eventually(async () => started.isLeader() && started.controller(), 30_000);
  return started;
}

async function gql<T>(user: keyof typeof USERS, query: string): Promise<T> {
  const res = await fetch(`${service.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${await issuer.tokenFor(USERS[user])}` },
    body: JSON.stringify({ query }),
  });
  const body = (await res.json()) as { data?: T; errors?: unknown[] };
  if (body.errors) throw new Error(JSON.stringify(body.errors));
  return body.data as T;
}

async function namespaceOf(user: keyof typeof USERS): Promise<string> {
  return (await gql<{ me: { namespace: string } }>(user, '{ me { namespace } }')).me.namespace;
}

/** The session's presence token, once the reconciler has made its Secret (a moment after the session). */
async function presenceToken(namespace: string, name: string): Promise<string> {
  const secret = await eventually(() => client.get<V1Secret>(`/api/v1/namespaces/${namespace}/secrets/vdi-${name}`));
  return Buffer.from(secret.data![SECRET_KEY_PRESENCE_TOKEN]!, 'base64').toString('utf8');
}

/** What the desktop's hook sends (operator/builders.ts presenceHook). */
async function report(namespace: string, name: string, state: 'connected' | 'disconnected', token: string): Promise<number> {
  const res = await fetch(`${service.url}/presence/${namespace}/${name}/${state}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ at: Date.now() / 1000 }),
  });
  return res.status;
}

const sleepUntil = (at: number) => new Promise((resolve) => setTimeout(resolve, Math.max(0, at - Date.now())));

beforeAll(async () => {
  cp = await ControlPlane.start({
    nodes: [
      { name: 'gpu-one', gpus: 1 },
      { name: 'cpu-one', gpus: 0 },
    ],
    extraStages: TEST_STAGES,
    handleSignals: false,
  });
  await cp.applyManifests('deploy/rbac');
  client = cp.client();
  await client.create('/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: leaseNamespace } });
  issuer = await startOidcIssuer({ audience: AUDIENCE });
  template = (
    await createTemplate(client, {
      persistence: { defaultEnabled: true, defaultSize: '1Gi', maxSize: '10Gi' },
      idle: { defaultTimeout: `${IDLE_TIMEOUT_S}s`, warning: '10s' },
    })
  ).metadata.name!;
  service = await start();
}, 600_000);

afterAll(async () => {
  await service?.stop();
  await issuer?.close();
  await cp?.stop();
});

describe('presence reports', () => {
  it('records a connect, refuses a report made with another session’s token, and never stops a desktop with a client', async () => {
    const [alice, bob] = [await namespaceOf('alice'), await namespaceOf('bob')];
    await gql('alice', `mutation { createVDISession(input: {template: "${template}", name: "watched", resources: {gpu: 0}}) { name } }`);
    await gql('bob', `mutation { createVDISession(input: {template: "${template}", name: "mine", resources: {gpu: 0}}) { name } }`);
    const running = await sessionWhere(client, alice, 'watched', (s) => s.status?.phase === 'Running');
    await sessionWhere(client, bob, 'mine', (s) => s.status?.phase === 'Running');

    // Bob's desktop holds a real token, but only for Bob's session.
    expect(await report(alice, 'watched', 'connected', await presenceToken(bob, 'mine'))).toBe(403);
    expect(await report(alice, 'watched', 'connected', 'guess')).toBe(403);
    expect(await report(alice, 'nobody', 'connected', await presenceToken(alice, 'watched'))).toBe(403);
    const afterForgery = await client.get<VDISession>(sessionPath(alice, 'watched'));
    expect(afterForgery.status?.presence).toBeUndefined();
    expect(afterForgery.metadata.resourceVersion).toBe(running.metadata.resourceVersion);

    expect(await report(alice, 'watched', 'connected', await presenceToken(alice, 'watched'))).toBe(200);
    const connected = await sessionWhere(client, alice, 'watched', (s) => s.status?.presence?.connected === true);
    expect(connected.status?.conditions?.find((c) => c.type === 'ClientConnected')).toMatchObject({ status: 'True' });
    // A repeat changes nothing: no write.
    expect(await report(alice, 'watched', 'connected', await presenceToken(alice, 'watched'))).toBe(200);
    expect((await client.get<VDISession>(sessionPath(alice, 'watched'))).metadata.resourceVersion).toBe(connected.metadata.resourceVersion);

    const view = await gql<{ session: { status: { presence: { connected: boolean; stopAt: string | null } } } }>(
      'alice',
      '{ session(name: "watched") { status { presence { connected stopAt } } } }',
    );
    expect(view.session.status.presence).toEqual({ connected: true, stopAt: null });
    // Well past the idle timeout since it started: still Running, never warned.
    await sleepUntil(Date.parse(running.status!.startTime!) + (IDLE_TIMEOUT_S + 5) * 1000);
    const later = await client.get<VDISession>(sessionPath(alice, 'watched'));
    expect(later.status?.phase).toBe('Running');
    expect(later.spec.suspend).toBeUndefined();
    expect(later.status?.conditions?.find((c) => c.type === 'IdleWarning')?.status ?? 'False').toBe('False');
    await gql('alice', 'mutation { terminateVDISession(name: "watched") { name } }');
    await gql('bob', 'mutation { terminateVDISession(name: "mine") { name } }');
  }, 120_000);
});

describe('an idle desktop', () => {
  it('is warned, stopped (its slice runs another user’s session), and resumes with the same home', async () => {
    const [alice, bob] = [await namespaceOf('alice'), await namespaceOf('bob')];
    await gql('alice', `mutation { createVDISession(input: {template: "${template}", name: "desk"}) { name } }`);
    const running = await sessionWhere(client, alice, 'desk', (s) => s.status?.phase === 'Running');
    const firstPod = await client.get<V1Pod>(`/api/v1/namespaces/${alice}/pods/vdi-desk`);
    const claim = firstPod.spec?.volumes?.find((v) => v.name === 'home')?.persistentVolumeClaim?.claimName;
    expect(claim).toBeDefined();

    // Nobody ever connected: idle from the moment it ran, warned before the stop.
    const warned = await sessionWhere(
      client,
      alice,
      'desk',
      (s) => s.status?.conditions?.some((c) => c.type === 'IdleWarning' && c.status === 'True') ?? false,
    );
    expect(warned.status?.phase).toBe('Running');
    const view = await gql<{ session: { status: { presence: { warning: boolean; stopReason: string; stopAt: string } } } }>(
      'alice',
      '{ session(name: "desk") { status { presence { warning stopReason stopAt } } } }',
    );
    expect(view.session.status.presence).toMatchObject({ warning: true, stopReason: 'Idle' });
    expect(Date.parse(view.session.status.presence.stopAt)).toBe(Date.parse(running.status!.startTime!) + IDLE_TIMEOUT_S * 1000);

    // Bob waits for the only slice.
    await gql('bob', `mutation { createVDISession(input: {template: "${template}", name: "waiting", persistence: {enabled: false}}) { name } }`);
    await sessionWhere(client, bob, 'waiting', (s) => s.status?.reason === 'WaitingForGPU');

    const stopped = await sessionWhere(client, alice, 'desk', (s) => s.status?.phase === 'Stopped', 60_000);
    expect(stopped.status).toMatchObject({ reason: 'Idle', firstStartTime: running.status!.startTime, expiresAt: running.status!.expiresAt });
    expect(stopped.status?.startTime).toBeUndefined();
    expect(stopped.spec.suspend).toBe(true);
    expect(stopped.metadata.annotations?.[ANNOTATION_STOP_REASON]).toBe('Idle');
    // Its address left the route with its pod (the IP may soon be another pod's), and the stop is an Event.
    const slice = await client.get<V1EndpointSlice>(`/apis/discovery.k8s.io/v1/namespaces/${alice}/endpointslices/vdi-desk`);
    expect(slice.endpoints ?? []).toEqual([]);
    const stopEvent = await eventually(async () => {
      const list = await client.list<{ type: string; action: string; reason: string; regarding: { name: string } }>(
        `/apis/events.k8s.io/v1/namespaces/${alice}/events`,
      );
      return list.items.find((e) => e.regarding.name === 'desk' && e.action === 'Stopped');
    });
    expect(stopEvent).toMatchObject({ type: 'Normal', reason: 'Idle' });
    const bobRunning = await sessionWhere(client, bob, 'waiting', (s) => s.status?.phase === 'Running');
    expect(bobRunning.status?.nodeName).toBe('gpu-one');
    // The home volume stays.
    expect(await client.get(`/api/v1/namespaces/${alice}/persistentvolumeclaims/${claim}`)).toBeDefined();

    const reclaim = await gql<{ idleReclaim: { stoppedSessions: { reason: string; count: number }[]; slicesReclaimed: number } }>(
      'admin',
      '{ idleReclaim { stoppedSessions { reason count } slicesReclaimed } }',
    );
    expect(reclaim.idleReclaim).toEqual({ stoppedSessions: [{ reason: 'Idle', count: 1 }], slicesReclaimed: 1 });

    // Resume: Alice's quota still allows a slice, so the session waits for Bob's.
    const resumed = await gql<{ resumeVDISession: { spec: { suspend: boolean } } }>(
      'alice',
      'mutation { resumeVDISession(name: "desk") { spec { suspend } } }',
    );
    expect(resumed.resumeVDISession.spec.suspend).toBe(false);
    await sessionWhere(client, alice, 'desk', (s) => s.status?.reason === 'WaitingForGPU');
    await gql('bob', 'mutation { terminateVDISession(name: "waiting") { name } }');
    const back = await sessionWhere(client, alice, 'desk', (s) => s.status?.phase === 'Running', 60_000);
    expect(back.status?.firstStartTime).toBe(running.status!.startTime);
    expect(back.status?.expiresAt).toBe(running.status!.expiresAt);
    expect(back.metadata.annotations?.[ANNOTATION_STOP_REASON]).toBeUndefined();
    const secondPod = await client.get<V1Pod>(`/api/v1/namespaces/${alice}/pods/vdi-desk`);
    expect(secondPod.metadata?.uid).not.toBe(firstPod.metadata?.uid);
    expect(secondPod.spec?.volumes?.find((v) => v.name === 'home')?.persistentVolumeClaim?.claimName).toBe(claim);
    await gql('alice', 'mutation { terminateVDISession(name: "desk") { name } }');
  }, 180_000);

  it('is stopped on schedule by a service restarted after its deadline passed', async () => {
    const alice = await namespaceOf('alice');
    await gql('alice', `mutation { createVDISession(input: {template: "${template}", name: "restart", resources: {gpu: 0}}) { name } }`);
    const token = await presenceToken(alice, 'restart');
    await sessionWhere(client, alice, 'restart', (s) => s.status?.phase === 'Running');
    expect(await report(alice, 'restart', 'connected', token)).toBe(200);
    expect(await report(alice, 'restart', 'disconnected', token)).toBe(200);
    const idle = await sessionWhere(client, alice, 'restart', (s) => s.status?.presence?.connected === false);
    const deadline = Date.parse(idle.status!.presence!.idleSince!) + IDLE_TIMEOUT_S * 1000;

    // Down before the deadline, up again after it: nothing in memory carried the schedule.
    await service.stop();
    await sleepUntil(deadline + 2_000);
    expect((await client.get<VDISession>(sessionPath(alice, 'restart'))).status?.phase).toBe('Running');
    service = await start();
    const stopped = await sessionWhere(client, alice, 'restart', (s) => s.status?.phase === 'Stopped', 60_000);
    expect(stopped.status?.reason).toBe('Idle');
    expect(Date.parse(stopped.status!.stoppedAt!)).toBeGreaterThanOrEqual(deadline);
    await eventually(
      async () => (await client.list<V1Pod>(`/api/v1/namespaces/${alice}/pods`)).items.every((p) => p.metadata?.name !== 'vdi-restart'),
      30_000,
    );
    await gql('alice', 'mutation { terminateVDISession(name: "restart") { name } }');
  }, 180_000);
});
