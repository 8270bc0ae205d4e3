import type { V1ContainerStatus, V1Pod, V1PodCondition } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { expiresAt, hasExpired, isSettled, mergeConditions, sessionStatus, sessionStatusFromPod, statusEqual } from './status.ts';
import type { Condition, VDISession, VDISessionStatus } from './v1alpha1.ts';
import { testReconcilerConfig } from '../test/support/reconciler-config.ts';

const config = testReconcilerConfig();
const now = new Date('2025-03-01T10:00:00Z');
const session: VDISession = {
  apiVersion: 'vdi.kasm.io/v1alpha1',
  kind: 'VDISession',
  metadata: { name: 'desk', namespace: 'team-a', uid: 'uid-1', generation: 4 },
  spec: { user: 'alice@example.com', template: 'ubuntu' },
};
const GPU_MESSAGE = '0/3 nodes are available: 2 Insufficient nvidia.com/gpu, 1 node(s) had untolerated taint. preemption: 0/3 nodes are available.';

function pod(
  options: {
    phase?: string;
    nodeName?: string;
    conditions?: V1PodCondition[];
    containers?: V1ContainerStatus[];
    status?: Partial<NonNullable<V1Pod['status']>>;
  } = {},
): V1Pod {
  return {
    metadata: { name: 'vdi-desk', namespace: 'team-a' },
    spec: { containers: [{ name: 'desktop' }], ...(options.nodeName && { nodeName: options.nodeName }) },
    status: {
      phase: options.phase ?? 'Pending',
      conditions: options.conditions ?? [],
      containerStatuses: options.containers ?? [],
      ...options.status,
    },
  };
}
const scheduledTrue: V1PodCondition = { type: 'PodScheduled', status: 'True' };
const readyTrue: V1PodCondition = { type: 'Ready', status: 'True' };
function waiting(reason: string, message?: string): V1ContainerStatus {
  return { name: 'desktop', image: 'img', imageID: '', ready: false, restartCount: 0, state: { waiting: { reason, message } } };
}
const running: V1ContainerStatus = { name: 'desktop', image: 'img', imageID: '', ready: true, restartCount: 0, state: { running: {} } };

function status(p: V1Pod | undefined, routeReady = false) {
  return sessionStatusFromPod(session, p, routeReady, now, config);
}
function condition(conditions: Condition[], type: string): Condition | undefined {
  return conditions.find((c) => c.type === type);
}

