// Subscriptions fed by the one shared VDISession informer: a client subscribing never opens a watch of its
// own. Subscribers are indexed by namespace so an event costs only its audience; every event (DELETED
// included) is delivered only while the subscriber is still authorised to see that namespace; and a
// subscriber that cannot keep up is ended with an error instead of losing events silently.
//
// Fan-out to thousands of subscribers: a subscriber may come with a direct sink (the WebSocket path gives one
// that writes the shared, already-serialised result to the subscriber's socket). While its consumer is parked
// waiting (everything earlier has been sent), nothing is queued and its authorisation is fresh, an event goes
// to the sink synchronously, in the same loop over the audience, instead of through a chain of promises per
// subscriber. A waiting subscriber whose decision has expired (the first event after a quiet spell) holds the
// event while the hub asks once for every subscriber that shares the decision (same identity, same question),
// then hands it to the sink. Anything else (events still queued, a sink that declines) takes the queue, so the
// order of events and every check are the same on all paths; the waiting consumer's iterator then hands the
// queued events, in order and re-checked, to the same sink.
import type { Informer, InformerEventType } from '../../operator/informer.ts';
import type { VDISession } from '../../operator/v1alpha1.ts';
import type { SessionEventModel } from '../sessions/models.ts';
import { ApiError } from '../errors.ts';

export interface SubscriptionScope {
  /** Only sessions in this namespace (undefined: every namespace). */
  namespace?: string;
  /** Only the session with this name. */
  name?: string;
  /**
   * Asked when the subscription starts (nothing, the snapshot neither, is delivered before it says yes) and
   * again whenever the last decision is older than reauthorizeMs.
   */
  authorize: () => Promise<boolean>;
  /**
   * What a refusal does: `end` the subscription with FORBIDDEN (the default), or `withhold` what it holds and
   * ask again at the next event. `withhold` is for the caller's own namespace, where an HTTP query answers with
   * no sessions until the namespace is provisioned.
   */
  whenRefused?: 'end' | 'withhold';
  /**
   * Subscribers with the same key get the same answer from authorize (one identity asking one question), so
   * one call answers for all of them. Without a key a subscriber is asked about on its own.
   */
  authorizationKey?: string;
  /**
   * Delivers an event at once, synchronously, if it can (true), or declines (false: the iterator gives it to
   * its consumer). Called only while the iterator's consumer is waiting and every earlier event has been
   * delivered, with the authorisation fresh. A sink that throws has declined.
   */
  direct?: (event: SessionEventModel) => boolean;
}

interface Subscriber {
  scope: SubscriptionScope;
  queue: SessionEventModel[];
  wake: (() => void) | undefined;
  failed: Error | undefined;
  done: boolean;
  /** When authorize last said yes; -Infinity until it has, so nothing (the snapshot neither) goes out before. */
  authorizedAt: number;
  /** A renewal of a still-valid decision is in flight. */
  refreshing: boolean;
  /** Its decision expired while it waited and is being re-checked: events are held in the queue for the answer. */
  checking: boolean;
}

/** Subscribers grouped by the decision they share (see SubscriptionScope.authorizationKey). */
type Groups = Map<unknown, Subscriber[]>;

function addTo(groups: Groups, sub: Subscriber): void {
  const key = sub.scope.authorizationKey ?? sub;
  const group = groups.get(key);
  if (group) group.push(sub);
  else groups.set(key, [sub]);
}

const revoked = () => new ApiError('FORBIDDEN', 'you may no longer see these sessions');

/** Hands an event to the subscriber's sink; a sink that throws has declined (the iterator delivers it). */
function offer(sub: Subscriber, event: SessionEventModel): boolean {
  try {
    return sub.scope.direct!(event);
  } catch {
    return false;
  }
}

export class SessionEventHub {
  private readonly byNamespace = new Map<string, Set<Subscriber>>();
  private readonly everywhere = new Set<Subscriber>();
  private readonly informer: Informer<VDISession>;
  private readonly maxQueue: number;
  private readonly reauthorizeMs: number;
  private count = 0;

