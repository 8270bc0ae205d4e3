import type { V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { buildPod, buildSecret } from '../../operator/builders.ts';
import type { EffectiveSession } from '../../operator/resolve.ts';
import type { VDISession, VDITemplate } from '../../operator/v1alpha1.ts';
import { containerEndedStatus, desktopLaunch, expandReferences, PodContractError, relocateMounts, selkiesInvocation } from './pod-desktop.ts';
import { sessionStatusFromPod } from '../../operator/status.ts';
import { testReconcilerConfig } from '../../test/support/reconciler-config.ts';

const config = testReconcilerConfig({ domain: 'vdi.localhost', turnRestBaseUrl: 'http://127.0.0.1:8080/turn' });
const session: VDISession = {
  apiVersion: 'vdi.kasm.io/v1alpha1',
  kind: 'VDISession',
  metadata: { name: 'desk', namespace: 'vdi-alice', uid: 'uid-1' },
  spec: { user: 'alice@example.com', template: 'ubuntu-desktop' },
};
const template: VDITemplate = {
  apiVersion: 'vdi.kasm.io/v1alpha1',
  kind: 'VDITemplate',
  metadata: { name: 'ubuntu-desktop' },
  spec: {
    image: 'ghcr.io/selkies-project/selkies/desktop:latest-ubuntu24.04',
    displayName: 'Ubuntu',
    env: [{ name: 'GREETING', value: 'a $(TZ) b' }],
  },
};
const effective: EffectiveSession = {
  gpu: 0,
  memory: '4Gi',
  cpu: '2',
  persistence: { enabled: false, size: '1Gi' },
  timeoutMs: 3_600_000,
  idle: { timeoutMs: undefined, warningMs: 300_000, maxAgeMs: undefined },
  encoder: 'x264enc',
};

/** The pod the reconciler writes, as kwok reports it Running, and a lookup into the session Secret. */
function runningPod(): { pod: V1Pod; secret: (name: string, key: string) => string | undefined } {
  const pod = buildPod(session, template, effective, config, 'vdi-desk') as V1Pod;
  pod.status = { phase: 'Running', podIP: '10.244.128.7' };
  const data = buildSecret(session, 'pa$$word', 'turn-token', 'presence-token').data!;
  const secret = (name: string, key: string) => (name === 'vdi-desk' && data[key] ? Buffer.from(data[key], 'base64').toString('utf8') : undefined);
  return { pod, secret };
}

describe('desktopLaunch of the pod the reconciler writes', () => {
  it("takes the Basic-auth password from the session Secret and the user from the pod's env", () => {
    const { pod, secret } = runningPod();
    const { env } = desktopLaunch(pod, secret);
    expect(env.SELKIES_BASIC_AUTH_PASSWORD).toBe('pa$$word');
    expect(env.SELKIES_BASIC_AUTH_USER).toBe('alice@example.com');
    expect(env.SELKIES_ENABLE_BASIC_AUTH).toBe('true');
  });

  it('expands the TURN token into the REST URI path, as the kubelet does', () => {
    const { pod, secret } = runningPod();
    expect(desktopLaunch(pod, secret).env.SELKIES_TURN_REST_URI).toBe('http://127.0.0.1:8080/turn/vdi-alice/desk/turn-token');
  });

  it("listens on the pod IP and the container's http port", () => {
    const { pod, secret } = runningPod();
    const launch = desktopLaunch(pod, secret);
    expect([launch.address, launch.port]).toEqual(['10.244.128.7', 8080]);
    // As the desktop image's entry point starts it, with the pod IP for "every interface".
    expect(selkiesInvocation(launch).args).toEqual(['--addr=10.244.128.7', '--port=8080']);
  });

  it('projects the presence token volume, and relocates it (and the env naming it) under a local root', () => {
    const { pod, secret } = runningPod();
    const launch = desktopLaunch(pod, secret);
    expect(launch.mounts).toEqual([{ mountPath: '/var/run/vdi', files: { 'presence-token': 'presence-token' } }]);
    const { env, files } = relocateMounts(launch.env, launch.mounts, '/tmp/d/mounts');
    expect(files).toEqual([{ path: '/tmp/d/mounts/var/run/vdi/presence-token', content: 'presence-token' }]);
    expect(env.VDI_PRESENCE_AUTH_FILE).toBe('/tmp/d/mounts/var/run/vdi/presence-token');
    expect(env.SELKIES_BASIC_AUTH_USER).toBe('alice@example.com');
  });

  it('refuses a pod whose Secret lacks the password (the kubelet would not start the container)', () => {
    const { pod } = runningPod();
    expect(() => desktopLaunch(pod, () => undefined)).toThrow(PodContractError);
  });

  it('refuses a SELKIES_PORT other than the port the pod declares (the route would find nothing)', () => {
    const { pod, secret } = runningPod();
    const launch = desktopLaunch(pod, secret);
    expect(() => selkiesInvocation({ ...launch, env: { ...launch.env, SELKIES_PORT: '9000' } })).toThrow(/9000/);
  });

  it('refuses a pod that leaves the image serving HTTPS (its default) behind a route that speaks HTTP', () => {
    const { pod, secret } = runningPod();
    const { SELKIES_ENABLE_HTTPS: _https, ...imageDefault } = desktopLaunch(pod, secret).env;
    expect(() => selkiesInvocation({ ...desktopLaunch(pod, secret), env: imageDefault })).toThrow(/HTTPS/);
  });
});

describe('expandReferences', () => {
  it('expands variables defined earlier, keeps unknown references and unescapes $$', () => {
    expect(expandReferences('$(A)-$(B)-$$(A)', { A: 'x' })).toBe('x-$(B)-$(A)');
  });
});

describe('containerEndedStatus: the desktop container ended, under restartPolicy Always', () => {
  const NOW = new Date('2030-01-01T12:00:00.000Z');
  const started = new Date('2030-01-01T11:50:00.000Z');
  /** The pod as the local desktops leave it once Selkies serves: Running and Ready. */
  function readyPod(restartCount = 0): V1Pod {
    const { pod } = runningPod();
    pod.spec!.nodeName = 'gpu-0';
    const at = started;
    pod.status = {
      ...pod.status,
      conditions: [
        { type: 'Initialized', status: 'True', lastTransitionTime: at },
        { type: 'Ready', status: 'True', lastTransitionTime: at },
        { type: 'ContainersReady', status: 'True', lastTransitionTime: at },
        { type: 'PodScheduled', status: 'True', lastTransitionTime: at },
      ],
      containerStatuses: [
        { name: 'desktop', image: 'desk', imageID: '', ready: true, started: true, restartCount, state: { running: { startedAt: at } } },
      ],
    };
    return pod;
  }
  const end = { exitCode: 137, startedAt: started, message: 'selkies exited with code 137' };
  /** The pod with the status patch applied (conditions and containerStatuses are replaced whole, as a merge patch does). */
  const apply = (pod: V1Pod, status: ReturnType<typeof containerEndedStatus>['status']) =>
    ({ ...pod, status: { ...pod.status, ...status } }) as V1Pod;

  it('the first end: the pod unready at once, one restart, the ended run as lastState, and the container running again', () => {
    const pod = readyPod();
    const { status, restart } = containerEndedStatus(pod, end, 1, NOW);
    expect(restart).toBe(true);
    const after = apply(pod, status);
    expect(after.status!.conditions!.filter((c) => c.type === 'Ready' || c.type === 'ContainersReady')).toEqual([
      { type: 'Ready', status: 'False', reason: 'ContainersNotReady', lastTransitionTime: NOW.toISOString() },
      { type: 'ContainersReady', status: 'False', reason: 'ContainersNotReady', lastTransitionTime: NOW.toISOString() },
    ]);
    // The other conditions are kept as they were.
    expect(after.status!.conditions!.find((c) => c.type === 'PodScheduled')).toEqual(pod.status!.conditions![3]);
    expect(after.status!.containerStatuses![0]).toMatchObject({
      ready: false,
      restartCount: 1,
      lastState: { terminated: { exitCode: 137, reason: 'Error', startedAt: started.toISOString(), finishedAt: NOW.toISOString() } },
      state: { running: { startedAt: NOW.toISOString() } },
    });
    // What the reconciler makes of it: the desktop is starting again, not Running and not failed.
    expect(sessionStatusFromPod(session, after, true, NOW, config)).toMatchObject({ phase: 'Starting', reason: 'WaitingForReadiness' });
  });

  it('an end the kubelet still remembers another of: CrashLoopBackOff, which the reconciler reports as the failure', () => {
    const pod = readyPod(1);
    const { status, restart } = containerEndedStatus(pod, end, 2, NOW);
    expect(restart).toBe(false);
    const after = apply(pod, status);
    expect(after.status!.containerStatuses![0]).toMatchObject({
      ready: false,
      started: false,
      restartCount: 2,
      state: { waiting: { reason: 'CrashLoopBackOff' } },
    });
    expect(sessionStatusFromPod(session, after, true, NOW, config)).toMatchObject({ phase: 'Failed', reason: 'CrashLoopBackOff' });
  });

  it('a clean exit is Completed, still restarted: restartPolicy Always', () => {
    const { status, restart } = containerEndedStatus(readyPod(), { ...end, exitCode: 0 }, 1, NOW);
    expect(restart).toBe(true);
    expect(status.containerStatuses[0]).toMatchObject({ lastState: { terminated: { exitCode: 0, reason: 'Completed' } } });
  });
});
