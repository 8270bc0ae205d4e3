import { describe, expect, it } from 'vitest';
import { EventRecorder } from './events.ts';

const tick = (ms = 0) => new Promise((r) => setTimeout(r, ms));

/** A stand-in for the work queue's idle(): busy until quiet() is called. */
function reconciler(busy: boolean) {
  const waiters: (() => void)[] = [];
  return {
    idle: () => (busy ? new Promise<void>((r) => waiters.push(r)) : Promise.resolve()),
    quiet() {
      busy = false;
      for (const r of waiters.splice(0)) r();
    },
  };
}

describe('EventRecorder', () => {
  it('writes at once when no reconcile is running or waiting', async () => {
    const written: object[] = [];
    const events = new EventRecorder<object>({ write: async (e) => void written.push(e), idle: reconciler(false).idle });
    events.record({ n: 1 });
    await tick();
    expect(written).toEqual([{ n: 1 }]);
  });

  it('holds Events while reconciles are busy and writes them in order once the queue is quiet', async () => {
    const written: object[] = [];
    const r = reconciler(true);
    const events = new EventRecorder<object>({ write: async (e) => void written.push(e), idle: r.idle, concurrency: 2 });
    for (let n = 1; n <= 5; n++) events.record({ n });
    await tick(20);
    expect(written).toEqual([]);
    expect(events.length).toBe(5);
    r.quiet();
    await tick(20);
    expect(written).toEqual([1, 2, 3, 4, 5].map((n) => ({ n })));
    expect(events.length).toBe(0);
  });

  it('writes an Event after maxDelayMs even if the reconciler never goes quiet', async () => {
    const written: object[] = [];
    const events = new EventRecorder<object>({ write: async (e) => void written.push(e), idle: reconciler(true).idle, maxDelayMs: 60 });
    events.record({ n: 1 });
    await tick(20);
    expect(written).toEqual([]);
    await tick(100);
    expect(written).toEqual([{ n: 1 }]);
  });

  it('keeps at most `concurrency` writes in flight', async () => {
    let inFlight = 0;
    let most = 0;
    const events = new EventRecorder<object>({
      write: async () => {
        most = Math.max(most, ++inFlight);
        await tick(5);
        inFlight--;
      },
      idle: reconciler(false).idle,
      concurrency: 3,
    });
    for (let n = 0; n < 10; n++) events.record({ n });
    await tick(100);
    expect(events.length).toBe(0);
    expect(most).toBe(3);
  });

  it('drops the newest Events beyond maxPending and says so', async () => {
    let dropped = 0;
    const written: object[] = [];
    const r = reconciler(true);
    const events = new EventRecorder<object>({ write: async (e) => void written.push(e), idle: r.idle, maxPending: 2, onDropped: () => dropped++ });
    for (let n = 1; n <= 4; n++) events.record({ n });
    expect(dropped).toBe(2);
    r.quiet();
    await tick(20);
    expect(written).toEqual([{ n: 1 }, { n: 2 }]);
  });

  it('goes on after a failed write', async () => {
    const written: object[] = [];
    const events = new EventRecorder<object>({
      write: async (e) => {
        if ((e as { n: number }).n === 1) throw new Error('apiserver said no');
        written.push(e);
      },
      idle: reconciler(false).idle,
      concurrency: 1,
    });
    events.record({ n: 1 });
    events.record({ n: 2 });
    await tick(20);
    expect(written).toEqual([{ n: 2 }]);
  });

  it('on stop writes at once, also when an earlier wait for quiet ends late', async () => {
    const written: object[] = [];
    const idles: (() => void)[] = [];
    const events = new EventRecorder<object>({
      write: async (e) => void written.push(e),
      idle: () => new Promise<void>((r) => idles.push(r)),
      maxDelayMs: 40,
    });
    events.record({ n: 1 });
    await tick(80); // written after maxDelayMs; its wait for quiet is still pending
    expect(written).toEqual([{ n: 1 }]);
    events.record({ n: 2 }); // a second wait
    await tick();
    idles[0]!(); // the first wait's quiet arrives late
    await tick();
    void events.stop();
    await tick();
    expect(written).toEqual([{ n: 1 }, { n: 2 }]);
  });

  it('on stop writes what it holds without waiting for quiet, and records nothing after', async () => {
    const written: object[] = [];
    const events = new EventRecorder<object>({ write: async (e) => void written.push(e), idle: reconciler(true).idle });
    events.record({ n: 1 });
    events.record({ n: 2 });
    await tick(20);
    expect(written).toEqual([]);
    await events.stop();
    expect(written).toEqual([{ n: 1 }, { n: 2 }]);
    events.record({ n: 3 });
    await tick(20);
    expect(written).toEqual([{ n: 1 }, { n: 2 }]);
  });
});