describe('sessionStatusFromPod', () => {
  it('is Pending/Creating before the pod exists', () => {
    expect(status(undefined)).toMatchObject({ phase: 'Pending', reason: 'Creating', podName: undefined, nodeName: undefined });
  });

  it('WaitingForGPU with the scheduler message when GPU slices run out', () => {
    const p = pod({ conditions: [{ type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message: GPU_MESSAGE }] });
    expect(status(p)).toMatchObject({ phase: 'Pending', reason: 'WaitingForGPU', message: GPU_MESSAGE });
    expect(condition(status(p).conditions, 'Scheduled')).toMatchObject({ status: 'False', reason: 'WaitingForGPU', message: GPU_MESSAGE });
  });

  it('is Unschedulable with the scheduler message for other shortages', () => {
    const message = '0/3 nodes are available: 3 Insufficient memory.';
    const p = pod({ conditions: [{ type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message }] });
    expect(status(p)).toMatchObject({ phase: 'Pending', reason: 'Unschedulable', message });
  });

  it('watches the configured GPU resource name', () => {
    const shared = testReconcilerConfig({ gpuResourceName: 'nvidia.com/gpu.shared' });
    const message = '0/1 nodes are available: 1 Insufficient nvidia.com/gpu.shared.';
    const p = pod({ conditions: [{ type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message }] });
    expect(sessionStatusFromPod(session, p, false, now, shared).reason).toBe('WaitingForGPU');
  });

  it('is Starting with the container waiting reason once scheduled', () => {
    const p = pod({ nodeName: 'gpu-1', conditions: [scheduledTrue], containers: [waiting('ContainerCreating')] });
    expect(status(p)).toMatchObject({ phase: 'Starting', reason: 'ContainerCreating', podName: 'vdi-desk', nodeName: 'gpu-1' });
    expect(condition(status(p).conditions, 'Scheduled')?.status).toBe('True');
  });

  it('is Starting while the container runs but is not ready yet', () => {
    const p = pod({ phase: 'Running', nodeName: 'gpu-1', conditions: [scheduledTrue], containers: [{ ...running, ready: false }] });
    expect(status(p)).toMatchObject({ phase: 'Starting', reason: 'WaitingForReadiness' });
  });

  it.each(['ErrImagePull', 'ImagePullBackOff', 'InvalidImageName', 'CrashLoopBackOff', 'CreateContainerConfigError'])(
    '%s fails fast with the container message',
    (reason) => {
      const p = pod({ nodeName: 'gpu-1', conditions: [scheduledTrue], containers: [waiting(reason, 'Back-off pulling image "nope:1"')] });
      expect(status(p)).toMatchObject({ phase: 'Failed', reason, message: expect.stringContaining('Back-off pulling image "nope:1"') });
    },
  );

  it('fails when the pod itself failed', () => {
    const p = pod({ phase: 'Failed', nodeName: 'gpu-1', status: { reason: 'Evicted', message: 'The node was low on resource: memory.' } });
    expect(status(p)).toMatchObject({ phase: 'Failed', reason: 'Evicted', message: 'The node was low on resource: memory.' });
  });

  it('is Running only when the pod is Ready and the route is in place', () => {
    const p = pod({ phase: 'Running', nodeName: 'gpu-1', conditions: [scheduledTrue, readyTrue], containers: [running] });
    expect(status(p, true)).toMatchObject({ phase: 'Running' });
    expect(status(p, false)).toMatchObject({ phase: 'Starting', reason: 'Routing' });
  });

  it('reports Scheduled, Ready and Routed conditions at the session generation', () => {
    const p = pod({ phase: 'Running', nodeName: 'gpu-1', conditions: [scheduledTrue, readyTrue], containers: [running] });
    const { conditions } = status(p, true);
    expect(conditions.map((c) => [c.type, c.status])).toEqual([
      ['Scheduled', 'True'],
      ['Ready', 'True'],
      ['Routed', 'True'],
    ]);
    for (const c of conditions) {
      expect(c.observedGeneration).toBe(4);
      expect(c.lastTransitionTime).toBe(now.toISOString());
    }
    expect(condition(status(undefined).conditions, 'Ready')).toMatchObject({ status: 'False', reason: 'Creating' });
    expect(condition(status(undefined).conditions, 'Routed')?.status).toBe('False');
  });
});

describe('mergeConditions', () => {
  const earlier = '2025-03-01T09:00:00Z';
  const old: Condition[] = [
    { type: 'Scheduled', status: 'True', reason: 'Scheduled', message: 'a', lastTransitionTime: earlier },
    { type: 'Ready', status: 'False', reason: 'ContainerCreating', message: '', lastTransitionTime: earlier },
    { type: 'Expired', status: 'False', reason: 'Active', message: '', lastTransitionTime: earlier },
  ];

  it('keeps lastTransitionTime when the status did not change, and moves it when it did', () => {
    const next: Condition[] = [
      { type: 'Scheduled', status: 'True', reason: 'Scheduled', message: 'b', lastTransitionTime: 'x' },
      { type: 'Ready', status: 'True', reason: 'PodReady', message: '', lastTransitionTime: 'x' },
    ];
    const merged = mergeConditions(old, next, now);
    expect(merged.find((c) => c.type === 'Scheduled')).toMatchObject({ message: 'b', lastTransitionTime: earlier });
    expect(merged.find((c) => c.type === 'Ready')).toMatchObject({ status: 'True', lastTransitionTime: now.toISOString() });
  });

  it('keeps conditions of other types and appends new ones', () => {
    const merged = mergeConditions(old, [{ type: 'Routed', status: 'True', reason: 'RouteReady', message: '', lastTransitionTime: 'x' }], now);
    expect(merged.map((c) => c.type)).toEqual(['Scheduled', 'Ready', 'Expired', 'Routed']);
    expect(merged.at(-1)?.lastTransitionTime).toBe(now.toISOString());
  });

  it('starts from nothing', () => {
    expect(mergeConditions(undefined, [old[0]!], now)[0]?.lastTransitionTime).toBe(now.toISOString());
  });
});

