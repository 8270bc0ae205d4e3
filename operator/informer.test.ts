import { afterEach, describe, expect, it, vi } from 'vitest';
import { KubeError, type KubeClient, type WatchEvent } from '../src/kube/client.ts';
import { Informer, isOlder, withoutManagedFields, type KubeObject } from './informer.ts';

type Watch = (onEvent: (event: WatchEvent<KubeObject>) => void, signal: AbortSignal) => Promise<void>;

/** A client whose list returns `items` and whose watches play the scripted behaviours in turn. */
function fakeClient(items: KubeObject[], watches: Watch[]) {
  const calls: { at: number; resourceVersion: unknown }[] = [];
  const client = {
    list: async () => ({ metadata: { resourceVersion: '10' }, items }),
    watch: async (_path: string, query: Record<string, unknown>, onEvent: (e: WatchEvent<KubeObject>) => void, signal: AbortSignal) => {
      calls.push({ at: Date.now(), resourceVersion: query.resourceVersion });
      const next = watches.shift();
      if (next) return await next(onEvent, signal);
      await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
    },
  } as unknown as KubeClient;
  return { client, calls };
}

const pod = (name: string, rv: string): KubeObject => ({ metadata: { name, namespace: 'ns', resourceVersion: rv } });
const fail: Watch = async () => {
  throw new KubeError(500, 'InternalError', 'boom');
};

afterEach(() => {
  vi.useRealTimers();
});

describe('Informer', () => {
  it('starts backing off from the bottom again once a watch has delivered events', async () => {
    vi.useFakeTimers();
    vi.spyOn(Math, 'random').mockReturnValue(0);
    const delivering: Watch = async (onEvent) => {
      onEvent({ type: 'MODIFIED', object: pod('a', '11') });
      throw new KubeError(500, 'InternalError', 'connection lost');
    };
    const { client, calls } = fakeClient([pod('a', '10')], [fail, fail, fail, delivering]);
    const informer = new Informer(client, { path: '/api/v1/pods' });
    informer.start();
    // Three failures back off 250, 500 and 1000 ms; the fourth watch works for a while and then breaks.
    await vi.advanceTimersByTimeAsync(250 + 500 + 1000);
    expect(calls).toHaveLength(4);
    // After a working watch the retry comes after the base delay, not 2000 ms.
    await vi.advanceTimersByTimeAsync(250);
    expect(calls).toHaveLength(5);
    expect(calls[4]!.resourceVersion).toBe('11');
    vi.mocked(Math.random).mockRestore();
    await informer.stop();
  });

  it("backs off from a 429 (the apiserver's watch cache still initializing) without reporting it, and reports other failures", async () => {
    vi.useFakeTimers();
    vi.spyOn(Math, 'random').mockReturnValue(0);
    const initializing: Watch = async () => {
      throw new KubeError(429, 'TooManyRequests', 'storage is (re)initializing');
    };
    const { client, calls } = fakeClient([pod('a', '10')], [initializing, initializing, fail]);
    const reported: unknown[] = [];
    const informer = new Informer(client, { path: '/apis/traefik.io/v1alpha1/ingressroutes' });
    informer.onRecoveredError((err) => reported.push(err));
    informer.start();
    await vi.advanceTimersByTimeAsync(250 + 500);
    expect(calls).toHaveLength(3);
    expect(informer.stats.errors).toBe(3);
    expect(reported).toEqual([expect.objectContaining({ status: 500 })]);
    vi.mocked(Math.random).mockRestore();
    await informer.stop();
  });

  it('keeps an object it was told about through remember(), and ignores the older copy the watch brings later', async () => {
    let deliver!: (event: WatchEvent<KubeObject>) => void;
    const held: Watch = (onEvent, signal) => {
      deliver = onEvent;
      return new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
    };
    const { client } = fakeClient([pod('a', '10')], [held]);
    const informer = new Informer(client, { path: '/api/v1/pods' });
    const seen: string[] = [];
    informer.on((type, obj) => seen.push(`${type}:${obj.metadata?.resourceVersion}`));
    informer.start();
    await informer.waitForSync();
    await vi.waitFor(() => expect(deliver).toBeTypeOf('function'));

    informer.remember(pod('a', '13'));
    expect(informer.get('ns/a')?.metadata?.resourceVersion).toBe('13');
    deliver({ type: 'MODIFIED', object: pod('a', '12') });
    deliver({ type: 'MODIFIED', object: pod('a', '13') });
    expect(informer.get('ns/a')?.metadata?.resourceVersion).toBe('13');
    deliver({ type: 'MODIFIED', object: pod('a', '14') });
    expect(informer.get('ns/a')?.metadata?.resourceVersion).toBe('14');
    expect(seen).toEqual(['ADDED:10', 'MODIFIED:13', 'MODIFIED:14']);
    await informer.stop();
  });
});

