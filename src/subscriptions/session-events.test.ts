import { describe, expect, it, onTestFinished, vi } from 'vitest';
import type { Informer, InformerEventType } from '../../operator/informer.ts';
import type { VDISession } from '../../operator/v1alpha1.ts';
import { SessionEventHub } from './session-events.ts';

/** A stand-in for the shared informer: a list and a listener, which is all the hub uses. */
function cache(initial: VDISession[]) {
  const items = new Map(initial.map((s) => [`${s.metadata.namespace}/${s.metadata.name}`, s]));
  let listener: ((type: InformerEventType, s: VDISession) => void) | undefined;
  const informer = {
    list: () => [...items.values()],
    on: (l: typeof listener) => {
      listener = l;
      return () => {};
    },
  } as unknown as Informer<VDISession>;
  return {
    informer,
    emit(type: InformerEventType, s: VDISession) {
      if (type === 'DELETED') items.delete(`${s.metadata.namespace}/${s.metadata.name}`);
      else items.set(`${s.metadata.namespace}/${s.metadata.name}`, s);
      listener!(type, s);
    },
  };
}

const session = (namespace: string, name: string, phase = 'Pending'): VDISession =>
  ({
    apiVersion: 'vdi.kasm.io/v1alpha1',
    kind: 'VDISession',
    metadata: { namespace, name },
    spec: { user: 'u', template: 't' },
    status: { phase },
  }) as VDISession;

const allowed = async () => true;

