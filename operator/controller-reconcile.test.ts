// Every branch of reconcile(), checked against a recording client and in-memory caches (test/support/
// controller-fixture.ts): which writes it makes, in which order, and what status it writes.
import type { V1EndpointSlice, V1Pod } from '@kubernetes/client-node';
import { afterEach, describe, expect, it } from 'vitest';
import { newFixture, type Fixture } from '../test/support/controller-fixture.ts';
import { buildEndpointSlice, buildNetworkPolicy, buildPod, buildRouting, buildSecret, buildService } from './builders.ts';
import { childName } from './naming.ts';
import { resolveSession } from './resolve.ts';
import { KubeError } from '../src/kube/client.ts';
import {
  ANNOTATION_STOP_REASON,
  API_VERSION,
  FINALIZER,
  LABEL_MANAGED_BY,
  LABEL_SESSION,
  MANAGER,
  type VDISession,
  type VDISessionStatus,
  type VDITemplate,
} from './v1alpha1.ts';
import { testReconcilerConfig } from '../test/support/reconciler-config.ts';

const NOW = new Date('2030-01-01T12:00:00.000Z');
const NS = 'alice-ns';
const config = testReconcilerConfig();
const ago = (ms: number) => new Date(NOW.getTime() - ms).toISOString();

const template: VDITemplate = {
  apiVersion: API_VERSION,
  kind: 'VDITemplate',
  metadata: { name: 'desk', resourceVersion: '1' },
  spec: {
    image: 'desktop:1',
    displayName: 'Desk',
    resources: { defaultGPU: 0, maxGPU: 1, defaultMemory: '1Gi', maxMemory: '2Gi', defaultCPU: '1', maxCPU: '2' },
    defaultTimeout: '1h',
    maxTimeout: '8h',
  },
};

function session(
  over: { status?: VDISessionStatus; metadata?: Partial<VDISession['metadata']>; spec?: Partial<VDISession['spec']> } = {},
): VDISession {
  return {
    apiVersion: API_VERSION,
    kind: 'VDISession',
    metadata: {
      name: 's',
      namespace: NS,
      uid: 'uid-s',
      generation: 1,
      resourceVersion: '10',
      finalizers: [FINALIZER],
      creationTimestamp: ago(60_000),
      ...over.metadata,
    },
    spec: { user: 'alice@example.com', template: 'desk', ...over.spec },
    ...(over.status && { status: over.status }),
  };
}

type PodState = 'pending' | 'ready' | 'succeeded';
function pod(s: VDISession, state: PodState, createdAgo = 60_000): V1Pod {
  const resolution = resolveSession(s, template, config);
  if (!resolution.ok) throw new Error('unresolvable test session');
  const built = buildPod(s, template, resolution.effective, config, childName(s)) as V1Pod;
  const statuses: Record<PodState, V1Pod['status']> = {
    pending: { phase: 'Pending' },
    ready: {
      phase: 'Running',
      podIP: '10.42.0.7',
      conditions: [
        { type: 'PodScheduled', status: 'True' },
        { type: 'Ready', status: 'True' },
      ],
      containerStatuses: [{ name: 'desktop', image: 'desktop:1', imageID: '', ready: true, restartCount: 0, state: { running: {} } }],
    },
    succeeded: { phase: 'Succeeded' },
  };
  return {
    ...built,
    metadata: { ...built.metadata, creationTimestamp: ago(createdAgo) as unknown as Date, resourceVersion: '20' },
    spec: { ...built.spec!, nodeName: state === 'pending' ? undefined : 'node-1' },
    status: statuses[state],
  };
}

/** Every child a session has once it is set up, pod aside; with a ready pod, its Service's EndpointSlice lists it. */
function children(s: VDISession, ready?: V1Pod): object[] {
  return [
    buildSecret(s, 'pw', 'turn', 'presence'),
    buildService(s),
    buildNetworkPolicy(s, config),
    ...buildRouting(s, config),
    ...(ready ? [buildEndpointSlice(s, ready)] : []),
  ].map((o) => ({
    ...o,
    metadata: { ...o.metadata, resourceVersion: '5' },
  }));
}

