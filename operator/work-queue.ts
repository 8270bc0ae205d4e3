// A work queue in the manner of controller-runtime's: one in-flight item per key, keys deduplicated while
// waiting, bounded concurrency, exponential back-off on failure, and delayed re-queues (for expiry times), each
// successful run's replacing the one before.
// Keys added as urgent (news about work already under way, such as a desktop pod that became ready) are
// served before the others, so in a storm of new sessions the first ones finish first instead of everyone
// waiting for the whole storm's first pass. Each run gets the queue's AbortSignal: stop() (or the signal given
// to the queue, such as a leadership term's) cancels the runs under way, and resolves once they have returned.

export interface ReconcileResult {
  /** Reconcile this key again after so many milliseconds (e.g. at the session's expiry). */
  requeueAfterMs?: number;
}

export interface WorkQueueOptions {
  concurrency?: number;
  baseDelayMs?: number;
  maxDelayMs?: number;
  onError?: (key: string, err: unknown, attempt: number) => void;
  onDone?: (key: string, ms: number, ok: boolean) => void;
  /** Aborting it stops the queue as stop() does (for example: the leadership term the queue works for ended). */
  signal?: AbortSignal;
}

export type Worker = (key: string, signal: AbortSignal) => Promise<ReconcileResult | void>;

/** Exponential back-off: base, 2×base, 4×base … capped at max (jitter is added by the caller). */
export function retryDelayMs(attempt: number, baseMs: number, maxMs: number): number {
  return Math.min(baseMs * 2 ** (attempt - 1), maxMs);
}

export class WorkQueue {
  private readonly worker: Worker;
  private readonly opts: Required<Omit<WorkQueueOptions, 'onError' | 'onDone' | 'signal'>> & Pick<WorkQueueOptions, 'onError' | 'onDone'>;
  private readonly cancel = new AbortController();
  /** Given to every run: aborted by stop() or by the signal of the options. */
  readonly signal: AbortSignal;
  private readonly queue: string[] = [];
  private readonly urgent: string[] = [];
  private readonly queued = new Set<string>();
  private readonly processing = new Set<string>();
  /** Keys added again while being processed: run once more when the current run ends. */
  private readonly dirty = new Map<string, boolean>();
  private readonly failures = new Map<string, number>();
  private readonly timers = new Map<string, { at: number; timer: NodeJS.Timeout }>();
  private active = 0;
  private stopped = false;
  private idleWaiters: (() => void)[] = [];

  constructor(worker: Worker, options: WorkQueueOptions = {}) {
    this.worker = worker;
    this.signal = options.signal ? AbortSignal.any([options.signal, this.cancel.signal]) : this.cancel.signal;
    this.signal.addEventListener('abort', () => void this.stop(), { once: true });
    this.opts = {
      concurrency: options.concurrency ?? 8,
      baseDelayMs: options.baseDelayMs ?? 200,
      maxDelayMs: options.maxDelayMs ?? 60_000,
      onError: options.onError,
      onDone: options.onDone,
    };
  }

  get length(): number {
    return this.queue.length + this.urgent.length;
  }

  add(key: string, urgent = false): void {
    if (this.stopped) return;
    if (this.processing.has(key)) {
      this.dirty.set(key, urgent || (this.dirty.get(key) ?? false));
      return;
    }
    if (this.queued.has(key)) {
      if (!urgent) return;
      // Already waiting in the normal lane: move it ahead.
      const at = this.queue.indexOf(key);
      if (at === -1) return;
      this.queue.splice(at, 1);
      this.urgent.push(key);
      return;
    }
    this.queued.add(key);
    (urgent ? this.urgent : this.queue).push(key);
    this.pump();
  }

  /** Adds the key after a delay; an earlier pending delay for the same key wins. */
  addAfter(key: string, delayMs: number): void {
    if (this.stopped) return;
    if (delayMs <= 0) return this.add(key);
    const at = Date.now() + delayMs;
    const existing = this.timers.get(key);
    if (existing && existing.at <= at) return;
    if (existing) clearTimeout(existing.timer);
    // setTimeout overflows above 2^31-1 ms (about 24.8 days): re-arm in steps.
    const step = Math.min(delayMs, 2 ** 31 - 1);
    const timer = setTimeout(() => {
      this.timers.delete(key);
      if (Date.now() >= at) this.add(key);
      else this.addAfter(key, at - Date.now());
    }, step);
    timer.unref();
    this.timers.set(key, { at, timer });
  }

  private cancelDelayed(key: string): void {
    const pending = this.timers.get(key);
    if (!pending) return;
    clearTimeout(pending.timer);
    this.timers.delete(key);
  }

  /** When the key's pending delayed run (addAfter) is due, in ms since the epoch; undefined if none. */
  dueAt(key: string): number | undefined {
    return this.timers.get(key)?.at;
  }

  /** Takes no more keys, cancels the runs under way, and resolves when they have returned. */
  stop(): Promise<void> {
    this.stopped = true;
    this.cancel.abort(new Error('the work queue stopped'));
    for (const { timer } of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    this.queue.length = 0;
    this.urgent.length = 0;
    this.queued.clear();
    return this.idle();
  }

  /** Resolves when nothing is queued or running (used by tests and benchmarks). */
  async idle(): Promise<void> {
    if (this.active === 0 && this.length === 0) return;
    await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }

  private pump(): void {
    while (this.active < this.opts.concurrency && this.length) {
      const key = (this.urgent.length ? this.urgent : this.queue).shift()!;
      this.queued.delete(key);
      this.processing.add(key);
      this.active++;
      void this.run(key);
    }
    if (this.active === 0 && this.length === 0) for (const resolve of this.idleWaiters.splice(0)) resolve();
  }

  private async run(key: string): Promise<void> {
    const started = performance.now();
    try {
      const result = await this.worker(key, this.signal);
      this.failures.delete(key);
      this.opts.onDone?.(key, performance.now() - started, true);
      // The run saw the world as it is now: what it asks for replaces a delayed run an earlier one asked for (a
      // wait for news that has come since would only bring a run with nothing to do). Timers are only ever set
      // by runs: their results, and the back-off after a failure.
      this.cancelDelayed(key);
      if (result?.requeueAfterMs !== undefined) this.addAfter(key, result.requeueAfterMs);
    } catch (err) {
      // A cancelled run did not fail: nobody is left to retry it.
      if (this.signal.aborted) return;
      const attempt = (this.failures.get(key) ?? 0) + 1;
      this.failures.set(key, attempt);
      this.opts.onError?.(key, err, attempt);
      this.opts.onDone?.(key, performance.now() - started, false);
      this.addAfter(key, retryDelayMs(attempt, this.opts.baseDelayMs, this.opts.maxDelayMs) * (0.8 + Math.random() * 0.4));
    } finally {
      this.processing.delete(key);
      this.active--;
      const again = this.dirty.get(key);
      if (again !== undefined) {
        this.dirty.delete(key);
        this.add(key, again);
      }
      this.pump();
    }
  }
}