  constructor(informer: Informer<VDISession>, opts: { maxQueue?: number; reauthorizeMs?: number } = {}) {
    this.informer = informer;
    this.maxQueue = opts.maxQueue ?? 1000;
    this.reauthorizeMs = opts.reauthorizeMs ?? 10_000;
    informer.on((type, session) => this.publish(type, session));
  }

  /**
   * Renews the decision of subscribers past half its life, when an event has just been delivered to them
   * directly: the next event finds them still fresh and takes the direct path too, instead of every subscriber
   * of a busy namespace re-checking on the same event. Idle subscribers cost no review. One call answers for a
   * group that shares the decision. A refusal ends the subscriptions at once, with nothing more delivered; an
   * error (the apiserver unreachable) leaves the re-check to a later event, as before.
   */
  private renew(group: Subscriber[]): void {
    const live: Subscriber[] = [];
    for (const sub of group) {
      if (sub.done || sub.failed) sub.refreshing = false;
      else live.push(sub);
    }
    if (live.length === 0) return;
    const asked = Date.now();
    live[0]!.scope.authorize().then(
      (allowed) => {
        for (const sub of live) {
          sub.refreshing = false;
          if (allowed) sub.authorizedAt = Math.max(sub.authorizedAt, asked);
          else this.refuse(sub);
        }
      },
      () => live.forEach((sub) => (sub.refreshing = false)),
    );
  }

  /**
   * Re-checks the expired decision of waiting subscribers that share it, with one call; their events wait in
   * their queues meanwhile. Allowed: what each holds goes to its sink, in order. Refused: nothing held is
   * delivered (see refuse). An error: each consumer is woken and its iterator re-checks on its own. Also the
   * first check of every subscriber, made as it subscribes.
   */
  private recheck(group: Subscriber[]): void {
    const asked = Date.now();
    const settle = (allowed: boolean | undefined) => {
      for (const sub of group) {
        sub.checking = false;
        if (sub.done) continue;
        if (allowed === false) {
          this.refuse(sub);
          continue;
        }
        if (allowed) {
          sub.authorizedAt = Math.max(sub.authorizedAt, asked);
          while (!sub.failed && sub.wake && sub.queue.length && offer(sub, sub.queue[0]!)) sub.queue.shift();
          if (!sub.failed && sub.queue.length === 0) continue;
        }
        this.wake(sub);
      }
    };
    group[0]!.scope.authorize().then(settle, () => settle(undefined));
  }

  private wake(sub: Subscriber): void {
    const wake = sub.wake;
    sub.wake = undefined;
    wake?.();
  }

  /** A refusal: nothing it holds is delivered; it ends, or (withhold) waits for a later check to allow. */
  private refuse(sub: Subscriber): void {
    if (sub.scope.whenRefused !== 'withhold') return this.end(sub, revoked());
    sub.queue.length = 0;
    sub.authorizedAt = -Infinity;
  }

  /** Ends a subscription with an error before anything else it holds is delivered. */
  private end(sub: Subscriber, error: Error): void {
    sub.queue.length = 0;
    sub.failed = error;
    this.wake(sub);
  }

  get subscribers(): number {
    return this.count;
  }

  private publish(type: InformerEventType, session: VDISession): void {
    if (type === 'RESYNC') return;
    const event: SessionEventModel = { type, session };
    const ns = session.metadata.namespace ?? '';
    // Subscribers authorised after `fresh` may take the direct path; before `halfLife`, they are renewed.
    const now = Date.now();
    const fresh = now - this.reauthorizeMs;
    const halfLife = now - this.reauthorizeMs / 2;
    const due: Groups = new Map();
    const expired: Groups = new Map();
    const local = this.byNamespace.get(ns);
    if (local) for (const sub of local) this.deliver(sub, event, fresh, halfLife, due, expired);
    for (const sub of this.everywhere) this.deliver(sub, event, fresh, halfLife, due, expired);
    for (const group of expired.values()) this.recheck(group);
    // After the sends: the renewals' work stays out of the loop that delivers the event.
    if (due.size) setImmediate(() => due.forEach((group) => this.renew(group)));
  }