/** A running desktop as the reconciler left it: its children, its ready pod, and the EndpointSlice listing that pod. */
function reachable(s: VDISession): object[] {
  const p = pod(s, 'ready');
  return [...children(s, p), p];
}

const running = (): VDISessionStatus => ({
  phase: 'Running',
  reason: 'Ready',
  message: 'the desktop is ready',
  podName: 'vdi-s',
  nodeName: 'node-1',
  startTime: ago(600_000),
  url: 'https://s-alice-ns.vdi.example.com/',
  expiresAt: new Date(NOW.getTime() - 600_000 + 3_600_000).toISOString(),
  resources: { gpu: 0, cpu: '1', memory: '1Gi' },
  observedGeneration: 1,
});

let fx: Fixture | undefined;
afterEach(async () => {
  await fx?.stop();
  fx = undefined;
});

async function reconcile(objects: object[], key = `${NS}/s`) {
  fx = await newFixture(objects, { now: NOW });
  const result = await fx.controller.reconcile(key);
  const statuses = fx.client.actions.filter((a) => a.resource === 'vdisessions/status').map((a) => (a.body as { status: VDISessionStatus }).status);
  return { result, actions: fx.actions(), status: statuses.at(-1) };
}

/** A new session's first pass: every child at once. */
const FIRST_PASS_CHILDREN = [
  'create secrets vdi-s',
  'apply networkpolicies vdi-desktops',
  'apply services vdi-s',
  'apply middlewares vdi-desktop-auth',
  'apply ingressroutes vdi-s',
  'create pods vdi-s',
];