describe('withoutManagedFields', () => {
  it('delivers each event to every listener when one of them throws, and reports what it threw', async () => {
    let deliver!: (event: WatchEvent<KubeObject>) => void;
    const held: Watch = (onEvent, signal) => {
      deliver = onEvent;
      return new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
    };
    const { client, calls } = fakeClient([], [held]);
    const informer = new Informer(client, { path: '/api/v1/pods' });
    const before: string[] = [];
    const after: string[] = [];
    const reported: unknown[] = [];
    informer.onListenerError((err) => reported.push(err));
    informer.on((type, obj) => before.push(`${type}:${obj.metadata?.name}`));
    informer.on((_type, obj) => {
      if (obj.metadata?.name === 'bad') throw new Error('listener bug');
    });
    informer.on((type, obj) => after.push(`${type}:${obj.metadata?.name}`));
    informer.start();
    await informer.waitForSync();
    await vi.waitFor(() => expect(deliver).toBeTypeOf('function'));

    deliver({ type: 'ADDED', object: pod('bad', '11') });
    deliver({ type: 'ADDED', object: pod('good', '12') });
    expect(before).toEqual(['ADDED:bad', 'ADDED:good']);
    expect(after).toEqual(['ADDED:bad', 'ADDED:good']);
    expect(reported).toEqual([new Error('listener bug')]);
    // The watch that delivered the event goes on: no second watch was opened.
    expect(calls).toHaveLength(1);
    await informer.stop();
  });

  it('drops server-side apply bookkeeping from cached objects, leaving the object it was given unchanged', async () => {
    const managed = {
      metadata: { name: 'a', namespace: 'ns', resourceVersion: '10', labels: { x: 'y' }, managedFields: [{ manager: 'vdi-operator' }] },
      spec: { n: 1 },
    };
    expect(withoutManagedFields(managed)).toEqual({
      metadata: { name: 'a', namespace: 'ns', resourceVersion: '10', labels: { x: 'y' } },
      spec: { n: 1 },
    });
    expect(managed.metadata.managedFields).toHaveLength(1);
    const { client } = fakeClient([managed], []);
    const informer = new Informer(client, { path: '/api/v1/pods' });
    informer.start();
    await informer.waitForSync();
    expect(informer.get('ns/a')).toEqual({ metadata: { name: 'a', namespace: 'ns', resourceVersion: '10', labels: { x: 'y' } }, spec: { n: 1 } });
    informer.remember({ ...managed, metadata: { ...managed.metadata, resourceVersion: '11' } });
    expect(informer.get('ns/a')?.metadata).not.toHaveProperty('managedFields');
    await informer.stop();
  });
});

describe('isOlder', () => {
  it('compares decimal resource versions numerically and treats anything else as not older', () => {
    expect(isOlder('9', '10')).toBe(true);
    expect(isOlder('10', '10')).toBe(false);
    expect(isOlder('11', '10')).toBe(false);
    expect(isOlder('abc', '10')).toBe(false);
    expect(isOlder(undefined, '10')).toBe(false);
  });
});
