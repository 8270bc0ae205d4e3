// Kubernetes Events for session transitions, written when the reconciler has a quiet moment. An Event is a record
// of what happened (it carries the time of its transition); the status is what clients act on, and it is
// written at once. Under a storm of new sessions every write slows all the others down, on the apiserver and
// here, so an Event waits while reconciles are running or queued, for at most maxDelayMs, then goes out
// anyway. On a quiet queue (the usual case) it goes out at once. Best effort, like client-go's recorder: a full
// buffer drops the newest Event, and a failed write is not retried.

export interface EventRecorderOptions<E> {
  /** Writes one Event; failures are the caller's to log (a rejection is ignored here). */
  write: (event: E) => Promise<unknown>;
  /** Resolves when no reconcile is running or waiting. */
  idle: () => Promise<void>;
  /** The longest an Event waits for a quiet moment. */
  maxDelayMs?: number;
  /** Events held at most; more are dropped (and counted through onDropped). */
  maxPending?: number;
  /** Event writes in flight at most. */
  concurrency?: number;
  onDropped?: () => void;
}

export class EventRecorder<E> {
  private readonly o: Required<Omit<EventRecorderOptions<E>, 'onDropped'>> & Pick<EventRecorderOptions<E>, 'onDropped'>;
  private readonly pending: { event: E; at: number }[] = [];
  private draining = false;
  private drained: Promise<void> = Promise.resolve();
  private wake: (() => void) | undefined;
  private stopped = false;

  constructor(options: EventRecorderOptions<E>) {
    this.o = { maxDelayMs: 10_000, maxPending: 1_000, concurrency: 4, ...options };
  }

  /** Events waiting to be written. */
  get length(): number {
    return this.pending.length;
  }

  record(event: E): void {
    if (this.stopped) return;
    if (this.pending.length >= this.o.maxPending) {
      this.o.onDropped?.();
      return;
    }
    this.pending.push({ event, at: Date.now() });
    if (!this.draining) this.drained = this.drain();
  }

  /** Records nothing more and writes what is held now, without waiting for a quiet moment. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    await this.drained;
  }

  private async drain(): Promise<void> {
    this.draining = true;
    try {
      while (this.pending.length) {
        const waitMs = this.pending[0]!.at + this.o.maxDelayMs - Date.now();
        if (waitMs > 0 && !this.stopped) await this.quietOr(waitMs);
        const batch = this.pending.splice(0, this.o.concurrency);
        await Promise.all(batch.map(({ event }) => this.o.write(event).catch(() => undefined)));
      }
    } finally {
      this.draining = false;
    }
  }

  /** Resolves when the reconciler is quiet, after `ms`, or on stop(), whichever comes first. */
  private quietOr(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      // Called up to three times (timer, idle, stop); only the first counts, and a later call must not take
      // away the wake of a later wait (idle() may resolve long after its timer fired).
      let settled = false;
      const done = () => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (this.wake === done) this.wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wake = done;
      void this.o.idle().then(done);
    });
  }
}