describe('reconcile', () => {
  it('gives a new session its finalizer and every child at once, and waits for the scheduler before a first status', async () => {
    const s = session({ metadata: { finalizers: undefined } });
    const { result, actions, status } = await reconcile([template, s]);
    expect(actions).toEqual(['patch vdisessions s', ...FIRST_PASS_CHILDREN]);
    expect(fx!.client.store.get(`${NS}/vdisessions/s`)?.metadata.finalizers).toEqual([FINALIZER]);
    // The first-status window: a pod the scheduler has not judged yet is news on its way, not worth a write.
    expect(status).toBeUndefined();
    expect(result).toEqual({ requeueAfterMs: 2_000 });
  });

  it('does not bring a session back for the children its own pass wrote: that pass went on from them', async () => {
    const s = session();
    const runs: boolean[] = [];
    fx = await newFixture([template, s], { now: NOW, metrics: { reconcile: (ok) => runs.push(ok), eventDropped: () => undefined } });
    fx.controller.start();
    while (!fx.actions().includes('create pods vdi-s')) await new Promise((r) => setTimeout(r, 5));
    await fx.controller.queue.idle();
    expect(fx.actions()).toEqual(FIRST_PASS_CHILDREN);
    // One run: the six writes, each put into its cache as the apiserver returned it, enqueued nothing.
    expect(runs).toEqual([true]);
  });

  it('writes a first status once the window has passed without news', async () => {
    const s = session();
    const { actions, status, result } = await reconcile([template, s, ...children(s), pod(s, 'pending', 5_000)]);
    expect(actions).toEqual(['patch vdisessions/status s']);
    expect(status).toMatchObject({ phase: 'Pending', reason: 'Scheduling' });
    expect(result).toEqual({});
  });

  it('lists the ready pod in its Service’s EndpointSlice, then writes Running with the URL, the start time and the expiry, and comes back at the expiry', async () => {
    const s = session({ status: { phase: 'Starting', reason: 'ContainerCreating', message: '', observedGeneration: 1 } });
    const { actions, status, result } = await reconcile([template, s, ...children(s), pod(s, 'ready')]);
    expect(actions).toEqual(['apply endpointslices vdi-s', 'patch vdisessions/status s']);
    const slice = fx!.client.store.get(`${NS}/endpointslices/vdi-s`) as unknown as V1EndpointSlice;
    expect(slice.metadata?.labels?.['kubernetes.io/service-name']).toBe('vdi-s');
    expect(slice.endpoints).toEqual([
      expect.objectContaining({ addresses: ['10.42.0.7'], conditions: { ready: true, serving: true, terminating: false } }),
    ]);
    expect(status).toMatchObject({
      phase: 'Running',
      reason: 'Ready',
      podName: 'vdi-s',
      nodeName: 'node-1',
      url: 'https://s-alice-ns.vdi.example.com/',
      startTime: NOW.toISOString(),
      expiresAt: new Date(NOW.getTime() + 3_600_000).toISOString(),
    });
    expect(status?.conditions?.map((c) => `${c.type}=${c.status}`)).toEqual(['Scheduled=True', 'Ready=True', 'Routed=True']);
    expect(result).toEqual({ requeueAfterMs: 3_600_000 });
  });

  it('writes nothing when the world already is as it should be', async () => {
    const s = session({ status: running() });
    const first = await reconcile([template, s, ...reachable(s)]);
    const conditions = (first.status ?? s.status)!.conditions;
    await fx!.stop();
    const settled = session({ status: { ...running(), conditions } });
    const { actions } = await reconcile([template, settled, ...reachable(settled)]);
    expect(actions).toEqual([]);
  });

  it('puts back a child that drifted', async () => {
    const s = session({ status: running() });
    const [secret, service, ...rest] = children(s) as { spec?: Record<string, unknown> }[];
    const drifted = { ...service, spec: { ...service!.spec, ports: [{ name: 'http', port: 9999 }] } };
    const { actions } = await reconcile([template, s, secret!, drifted, ...rest, pod(s, 'ready')]);
    expect(actions).toContain('apply services vdi-s');
  });

  it('observes the route: one the apiserver keeps different from ours (a mutating webhook) leaves the session Starting/Routing', async () => {
    const s = session({ status: { phase: 'Starting', reason: 'WaitingForReadiness', message: '', observedGeneration: 1 } });
    const [secret, service, policy, middleware] = children(s);
    fx = await newFixture([template, s, secret!, service!, policy!, middleware!, pod(s, 'ready')], { now: NOW });
    fx.client.react = (a) =>
      a.resource === 'ingressroutes'
        ? {
            ...(a.body as object),
            spec: { entryPoints: ['web'], routes: [] },
            metadata: { ...(a.body as { metadata: object }).metadata, resourceVersion: '50' },
          }
        : undefined;
    await fx.controller.reconcile(`${NS}/s`);
    const written = fx.client.actions.filter((a) => a.resource === 'vdisessions/status').map((a) => (a.body as { status: VDISessionStatus }).status);
    expect(written.at(-1)).toMatchObject({ phase: 'Starting', reason: 'Routing' });
    expect(written.at(-1)?.conditions?.find((c) => c.type === 'Routed')).toMatchObject({ status: 'False' });
  });

  it('Expired: deletes the session', async () => {
    const s = session({ status: { ...running(), phase: 'Expired', reason: 'Timeout' } });
    const { actions } = await reconcile([template, s, ...reachable(s)]);
    expect(actions).toEqual(['delete vdisessions s']);
  });

  it('Failed: releases the GPU slice by deleting the pod and keeps the status for the user', async () => {
    const s = session({ status: { phase: 'Failed', reason: 'DesktopExited', observedGeneration: 1 } });
    const { actions } = await reconcile([template, s, ...reachable(s)]);
    // Its address leaves the route with it: the IP may soon be another pod's.
    expect(actions).toEqual(['delete pods vdi-s', 'apply endpointslices vdi-s']);
    expect((fx!.client.store.get(`${NS}/endpointslices/vdi-s`) as unknown as V1EndpointSlice).endpoints).toEqual([]);
  });

  it('TemplateNotFound: says Pending and creates nothing', async () => {
    const s = session();
    const { actions, status } = await reconcile([s]);
    expect(actions).toEqual(['patch vdisessions/status s']);
    expect(status).toMatchObject({ phase: 'Pending', reason: 'TemplateNotFound' });
  });

  it('ExceedsTemplateLimits: says Failed, creates nothing and stops a pod already running', async () => {
    const s = session({ spec: { resources: { gpu: 1, memory: '64Gi' } } });
    const { actions, status } = await reconcile([template, s, pod(session(), 'ready')]);
    expect(actions).toEqual(['patch vdisessions/status s', 'delete pods vdi-s']);
    expect(status).toMatchObject({ phase: 'Failed', reason: 'ExceedsTemplateLimits' });
  });

  it('at its expiry: says Expired (Timeout), then deletes the session', async () => {
    const s = session({ status: { ...running(), expiresAt: ago(1) } });
    const { actions, status } = await reconcile([template, s, ...reachable(s)]);
    expect(actions).toEqual(['patch vdisessions/status s', 'delete vdisessions s']);
    expect(status).toMatchObject({ phase: 'Expired', reason: 'Timeout' });
  });

  it('PodLost: a desktop that ran and whose pod is gone is over, not restarted', async () => {
    const s = session({ status: running() });
    const { actions, status } = await reconcile([template, s, ...children(s)]);
    expect(actions).toEqual(['patch vdisessions/status s']);
    expect(status).toMatchObject({ phase: 'Failed', reason: 'PodLost' });
  });

  it('DesktopExited: a pod that ended fails the session and is deleted', async () => {
    const s = session({ status: running() });
    const { actions, status } = await reconcile([template, s, ...children(s), pod(s, 'succeeded')]);
    expect(actions).toEqual(['patch vdisessions/status s', 'delete pods vdi-s']);
    expect(status).toMatchObject({ phase: 'Failed', reason: 'DesktopExited', message: 'the desktop pod ended with phase Succeeded' });
  });

  it('records an Event when a desktop ends, none on its way up (the status says that)', async () => {
    const events = async () => {
      await fx!.controller.events.stop();
      return fx!.client.actions.filter((a) => a.resource === 'events').map((a) => a.body as { type: string; action: string; reason: string });
    };
    const starting = session({ status: { phase: 'Starting', reason: 'ContainerCreating', message: '', observedGeneration: 1 } });
    expect((await reconcile([template, starting, ...children(starting), pod(starting, 'ready')])).status).toMatchObject({ phase: 'Running' });
    expect(await events()).toEqual([]);
    await fx!.stop();
    const s = session({ status: running() });
    expect((await reconcile([template, s, ...children(s), pod(s, 'succeeded')])).status).toMatchObject({ phase: 'Failed' });
    expect(await events()).toEqual([expect.objectContaining({ type: 'Warning', action: 'Failed', reason: 'DesktopExited' })]);
  });

  it('finalize with a pod: says Terminating and deletes the pod, keeping the finalizer until the pod is gone', async () => {
    const s = session({ status: running(), metadata: { deletionTimestamp: ago(1_000) } });
    const { actions, status } = await reconcile([template, s, ...reachable(s)]);
    expect(actions).toEqual(['patch vdisessions/status s', 'apply endpointslices vdi-s', 'delete pods vdi-s']);
    expect(status).toMatchObject({ phase: 'Terminating', reason: 'Deleted' });
  });

  it('finalize without a pod: lifts the finalizer', async () => {
    const s = session({ status: { ...running(), phase: 'Terminating', reason: 'Deleted' }, metadata: { deletionTimestamp: ago(1_000) } });
    const { actions } = await reconcile([template, s, ...children(s)]);
    expect(actions).toEqual(['patch vdisessions s']);
    expect(fx!.client.store.get(`${NS}/vdisessions/s`)?.metadata.finalizers).toEqual([]);
  });

  it('orphans: deletes the children of a session that no longer exists, and only those', async () => {
    const s = session();
    const label = (o: object) => {
      const obj = o as { metadata: { labels?: Record<string, string> } };
      return { ...obj, metadata: { ...obj.metadata, labels: { ...obj.metadata.labels, [LABEL_SESSION]: 's', [LABEL_MANAGED_BY]: MANAGER } } };
    };
    const other = {
      ...label(pod(session({ metadata: { name: 't' } }), 'ready')),
      metadata: { name: 'vdi-t', namespace: NS, labels: { [LABEL_SESSION]: 't', [LABEL_MANAGED_BY]: MANAGER }, resourceVersion: '3' },
    };
    // The namespace's shared Middleware and NetworkPolicy carry no session label: they stay for the other sessions.
    const shared = (o: object) => ['Middleware', 'NetworkPolicy'].includes((o as { kind: string }).kind);
    const objects = children(s).map((o) => (shared(o) ? o : label(o)));
    const { actions } = await reconcile([template, ...objects, label(pod(s, 'ready')), other]);
    expect(actions).toEqual(['delete pods vdi-s', 'delete ingressroutes vdi-s', 'delete services vdi-s', 'delete secrets vdi-s']);
  });

  it('writes nothing once its leadership term has ended', async () => {
    const term = new AbortController();
    const s = session({ metadata: { finalizers: undefined } });
    fx = await newFixture([template, s], { now: NOW, term: { signal: term.signal, confirm: () => term.signal.throwIfAborted() } });
    term.abort(new Error('lease lost'));
    await expect(fx.controller.reconcile(`${NS}/s`)).rejects.toThrow('lease lost');
    expect(fx.actions()).toEqual([]);
  });
});