describe('statusEqual', () => {
  const base: VDISessionStatus = {
    phase: 'Running',
    reason: 'Ready',
    podName: 'vdi-desk',
    conditions: [
      { type: 'Ready', status: 'True', reason: 'PodReady', message: '', lastTransitionTime: 't' },
      { type: 'Routed', status: 'True', reason: 'RouteReady', message: '', lastTransitionTime: 't' },
    ],
  };

  it('treats a recomputed, unchanged status as equal so no write happens', () => {
    const same: VDISessionStatus = {
      conditions: [...(base.conditions ?? [])].reverse(),
      podName: 'vdi-desk',
      reason: 'Ready',
      phase: 'Running',
      nodeName: undefined,
    };
    expect(statusEqual(base, same)).toBe(true);
    expect(statusEqual(undefined, {})).toBe(true);
  });

  it('notices any real change', () => {
    expect(statusEqual(base, { ...base, phase: 'Starting' })).toBe(false);
    expect(statusEqual(base, { ...base, nodeName: 'gpu-1' })).toBe(false);
    const moved = base.conditions!.map((c) => (c.type === 'Ready' ? { ...c, lastTransitionTime: 'u' } : c));
    expect(statusEqual(base, { ...base, conditions: moved })).toBe(false);
  });
});

describe('expiresAt', () => {
  it('adds the timeout to the start time', () => {
    expect(expiresAt('2025-03-01T10:00:00Z', 8 * 3_600_000)).toBe('2025-03-01T18:00:00.000Z');
    expect(expiresAt(now, 90 * 60_000)).toBe('2025-03-01T11:30:00.000Z');
  });
});

