// Leader election on a coordination.k8s.io/v1 Lease, after client-go's leaderelection package: a candidate
// takes the lease when it is free or its holder has not renewed it for leaseDuration (measured on our own
// clock from when we last saw the record change, so clock skew between replicas does not matter), renews it
// every retryPeriod, and steps down when it could not renew within renewDeadline.
//
// Each spell of leadership is a term with an AbortSignal, aborted the moment the term ends; whatever the
// leader writes goes out under that signal, so a replica that lost the lease stops writing at once instead of
// finishing the work it had begun. The term ends renewDeadline after the start of the last successful renewal
// even when no timer got to run (a paused process): confirm() checks the clock before each write. Another
// replica can take over no sooner than leaseDuration after that renewal, so the two never write together, as
// long as renewDeadline < leaseDuration; a write already on the wire when the term ends may still land.
//
// Neither the deadline nor the renewal loop may hang on a request that never answers (a partitioned link): the
// deadline timer checks again until Date.now() has passed the deadline (setTimeout counts on libuv's
// millisecond clock and may fire a millisecond before Date.now() gets there), and each attempt to acquire or
// renew is abandoned after renewDeadline, after which its outcome would not count anyway.
import { KubeError, isNotFound, type KubeClient } from '../src/kube/client.ts';
import { collectionPath, namedPath } from './kinds.ts';

export interface LeaderElectionOptions {
  namespace: string;
  name: string;
  identity: string;
  leaseDurationMs?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
  onStartedLeading: (term: LeaderTerm) => void;
  /** `lost`: the lease could not be renewed in time or was taken; `released`: stop() gave it up. */
  onStoppedLeading: (why: 'lost' | 'released') => void;
  log?: (msg: string, fields?: Record<string, unknown>) => void;
}

/** One spell of leadership. */
export interface LeaderTerm {
  /** Aborted when the term ends. */
  readonly signal: AbortSignal;
  /**
   * Throws unless the term still holds: it ends here and now when renewDeadline has passed since the last
   * renewal, even if the timer that would have noticed has not run yet.
   */
  confirm(): void;
}

interface Lease {
  apiVersion: 'coordination.k8s.io/v1';
  kind: 'Lease';
  metadata: { name: string; namespace: string; resourceVersion?: string };
  spec: {
    holderIdentity?: string;
    leaseDurationSeconds?: number;
    acquireTime?: string;
    renewTime?: string;
    leaseTransitions?: number;
  };
}

/** What a write made after the term ended fails with. */
export class LeadershipLostError extends Error {
  constructor(why: 'lost' | 'released') {
    super(why === 'lost' ? 'no longer the leader: the lease was lost' : 'no longer the leader: the lease was released');
    this.name = 'LeadershipLostError';
  }
}

const microTime = (d = new Date()) => d.toISOString().replace(/Z$/, '000Z');

export class LeaderElector {
  private readonly client: KubeClient;
  private readonly o: Required<Omit<LeaderElectionOptions, 'log'>> & Pick<LeaderElectionOptions, 'log'>;
  private leading = false;
  private stopped = false;
  private observed: { record: string; at: number } | undefined;
  /** When the last successful acquire or renewal was sent (the lease may count from no earlier). */
  private lastRenew = 0;
  private timer: NodeJS.Timeout | undefined;
  /** Ends the term renewDeadline after the last renewal, should the renewal loop be stuck on a request. */
  private deadline: NodeJS.Timeout | undefined;
  private term: AbortController | undefined;

  constructor(client: KubeClient, options: LeaderElectionOptions) {
    this.client = client;
    this.o = { leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000, ...options };
  }

  get isLeader(): boolean {
    return this.leading;
  }

  private get path(): string {
    return namedPath('Lease', this.o.namespace, this.o.name);
  }

  start(): void {
    this.stopped = false;
    void this.tick();
  }