describe('reconcile: idle desktops', () => {
  // Stops desktops after 30 minutes without a client, with a 5-minute warning.
  const idleTemplate: VDITemplate = { ...template, spec: { ...template.spec, idle: { defaultTimeout: '30m', warning: '5m' } } };
  const MIN = 60_000;
  const runningFor = (minutes: number, over: Partial<VDISessionStatus> = {}): VDISessionStatus => ({
    ...running(),
    startTime: ago(minutes * MIN),
    expiresAt: new Date(NOW.getTime() + 8 * 3_600_000).toISOString(),
    ...over,
  });
  const idleReconcile = async (objects: object[]) => {
    fx = await newFixture([idleTemplate, ...objects], { now: NOW });
    const result = await fx.controller.reconcile(`${NS}/s`);
    const statuses = fx.client.actions.filter((a) => a.resource === 'vdisessions/status').map((a) => (a.body as { status: VDISessionStatus }).status);
    return { result, actions: fx.actions(), status: statuses.at(-1), stored: fx.client.store.get(`${NS}/vdisessions/s`) as VDISession | undefined };
  };

  it('stops a desktop that never reported a client once the idle timeout has passed since it was Running', async () => {
    const s = session({ status: runningFor(31) });
    const { actions, status, stored, result } = await idleReconcile([s, ...reachable(s)]);
    expect(actions).toEqual(['patch vdisessions s', 'delete pods vdi-s', 'apply endpointslices vdi-s', 'patch vdisessions/status s']);
    const suspend = fx!.client.actions.find((a) => a.resource === 'vdisessions')!.body as {
      metadata: { resourceVersion: string; annotations: Record<string, string> };
      spec: { suspend: boolean };
    };
    expect(suspend).toEqual({ metadata: { resourceVersion: '10', annotations: { [ANNOTATION_STOP_REASON]: 'Idle' } }, spec: { suspend: true } });
    expect(stored?.spec.suspend).toBe(true);
    expect(status).toMatchObject({ phase: 'Stopped', reason: 'Idle', stoppedAt: NOW.toISOString(), startTime: null, podName: null });
    expect(stored?.status).toMatchObject({ firstStartTime: ago(31 * MIN), url: running().url });
    expect(result).toEqual({ requeueAfterMs: 8 * 3_600_000 });
  });

  it('never stops a desktop whose client is connected', async () => {
    // 55 minutes running, 54 of them with a client: long past the idle timeout, and nothing but the expiry ahead.
    const s = session({ status: runningFor(55, { presence: { connected: true, lastActivity: ago(54 * MIN) } }) });
    const { actions, result } = await idleReconcile([s, ...reachable(s)]);
    expect(actions.filter((a) => a !== 'patch vdisessions/status s')).toEqual([]);
    expect(result).toEqual({ requeueAfterMs: 5 * MIN });
  });

  it('warns in the last minutes before the stop, and comes back at the stop', async () => {
    const s = session({ status: runningFor(27) });
    const { actions, status, result } = await idleReconcile([s, ...reachable(s)]);
    expect(actions).toEqual(['patch vdisessions/status s']);
    expect(status?.conditions?.find((c) => c.type === 'IdleWarning')).toMatchObject({ status: 'True', reason: 'IdleTimeout' });
    expect(status?.conditions?.find((c) => c.type === 'ClientConnected')).toMatchObject({ status: 'Unknown' });
    expect(result).toEqual({ requeueAfterMs: 3 * MIN });
  });

  it('comes back at the warning time, and writes nothing before it once conditions are in place', async () => {
    const s = session({ status: runningFor(10) });
    const first = await idleReconcile([s, ...reachable(s)]);
    expect(first.result).toEqual({ requeueAfterMs: 15 * MIN });
    await fx!.stop();
    const settled = session({ status: first.stored!.status });
    expect((await idleReconcile([settled, ...reachable(settled)])).actions).toEqual([]);
  });

  it('does not stop when the session changed since it was read (a client connected): the suspend is conditional', async () => {
    const s = session({ status: runningFor(31) });
    fx = await newFixture([idleTemplate, s, ...reachable(s)], { now: NOW });
    fx.client.react = (a) => {
      if (a.resource === 'vdisessions' && a.verb === 'patch') throw new KubeError(409, 'Conflict', 'the object has been modified');
      return undefined;
    };
    expect(await fx.controller.reconcile(`${NS}/s`)).toEqual({});
    expect(fx.actions()).toEqual(['patch vdisessions s']);
  });

  it('stops a session its user suspended, with reason Suspended, and keeps it stopped', async () => {
    const s = session({ spec: { suspend: true }, status: runningFor(5) });
    const { actions, status } = await idleReconcile([s, ...reachable(s)]);
    expect(actions).toEqual(['delete pods vdi-s', 'apply endpointslices vdi-s', 'patch vdisessions/status s']);
    expect(status).toMatchObject({ phase: 'Stopped', reason: 'Suspended' });
  });

  it('resumes a stopped session whose suspend was cleared: a new pod with the same home, the expiry from the first start', async () => {
    const first = ago(40 * MIN);
    const s = session({
      metadata: { annotations: { [ANNOTATION_STOP_REASON]: 'Idle' } },
      status: {
        phase: 'Stopped',
        reason: 'Idle',
        url: running().url,
        firstStartTime: first,
        expiresAt: new Date(Date.parse(first) + 3_600_000).toISOString(),
        stoppedAt: ago(60 * MIN),
        observedGeneration: 1,
      },
    });
    const { actions, stored } = await idleReconcile([s, ...children(s)]);
    expect(actions).toEqual(['patch vdisessions s', 'create pods vdi-s', 'patch vdisessions/status s']);
    expect(stored?.metadata.annotations?.[ANNOTATION_STOP_REASON]).toBeUndefined();
    expect(stored?.status).toMatchObject({ phase: 'Pending', firstStartTime: first });
    expect(stored?.status?.stoppedAt).toBeUndefined();
  });
});
