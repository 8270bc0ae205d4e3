// Leader election on a coordination.k8s.io/v1 Lease, after client-go's leaderelection package: a candidate
// takes the lease when it is free or its holder has not renewed it for leaseDuration (measured on our own
// clock from when we last saw the record change, so clock skew between replicas does not matter), renews it
// every retryPeriod, and steps down when it could not renew within renewDeadline.
import { KubeError, isNotFound, type KubeClient } from '../src/kube/client.ts';

export interface LeaderElectionOptions {
  namespace: string;
  name: string;
  identity: string;
  leaseDurationMs?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
  onStartedLeading: () => void;
  onStoppedLeading: () => void;
  log?: (msg: string, fields?: Record<string, unknown>) => void;
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

const microTime = (d = new Date()) => d.toISOString().replace(/Z$/, '000Z');

export class LeaderElector {
  private readonly client: KubeClient;
  private readonly o: Required<Omit<LeaderElectionOptions, 'log'>> & Pick<LeaderElectionOptions, 'log'>;
  private leading = false;
  private stopped = false;
  private observed: { record: string; at: number } | undefined;
  private lastRenew = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(client: KubeClient, options: LeaderElectionOptions) {
    this.client = client;
    this.o = { leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000, ...options };
  }

  get isLeader(): boolean {
    return this.leading;
  }

  private get path(): string {
    return `/apis/coordination.k8s.io/v1/namespaces/${this.o.namespace}/leases/${this.o.name}`;
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
    this.setLeading(false);
    try {
      const lease = await this.client.get<Lease>(this.path);
      if (lease.spec.holderIdentity === this.o.identity) {
        await this.client.request({
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
    try {
      const ok = await this.tryAcquireOrRenew();
      if (ok) this.lastRenew = Date.now();
      if (ok && !this.leading) this.setLeading(true);
    } catch (err) {
      this.o.log?.('lease update failed', { error: err instanceof Error ? err.message : String(err) });
    }
    if (this.leading && Date.now() - this.lastRenew > this.o.renewDeadlineMs) {
      this.o.log?.('lost the lease: could not renew within the deadline');
      this.setLeading(false);
    }
    if (!this.stopped) this.timer = setTimeout(() => void this.tick(), this.o.retryPeriodMs * (this.leading ? 1 : 1 + Math.random() * 0.2));
  }

  private setLeading(leading: boolean): void {
    if (this.leading === leading) return;
    this.leading = leading;
    this.o.log?.(leading ? 'became leader' : 'stopped leading', { identity: this.o.identity, lease: `${this.o.namespace}/${this.o.name}` });
    if (leading) this.o.onStartedLeading();
    else this.o.onStoppedLeading();
  }

  private async tryAcquireOrRenew(): Promise<boolean> {
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
      lease = await this.client.get<Lease>(this.path);
    } catch (err) {
      if (!isNotFound(err)) throw err;
      await this.client.create(`/apis/coordination.k8s.io/v1/namespaces/${this.o.namespace}/leases`, {
        apiVersion: 'coordination.k8s.io/v1',
        kind: 'Lease',
        metadata: { name: this.o.name, namespace: this.o.namespace },
        spec: spec(0),
      });
      this.observed = undefined;
      return true;
    }
    const record = JSON.stringify(lease.spec);
    if (this.observed?.record !== record) this.observed = { record, at: Date.now() };
    const holder = lease.spec.holderIdentity;
    const duration = (lease.spec.leaseDurationSeconds ?? 15) * 1000;
    const heldByOther = holder && holder !== this.o.identity;
    if (heldByOther && Date.now() - this.observed.at < duration) return false;
    const transitions = (lease.spec.leaseTransitions ?? 0) + (holder === this.o.identity ? 0 : 1);
    try {
      // resourceVersion in the body makes this a compare-and-swap: two candidates cannot both win.
      await this.client.request({
        method: 'PUT',
        path: this.path,
        body: { ...lease, spec: spec(transitions, holder === this.o.identity ? lease.spec.acquireTime : undefined) },
      });
    } catch (err) {
      if (err instanceof KubeError && err.status === 409) return false;
      throw err;
    }
    return true;
  }
}