  /** Stops campaigning; a leader releases the lease so another replica takes over at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    if (!this.leading) return;
    this.setLeading(false, 'released');
    // Releasing only spares the standby the wait for expiry, so it gets one retry period: an apiserver that is
    // going down with us (Ctrl-C on the local default) would otherwise hold the shutdown for its request timeout.
    const client = this.client.withSignal(AbortSignal.timeout(this.o.retryPeriodMs));
    try {
      const lease = await client.get<Lease>(this.path);
      if (lease.spec.holderIdentity === this.o.identity) {
        await client.request({
          method: 'PUT',
          path: this.path,
          body: { ...lease, spec: { ...lease.spec, holderIdentity: '', leaseDurationSeconds: 1, renewTime: microTime() } },
        });
      }
    } catch {
      // The lease will expire by itself.
    }
  }

  private async tick(): Promise<void> {
    if (this.stopped) return;
    const attempt = new AbortController();
    const bound = setTimeout(
      () => attempt.abort(new Error(`no answer within the renew deadline (${this.o.renewDeadlineMs} ms)`)),
      this.o.renewDeadlineMs,
    );
    try {
      const sent = Date.now();
      const outcome = await this.tryAcquireOrRenew(this.client.withSignal(attempt.signal));
      if (this.stopped) return;
      if (outcome === 'held' && Date.now() - sent < this.o.renewDeadlineMs) {
        this.lastRenew = sent;
        this.armDeadline();
        if (!this.leading) this.setLeading(true);
      } else if (outcome === 'taken' && this.leading) {
        this.lose('another replica holds it');
      }
    } catch (err) {
      this.o.log?.('lease update failed', { error: err instanceof Error ? err.message : String(err) });
    } finally {
      clearTimeout(bound);
    }
    this.checkDeadline();
    if (!this.stopped) this.timer = setTimeout(() => void this.tick(), this.o.retryPeriodMs * (this.leading ? 1 : 1 + Math.random() * 0.2));
  }

  private armDeadline(): void {
    clearTimeout(this.deadline);
    this.deadline = setTimeout(
      () => {
        this.checkDeadline();
        // Fired before Date.now() reached the deadline: nothing else may check it while a renewal hangs.
        if (this.leading) this.armDeadline();
      },
      Math.max(0, this.lastRenew + this.o.renewDeadlineMs - Date.now()),
    );
    this.deadline.unref();
  }

  private checkDeadline(): void {
    if (this.leading && Date.now() - this.lastRenew >= this.o.renewDeadlineMs) this.lose('could not renew within the deadline');
  }

  private lose(why: string): void {
    this.o.log?.(`lost the lease: ${why}`);
    this.setLeading(false, 'lost');
  }

  private setLeading(leading: boolean, why: 'lost' | 'released' = 'lost'): void {
    if (this.leading === leading) return;
    this.leading = leading;
    this.o.log?.(leading ? 'became leader' : 'stopped leading', { identity: this.o.identity, lease: `${this.o.namespace}/${this.o.name}` });
    if (leading) {
      const term = new AbortController();
      this.term = term;
      this.o.onStartedLeading({
        signal: term.signal,
        confirm: () => {
          if (this.term === term) this.checkDeadline();
          term.signal.throwIfAborted();
        },
      });
    } else {
      clearTimeout(this.deadline);
      this.term?.abort(new LeadershipLostError(why));
      this.term = undefined;
      this.o.onStoppedLeading(why);
    }
  }

  /** `held`: the lease is ours now; `taken`: another replica holds it; `conflict`: it changed under our update. */
  private async tryAcquireOrRenew(client: KubeClient): Promise<'held' | 'taken' | 'conflict'> {
    const now = new Date();
    const spec = (transitions: number, acquireTime?: string) => ({
      holderIdentity: this.o.identity,
      leaseDurationSeconds: Math.ceil(this.o.leaseDurationMs / 1000),
      acquireTime: acquireTime ?? microTime(now),
      renewTime: microTime(now),
      leaseTransitions: transitions,
    });
    let lease: Lease;
    try {
      lease = await client.get<Lease>(this.path);
    } catch (err) {
      if (!isNotFound(err)) throw err;
      await client.create(collectionPath('Lease', this.o.namespace), {
        apiVersion: 'coordination.k8s.io/v1',
        kind: 'Lease',
        metadata: { name: this.o.name, namespace: this.o.namespace },
        spec: spec(0),
      });
      this.observed = undefined;
      return 'held';
    }
    const record = JSON.stringify(lease.spec);
    if (this.observed?.record !== record) this.observed = { record, at: Date.now() };
    const holder = lease.spec.holderIdentity;
    const duration = (lease.spec.leaseDurationSeconds ?? 15) * 1000;
    const heldByOther = holder && holder !== this.o.identity;
    if (heldByOther && Date.now() - this.observed.at < duration) return 'taken';
    const transitions = (lease.spec.leaseTransitions ?? 0) + (holder === this.o.identity ? 0 : 1);
    try {
      // resourceVersion in the body makes this a compare-and-swap: two candidates cannot both win.
      await client.request({
        method: 'PUT',
        path: this.path,
        body: { ...lease, spec: spec(transitions, holder === this.o.identity ? lease.spec.acquireTime : undefined) },
      });
    } catch (err) {
      if (err instanceof KubeError && err.status === 409) return 'conflict';
      throw err;
    }
    return 'held';
  }
}