  private deliver(sub: Subscriber, event: SessionEventModel, fresh: number, halfLife: number, due: Groups, expired: Groups): void {
    if (sub.done || sub.failed) return;
    if (sub.scope.name && sub.scope.name !== event.session.metadata.name) return;
    const waiting = sub.scope.direct !== undefined && sub.wake !== undefined && sub.queue.length === 0 && !sub.checking;
    if (waiting && sub.authorizedAt > fresh && offer(sub, event)) {
      if (sub.authorizedAt <= halfLife && !sub.refreshing) {
        sub.refreshing = true;
        addTo(due, sub);
      }
      return;
    }
    if (sub.queue.length >= this.maxQueue) {
      sub.failed = new ApiError('UNAVAILABLE', 'the subscription fell too far behind; subscribe again to get the current state');
    } else {
      sub.queue.push(event);
    }
    // Held for the re-check in flight, which delivers or wakes.
    if (sub.checking) return;
    if (waiting && sub.authorizedAt <= fresh && !sub.failed) {
      sub.checking = true;
      addTo(expired, sub);
      return;
    }
    this.wake(sub);
  }

  /** An async iterator of events, starting with the current state of every matching session as ADDED. */
  subscribe(scope: SubscriptionScope): AsyncIterableIterator<SessionEventModel> {
    // Not authorised until asked, whatever the scope (the caller's own namespace too): the check starts now, as
    // an HTTP query's would, and events (the snapshot first) wait for its answer.
    const sub: Subscriber = {
      scope,
      queue: [],
      wake: undefined,
      failed: undefined,
      done: false,
      authorizedAt: -Infinity,
      refreshing: false,
      checking: true,
    };
    const set = scope.namespace === undefined ? this.everywhere : (this.byNamespace.get(scope.namespace) ?? new Set<Subscriber>());
    if (scope.namespace !== undefined) this.byNamespace.set(scope.namespace, set);
    // Registered before the snapshot is taken: nothing that happens in between is missed.
    set.add(sub);
    this.count++;
    for (const session of this.informer.list()) {
      if (scope.namespace !== undefined && session.metadata.namespace !== scope.namespace) continue;
      if (scope.name && session.metadata.name !== scope.name) continue;
      sub.queue.push({ type: 'ADDED', session });
    }
    this.recheck([sub]);
    const remove = () => {
      if (sub.done) return;
      sub.done = true;
      set.delete(sub);
      if (scope.namespace !== undefined && set.size === 0) this.byNamespace.delete(scope.namespace);
      this.count--;
      sub.wake?.();
    };
    const reauthorizeMs = this.reauthorizeMs;
    const iterator: AsyncIterableIterator<SessionEventModel> = {
      async next(): Promise<IteratorResult<SessionEventModel>> {
        for (;;) {
          if (sub.done) return { value: undefined, done: true };
          // While a check is in flight (the first one included) its answer decides, and wakes this consumer.
          if (!sub.checking) {
            if (sub.queue.length) {
              if (Date.now() - sub.authorizedAt >= reauthorizeMs) {
                if (!(await scope.authorize())) {
                  if (scope.whenRefused === 'withhold') {
                    sub.queue.length = 0;
                    sub.authorizedAt = -Infinity;
                    continue;
                  }
                  remove();
                  throw revoked();
                }
                sub.authorizedAt = Date.now();
                if (sub.done) continue;
              }
              const event = sub.queue.shift()!;
              // The consumer is waiting and everything before this event has been delivered: the sink may take
              // it too (events that queued while the consumer was busy cost a socket write, not a result each).
              if (scope.direct && offer(sub, event)) continue;
              return { value: event, done: false };
            }
            if (sub.failed) {
              remove();
              throw sub.failed;
            }
          }
          await new Promise<void>((resolve) => (sub.wake = resolve));
        }
      },
      async return(): Promise<IteratorResult<SessionEventModel>> {
        remove();
        return { value: undefined, done: true };
      },
      async throw(err?: unknown): Promise<IteratorResult<SessionEventModel>> {
        remove();
        throw err;
      },
      [Symbol.asyncIterator]() {
        return iterator;
      },
    };
    return iterator;
  }
}