describe('sessionStatus', () => {
  const HOUR = 3_600_000;
  const observe = (p: V1Pod | undefined, previous?: VDISessionStatus, routed = true) =>
    sessionStatus({ session: { ...session, ...(previous && { status: previous }) }, pod: p, routed, timeoutMs: HOUR, now, config }).status;
  const ready = () => pod({ phase: 'Running', nodeName: 'gpu-1', conditions: [scheduledTrue, readyTrue], containers: [running] });

  it('gives a desktop that becomes Running its URL, start time and expiry', () => {
    expect(observe(ready())).toMatchObject({
      phase: 'Running',
      url: 'https://desk-team-a.vdi.example.com/',
      startTime: now.toISOString(),
      expiresAt: '2025-03-01T11:00:00.000Z',
    });
  });

  it('keeps the start time, URL and expiry of a desktop that ran, whatever its pod does next', () => {
    const startTime = '2025-03-01T09:30:00.000Z';
    expect(observe(pod({ phase: 'Running', nodeName: 'gpu-1', conditions: [scheduledTrue] }), { phase: 'Running', startTime })).toMatchObject({
      phase: 'Starting',
      startTime,
      expiresAt: '2025-03-01T10:30:00.000Z',
    });
  });

  it('has no URL, start time or expiry before the desktop first runs', () => {
    const s = observe(pod({ nodeName: 'gpu-1', conditions: [scheduledTrue], containers: [waiting('ContainerCreating')] }));
    expect(s).not.toHaveProperty('url');
    expect(s).not.toHaveProperty('startTime');
  });

  it('PodLost: the pod of a desktop that ran is gone', () => {
    expect(observe(undefined, { phase: 'Running', startTime: '2025-03-01T09:30:00.000Z' })).toMatchObject({ phase: 'Failed', reason: 'PodLost' });
    expect(observe(undefined)).toMatchObject({ phase: 'Pending', reason: 'Creating' });
  });

  it("DesktopExited: the pod ended on its own; a pod the kubelet failed keeps the kubelet's reason", () => {
    expect(observe(pod({ phase: 'Succeeded', nodeName: 'gpu-1' }))).toMatchObject({
      phase: 'Failed',
      reason: 'DesktopExited',
      message: 'the desktop pod ended with phase Succeeded',
    });
    expect(observe(pod({ phase: 'Failed', nodeName: 'gpu-1' }))).toMatchObject({ phase: 'Failed', reason: 'DesktopExited' });
    expect(observe(pod({ phase: 'Failed', nodeName: 'gpu-1', status: { reason: 'UnexpectedAdmissionError', message: 'no device' } }))).toMatchObject({
      phase: 'Failed',
      reason: 'UnexpectedAdmissionError',
    });
  });

  it("shows the pod's own resources once it exists: a template edited after the start changes no running desktop", () => {
    const asked = { gpu: 2, cpu: '4', memory: '8Gi' };
    const observeWith = (p: V1Pod | undefined, previous?: VDISessionStatus) =>
      sessionStatus({
        session: { ...session, ...(previous && { status: previous }) },
        pod: p,
        routed: true,
        timeoutMs: HOUR,
        now,
        config,
        resources: asked,
      }).status.resources;
    // Before the pod: what the session will run with.
    expect(observeWith(undefined)).toEqual(asked);
    // The pod was built from the template as it was: one slice, 2 CPUs, 4Gi.
    const built = ready();
    built.spec!.containers[0]!.resources = { limits: { 'nvidia.com/gpu': '1', cpu: '2', memory: '4Gi' }, requests: {} };
    expect(observeWith(built)).toEqual({ gpu: 1, cpu: '2', memory: '4Gi' });
    // A CPU-only pod has no GPU limit: 0 slices.
    const cpuOnly = ready();
    cpuOnly.spec!.containers[0]!.resources = { limits: { cpu: '2', memory: '4Gi' } };
    expect(observeWith(cpuOnly)).toEqual({ gpu: 0, cpu: '2', memory: '4Gi' });
    // A desktop that ran and lost its pod keeps what it ran with.
    const ran = { phase: 'Running' as const, startTime: '2025-03-01T09:30:00.000Z', resources: { gpu: 1, cpu: '2', memory: '4Gi' } };
    expect(observeWith(undefined, ran)).toEqual(ran.resources);
  });

  it('is Starting/Routing, with Routed False, while the route the apiserver holds is not the one the session needs', () => {
    const result = sessionStatus({ session, pod: ready(), routed: false, timeoutMs: HOUR, now, config });
    expect(result.status).toMatchObject({ phase: 'Starting', reason: 'Routing' });
    expect(condition(result.conditions, 'Routed')?.status).toBe('False');
  });
});

describe('terminal states', () => {
  it('an Expired session, and a Failed one judged at its current generation, are settled; an edited Failed one is judged again', () => {
    expect(isSettled({ ...session, status: { phase: 'Expired' } })).toBe('Expired');
    expect(isSettled({ ...session, status: { phase: 'Failed', observedGeneration: 4 } })).toBe('Failed');
    expect(isSettled({ ...session, status: { phase: 'Failed', observedGeneration: 3 } })).toBeUndefined();
    expect(isSettled({ ...session, status: { phase: 'Running' } })).toBeUndefined();
  });

  it('expires at expiresAt, not before', () => {
    expect(hasExpired({ ...session, status: { expiresAt: '2025-03-01T10:00:00.000Z' } }, now)).toBe(true);
    expect(hasExpired({ ...session, status: { expiresAt: '2025-03-01T10:00:00.001Z' } }, now)).toBe(false);
    expect(hasExpired(session, now)).toBe(false);
  });
});