describe('SessionEventHub', () => {
  it('starts with the current state as ADDED, then streams changes in order', async () => {
    const c = cache([session('a', 'one'), session('b', 'other')]);
    const hub = new SessionEventHub(c.informer);
    const it = hub.subscribe({ namespace: 'a', authorize: allowed });
    c.emit('MODIFIED', session('a', 'one', 'Running'));
    c.emit('MODIFIED', session('b', 'other', 'Running'));
    c.emit('DELETED', session('a', 'one', 'Running'));
    const got = [(await it.next()).value, (await it.next()).value, (await it.next()).value];
    expect(got.map((e) => `${e!.type} ${e!.session.metadata.name} ${e!.session.status?.phase}`)).toEqual([
      'ADDED one Pending',
      'MODIFIED one Running',
      'DELETED one Running',
    ]);
  });

  it('filters one session by name and ignores resyncs', async () => {
    const c = cache([session('a', 'one'), session('a', 'two')]);
    const hub = new SessionEventHub(c.informer);
    const it = hub.subscribe({ namespace: 'a', name: 'two', authorize: allowed });
    c.emit('RESYNC', session('a', 'two'));
    c.emit('MODIFIED', session('a', 'one', 'Running'));
    c.emit('MODIFIED', session('a', 'two', 'Starting'));
    expect((await it.next()).value!.type).toBe('ADDED');
    const next = (await it.next()).value!;
    expect([next.type, next.session.metadata.name, next.session.status?.phase]).toEqual(['MODIFIED', 'two', 'Starting']);
  });

  describe('decides before anything is delivered (issue #20: own-namespace subscriptions started as authorised)', () => {
    const label = (e: { type: string; session: VDISession }) => `${e.type} ${e.session.metadata.name} ${e.session.status?.phase}`;
    const settle = () => new Promise((r) => setImmediate(r));

    it('asks before the snapshot, and a refusal ends the subscription with nothing delivered', async () => {
      const c = cache([session('a', 'one')]);
      const hub = new SessionEventHub(c.informer);
      let checks = 0;
      const it = hub.subscribe({ namespace: 'a', authorize: async () => (checks++, false) });
      await expect(it.next()).rejects.toMatchObject({ extensions: { code: 'FORBIDDEN' } });
      expect(checks).toBe(1);
      expect(hub.subscribers).toBe(0);
    });

    it('holds the snapshot and later events until the first answer, then delivers them in order', async () => {
      const c = cache([session('a', 'one')]);
      const hub = new SessionEventHub(c.informer);
      let answer!: (allowed: boolean) => void;
      const it = hub.subscribe({ namespace: 'a', authorize: () => new Promise<boolean>((resolve) => (answer = resolve)) });
      const first = it.next();
      c.emit('MODIFIED', session('a', 'one', 'Running'));
      expect(await Promise.race([first.then(() => 'delivered'), settle().then(() => 'held')])).toBe('held');
      answer(true);
      expect(label((await first).value!)).toBe('ADDED one Pending');
      expect(label((await it.next()).value!)).toBe('MODIFIED one Running');
    });

    it('withholds from a refused subscriber of its own namespace, which stays and gets what comes once allowed', async () => {
      const c = cache([session('a', 'theirs')]);
      const hub = new SessionEventHub(c.informer, { reauthorizeMs: 0 });
      let allow = false;
      const it = hub.subscribe({ namespace: 'a', whenRefused: 'withhold', authorize: async () => allow });
      const next = it.next();
      await settle();
      c.emit('MODIFIED', session('a', 'theirs', 'Running'));
      await settle();
      expect(await Promise.race([next.then(() => 'delivered'), settle().then(() => 'nothing')])).toBe('nothing');
      expect(hub.subscribers).toBe(1);
      allow = true;
      c.emit('ADDED', session('a', 'mine'));
      expect(label((await next).value!)).toBe('ADDED mine Pending');
    });
  });

  it('ends a subscriber that falls too far behind with an error instead of dropping events', async () => {
    const c = cache([]);
    const hub = new SessionEventHub(c.informer, { maxQueue: 3 });
    const it = hub.subscribe({ authorize: allowed });
    for (let i = 0; i < 5; i++) c.emit('ADDED', session('a', `s${i}`));
    const names: string[] = [];
    await expect(
      (async () => {
        for (;;) names.push((await it.next()).value!.session.metadata.name!);
      })(),
    ).rejects.toMatchObject({ extensions: { code: 'UNAVAILABLE' } });
    expect(names).toEqual(['s0', 's1', 's2']);
    expect(hub.subscribers).toBe(0);
  });

  it('stops delivering, even DELETED events, once the subscriber is no longer authorised', async () => {
    const c = cache([]);
    let allow = true;
    const hub = new SessionEventHub(c.informer, { reauthorizeMs: 0 });
    const it = hub.subscribe({ namespace: 'a', authorize: async () => allow });
    c.emit('ADDED', session('a', 'one'));
    expect((await it.next()).value!.type).toBe('ADDED');
    allow = false;
    c.emit('DELETED', session('a', 'one'));
    await expect(it.next()).rejects.toMatchObject({ extensions: { code: 'FORBIDDEN' } });
    expect(hub.subscribers).toBe(0);
  });

  it('forgets a subscriber that returns', async () => {
    const c = cache([]);
    const hub = new SessionEventHub(c.informer);
    const it = hub.subscribe({ namespace: 'a', authorize: allowed });
    expect(hub.subscribers).toBe(1);
    await it.return!();
    expect(hub.subscribers).toBe(0);
    expect((await it.next()).done).toBe(true);
  });

  describe('direct delivery', () => {
    const label = (e: { type: string; session: VDISession }) => `${e.type} ${e.session.metadata.name} ${e.session.status?.phase}`;
    /** Lets the consumer's pending next() park (it is called, finds nothing queued, and waits). */
    const settle = () => new Promise((r) => setImmediate(r));

    it('hands an event to the sink at once while the consumer waits with nothing queued, and never to the iterator too', async () => {
      const c = cache([session('a', 'one')]);
      const hub = new SessionEventHub(c.informer);
      const direct: string[] = [];
      const it = hub.subscribe({ namespace: 'a', authorize: allowed, direct: (e) => (direct.push(label(e)), true) });
      // The consumer asks: the snapshot goes to the sink, and the consumer waits for more.
      const pending = it.next();
      await settle();
      expect(direct).toEqual(['ADDED one Pending']);
      c.emit('MODIFIED', session('a', 'one', 'Starting'));
      c.emit('MODIFIED', session('a', 'one', 'Running'));
      expect(direct).toEqual(['ADDED one Pending', 'MODIFIED one Starting', 'MODIFIED one Running']);
      c.emit('DELETED', session('a', 'one', 'Running'));
      expect(direct).toHaveLength(4);
      await it.return!();
      expect((await pending).done).toBe(true);
    });

    it('keeps the order: while anything is queued or the consumer is busy, events queue behind it', async () => {
      const c = cache([session('a', 'one')]);
      const hub = new SessionEventHub(c.informer);
      const direct: string[] = [];
      let take = true;
      const it = hub.subscribe({ namespace: 'a', authorize: allowed, direct: (e) => take && (direct.push(label(e)), true) });
      // The consumer has not asked yet: nothing may overtake the snapshot.
      c.emit('MODIFIED', session('a', 'one', 'Starting'));
      expect(direct).toEqual([]);
      // It asks: what is queued goes to the sink in order, and it waits for more.
      let pending = it.next();
      await settle();
      expect(direct).toEqual(['ADDED one Pending', 'MODIFIED one Starting']);
      // The sink declines one: the consumer takes it, and is busy sending it until it calls next() again.
      take = false;
      c.emit('MODIFIED', session('a', 'one', 'Running'));
      expect(label((await pending).value!)).toBe('MODIFIED one Running');
      take = true;
      c.emit('DELETED', session('a', 'one', 'Running'));
      expect(direct).toHaveLength(2);
      pending = it.next();
      await settle();
      expect(direct).toEqual(['ADDED one Pending', 'MODIFIED one Starting', 'DELETED one Running']);
      await it.return!();
      await pending;
    });

    it('queues an event the sink declines, and the iterator delivers it', async () => {
      const c = cache([]);
      const hub = new SessionEventHub(c.informer);
      let calls = 0;
      const it = hub.subscribe({ namespace: 'a', authorize: allowed, direct: () => (calls++, false) });
      const pending = it.next();
      await settle();
      c.emit('ADDED', session('a', 'one'));
      expect(calls).toBe(1);
      expect(label((await pending).value!)).toBe('ADDED one Pending');
    });

    it('takes the queue when the authorisation is due again, so a revoked subscriber gets nothing', async () => {
      const c = cache([]);
      let allow = true;
      const hub = new SessionEventHub(c.informer, { reauthorizeMs: 0 });
      let calls = 0;
      const it = hub.subscribe({ namespace: 'a', authorize: async () => allow, direct: () => (calls++, true) });
      const pending = it.next();
      await settle();
      allow = false;
      c.emit('DELETED', session('a', 'one'));
      expect(calls).toBe(0);
      await expect(pending).rejects.toMatchObject({ extensions: { code: 'FORBIDDEN' } });
      expect(hub.subscribers).toBe(0);
    });

    /**
     * A subscriber of namespace `a` parked waiting for events, on a hub whose decisions live 200 ms, with a
     * fake clock; counts its reviews and direct deliveries.
     */
    async function parked(allow: () => boolean = () => true) {
      vi.useFakeTimers({ toFake: ['Date'] });
      onTestFinished(() => void vi.useRealTimers());
      const c = cache([]);
      const hub = new SessionEventHub(c.informer, { reauthorizeMs: 200 });
      const counts = { checks: 0, direct: 0 };
      const it = hub.subscribe({ namespace: 'a', authorize: async () => (counts.checks++, allow()), direct: () => (counts.direct++, true) });
      const pending = it.next();
      await settle();
      // Not counted: the check every subscription starts with.
      counts.checks = 0;
      return { c, hub, counts, pending, end: async () => (await it.return!(), await pending) };
    }

    it('renews a decision past half its life as it delivers, so a busy subscriber keeps the direct path', async () => {
      const { c, counts, end } = await parked();
      for (let i = 0; i < 6; i++) {
        vi.advanceTimersByTime(80);
        c.emit('MODIFIED', session('a', 'one', `p${i}`));
        await settle();
      }
      // 480 ms of events every 80 ms against a 200 ms decision: all direct, renewed on every second event.
      expect(counts).toEqual({ direct: 6, checks: 3 });
      await end();
    });

    it('after a quiet spell, re-checks the expired decision and still hands the event to the sink', async () => {
      const { c, counts, pending, end } = await parked();
      vi.advanceTimersByTime(1_000);
      c.emit('MODIFIED', session('a', 'one', 'Running'));
      await settle();
      expect(counts).toEqual({ direct: 1, checks: 1 });
      // The consumer was never given the event itself: it is still waiting.
      expect(await Promise.race([pending.then(() => 'returned'), settle().then(() => 'waiting')])).toBe('waiting');
      await end();
    });

    /**
     * Subscribers of namespace `a` parked waiting for events, one per authorisation key given, on a hub whose
     * decisions live 200 ms, with a fake clock; records which key each review was for and what each sink got.
     */
    async function parkedMany(keys: string[], answer: () => Promise<boolean>) {
      vi.useFakeTimers({ toFake: ['Date'] });
      onTestFinished(() => void vi.useRealTimers());
      const c = cache([]);
      const hub = new SessionEventHub(c.informer, { reauthorizeMs: 200 });
      const checks: string[] = [];
      const direct: string[][] = keys.map(() => []);
      // The check every subscription starts with says yes and is not counted; `answer` gives the later ones.
      let started = false;
      const authorize = (key: string) => (started ? (checks.push(key), answer()) : Promise.resolve(true));
      const its = keys.map((key, i) =>
        hub.subscribe({ namespace: 'a', authorizationKey: key, authorize: () => authorize(key), direct: (e) => (direct[i]!.push(label(e)), true) }),
      );
      const pending = its.map((it) => it.next());
      await settle();
      started = true;
      return { c, hub, checks, direct, pending };
    }
    const deferred = () => {
      let resolve!: (allowed: boolean) => void;
      const promise = new Promise<boolean>((r) => (resolve = r));
      return { promise, resolve };
    };
    const stillWaiting = async (pending: Promise<unknown>[]) =>
      (await Promise.all(pending.map((p) => Promise.race([p.then(() => 'returned'), settle().then(() => 'waiting')])))).every((s) => s === 'waiting');

    it('after a quiet spell, one review answers for every subscriber that shares the decision', async () => {
      const { c, checks, direct, pending } = await parkedMany(['alice', 'alice', 'alice', 'bob'], async () => true);
      vi.advanceTimersByTime(1_000);
      c.emit('MODIFIED', session('a', 'one', 'Running'));
      await settle();
      expect(checks.sort()).toEqual(['alice', 'bob']);
      expect(direct).toEqual([['MODIFIED one Running'], ['MODIFIED one Running'], ['MODIFIED one Running'], ['MODIFIED one Running']]);
      expect(await stillWaiting(pending)).toBe(true);
    });

    it('holds the events that come while the review runs, and hands them over in order after it', async () => {
      const answer = deferred();
      const { c, checks, direct, pending } = await parkedMany(['k', 'k'], () => answer.promise);
      vi.advanceTimersByTime(1_000);
      c.emit('MODIFIED', session('a', 'one', 'Starting'));
      c.emit('MODIFIED', session('a', 'one', 'Running'));
      await settle();
      expect(direct).toEqual([[], []]);
      answer.resolve(true);
      await settle();
      expect(checks).toEqual(['k']);
      expect(direct).toEqual([
        ['MODIFIED one Starting', 'MODIFIED one Running'],
        ['MODIFIED one Starting', 'MODIFIED one Running'],
      ]);
      expect(await stillWaiting(pending)).toBe(true);
    });

    it('ends every subscriber that shares a refused decision, with nothing delivered', async () => {
      const answer = deferred();
      const { c, hub, direct, pending } = await parkedMany(['k', 'k'], () => answer.promise);
      vi.advanceTimersByTime(1_000);
      c.emit('MODIFIED', session('a', 'one', 'Running'));
      answer.resolve(false);
      for (const p of pending) await expect(p).rejects.toMatchObject({ extensions: { code: 'FORBIDDEN' } });
      expect(direct).toEqual([[], []]);
      expect(hub.subscribers).toBe(0);
    });

    it('takes a sink that throws for one that declines: that event goes through the iterator, the others still get theirs', async () => {
      vi.useFakeTimers({ toFake: ['Date'] });
      onTestFinished(() => void vi.useRealTimers());
      const c = cache([]);
      const hub = new SessionEventHub(c.informer, { reauthorizeMs: 200 });
      const got: string[] = [];
      const broken = hub.subscribe({
        namespace: 'a',
        authorizationKey: 'k',
        authorize: allowed,
        direct: () => {
          throw new Error('socket gone');
        },
      });
      const fine = hub.subscribe({ namespace: 'a', authorizationKey: 'k', authorize: allowed, direct: (e) => (got.push(label(e)), true) });
      const [brokenNext, fineNext] = [broken.next(), fine.next()];
      await settle();
      vi.advanceTimersByTime(1_000);
      c.emit('MODIFIED', session('a', 'one', 'Running'));
      expect(label((await brokenNext).value!)).toBe('MODIFIED one Running');
      await settle();
      expect(got).toEqual(['MODIFIED one Running']);
      await fine.return!();
      await fineNext;
    });

    it('renews a decision shared by several subscribers with one review', async () => {
      const { c, checks, direct } = await parkedMany(['k', 'k', 'k'], async () => true);
      vi.advanceTimersByTime(150);
      c.emit('MODIFIED', session('a', 'one', 'Running'));
      await settle();
      expect(direct.map((d) => d.length)).toEqual([1, 1, 1]);
      expect(checks).toEqual(['k']);
    });

    it('reviews nobody while nothing happens', async () => {
      const { counts, end } = await parked();
      vi.advanceTimersByTime(10_000);
      await settle();
      expect(counts.checks).toBe(0);
      await end();
    });

    it('ends a subscriber whose renewal is refused, before any further event', async () => {
      let allow = true;
      const { c, hub, counts, pending } = await parked(() => allow);
      allow = false;
      vi.advanceTimersByTime(150);
      // Still within the decision's life: delivered, and the renewal it starts is refused.
      c.emit('ADDED', session('a', 'one'));
      expect(counts.direct).toBe(1);
      await expect(pending).rejects.toMatchObject({ extensions: { code: 'FORBIDDEN' } });
      c.emit('MODIFIED', session('a', 'one', 'Running'));
      expect(counts.direct).toBe(1);
      expect(hub.subscribers).toBe(0);
    });
  });
});
