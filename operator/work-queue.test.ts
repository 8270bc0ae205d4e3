import { describe, expect, it } from 'vitest';
import { WorkQueue, retryDelayMs } from './work-queue.ts';

const tick = (ms = 0) => new Promise((r) => setTimeout(r, ms));

describe('WorkQueue', () => {
  it('never runs two reconciles of the same key at once, and runs once more for an add during a run', async () => {
    let inFlight = 0;
    let maxInFlight = 0;
    let runs = 0;
    let release!: () => void;
    const q = new WorkQueue(async () => {
      runs++;
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      if (runs === 1) await new Promise<void>((r) => (release = r));
      inFlight--;
    });
    q.add('ns/a');
    await tick();
    q.add('ns/a');
    q.add('ns/a');
    await tick();
    expect(maxInFlight).toBe(1);
    release();
    await q.idle();
    expect(runs).toBe(2);
    expect(maxInFlight).toBe(1);
  });

  it('deduplicates keys that are waiting', async () => {
    const seen: string[] = [];
    const q = new WorkQueue(async (k) => void seen.push(k), { concurrency: 1 });
    q.add('x');
    q.add('y');
    q.add('y');
    q.add('y');
    await q.idle();
    expect(seen).toEqual(['x', 'y']);
  });

  /** A one-at-a-time queue that records the keys it runs and holds its first run until release(). */
  function heldQueue() {
    const seen: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const q = new WorkQueue(
      async (k) => {
        seen.push(k);
        if (seen.length === 1) await gate;
      },
      { concurrency: 1 },
    );
    return { q, seen, release };
  }

  it('serves urgent keys first, moving a waiting key ahead when news about it arrives', async () => {
    const { q, seen, release } = heldQueue();
    q.add('busy');
    q.add('new-1');
    q.add('new-2');
    q.add('started', true);
    q.add('new-2', true);
    q.add('new-1');
    expect(q.length).toBe(3);
    release();
    await q.idle();
    expect(seen).toEqual(['busy', 'started', 'new-2', 'new-1']);
  });

  it('keeps the urgency of a key added while it runs', async () => {
    const { q, seen, release } = heldQueue();
    q.add('a');
    q.add('b');
    q.add('a', true);
    release();
    await q.idle();
    expect(seen).toEqual(['a', 'a', 'b']);
  });

  it('bounds concurrency', async () => {
    let inFlight = 0;
    let maxInFlight = 0;
    const q = new WorkQueue(
      async () => {
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        await tick(5);
        inFlight--;
      },
      { concurrency: 3 },
    );
    for (let i = 0; i < 20; i++) q.add(`k${i}`);
    await q.idle();
    expect(maxInFlight).toBe(3);
  });

  it('retries a failing key until it succeeds, reporting each attempt', async () => {
    const attempts: number[] = [];
    let runs = 0;
    const q = new WorkQueue(
      async () => {
        if (++runs < 4) throw new Error('boom');
      },
      { baseDelayMs: 5, onError: (_k, _e, attempt) => attempts.push(attempt) },
    );
    q.add('k');
    while (runs < 4) await tick(5);
    expect(attempts).toEqual([1, 2, 3]);
  });

  it('backs off exponentially up to the cap', () => {
    expect([1, 2, 3, 4, 10].map((a) => retryDelayMs(a, 200, 5_000))).toEqual([200, 400, 800, 1600, 5000]);
  });

  it('requeues after the delay a reconcile asks for', async () => {
    const times: number[] = [];
    const q = new WorkQueue(async () => {
      times.push(Date.now());
      return times.length === 1 ? { requeueAfterMs: 60 } : {};
    });
    q.add('k');
    while (times.length < 2) await tick(10);
    // A timer, not an immediate re-run: the second run cannot come before the asked delay.
    expect(times[1]! - times[0]!).toBeGreaterThanOrEqual(59);
  });

  it("a successful run's request replaces the delayed run an earlier one asked for", async () => {
    const runs: number[] = [];
    const q = new WorkQueue(async () => {
      runs.push(Date.now());
      return runs.length === 1 ? { requeueAfterMs: 40 } : {};
    });
    q.add('k');
    while (runs.length < 1) await tick(1);
    await tick(1);
    expect(q.dueAt('k')).toBeDefined();
    // News before the delay: the run it brings asks for nothing more, and the first run's wait is dropped.
    q.add('k');
    while (runs.length < 2) await tick(1);
    await tick(1);
    expect(q.dueAt('k')).toBeUndefined();
    await tick(80);
    expect(runs).toHaveLength(2);
    q.stop();
  });

  it('a failed run keeps the delayed run pending beside its retry', async () => {
    let runs = 0;
    const q = new WorkQueue(
      async () => {
        runs++;
        if (runs === 1) return { requeueAfterMs: 60_000 };
        throw new Error('boom');
      },
      { baseDelayMs: 120_000, maxDelayMs: 120_000 },
    );
    q.add('k');
    while (runs < 1) await tick(1);
    await tick(1);
    const due = q.dueAt('k')!;
    q.add('k');
    while (runs < 2) await tick(1);
    await tick(1);
    // The retry (in about two minutes) is later than the requested run, which stays pending.
    expect(q.dueAt('k')).toBe(due);
    q.stop();
  });

  it('tells when a delayed run is due, keeping the earliest, and forgets it once it ran', async () => {
    const runs: string[] = [];
    const q = new WorkQueue(async (key) => void runs.push(key));
    expect(q.dueAt('k')).toBeUndefined();
    const before = Date.now();
    q.addAfter('k', 60_000);
    q.addAfter('k', 30);
    q.addAfter('k', 90_000);
    const due = q.dueAt('k')!;
    expect(due).toBeGreaterThanOrEqual(before + 30);
    expect(due).toBeLessThan(before + 60_000);
    while (runs.length < 1) await tick(10);
    expect(q.dueAt('k')).toBeUndefined();
    q.stop();
  });

  it('stop() cancels the runs under way and resolves once they have returned; a cancelled run is neither reported nor retried', async () => {
    const events: string[] = [];
    const q = new WorkQueue(
      async (key, signal) => {
        events.push(`start ${key}`);
        await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
        await tick();
        events.push(`returned ${key}`);
        signal.throwIfAborted();
      },
      { baseDelayMs: 1, onError: (key) => events.push(`error ${key}`), onDone: (key) => events.push(`done ${key}`) },
    );
    q.add('a');
    q.add('b');
    await tick();
    await q.stop();
    expect(events).toEqual(['start a', 'start b', 'returned a', 'returned b']);
    q.add('c');
    await tick(20);
    expect(events).toHaveLength(4);
  });

  it('stops when the signal it was given aborts (the leadership term it works for ended)', async () => {
    const term = new AbortController();
    const seen: AbortSignal[] = [];
    let release!: () => void;
    const q = new WorkQueue(
      async (_key, signal) => {
        seen.push(signal);
        await new Promise<void>((resolve) => (release = resolve));
      },
      { signal: term.signal },
    );
    q.add('a');
    await tick();
    term.abort();
    expect(seen[0]!.aborted).toBe(true);
    q.add('b');
    release();
    await q.idle();
    expect(seen).toHaveLength(1);
  });
});
