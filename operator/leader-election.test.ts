import { afterEach, describe, expect, it, vi } from 'vitest';
import { KubeError, type KubeClient, type RequestOptions } from '../src/kube/client.ts';
import { LeaderElector, LeadershipLostError, type LeaderTerm } from './leader-election.ts';

interface Lease {
  metadata: { name: string; namespace: string; resourceVersion?: string };
  spec: { holderIdentity?: string; leaseDurationSeconds?: number };
}

/**
 * An apiserver holding one Lease, with compare-and-swap on resourceVersion; `down` makes every call fail, `hung`
 * makes every call wait until its signal (withSignal) aborts it.
 */
function fakeApiserver() {
  const state = { lease: undefined as Lease | undefined, rv: 0, down: false, hung: false };
  const unavailable = () => new KubeError(503, 'ServiceUnavailable', 'down');
  const client = {
    get: async () => {
      if (state.hung) await new Promise(() => {});
      if (state.down) throw unavailable();
      if (!state.lease) throw new KubeError(404, 'NotFound', 'not found');
      return structuredClone(state.lease);
    },
    create: async (_path: string, body: Lease) => {
      if (state.down) throw unavailable();
      state.lease = { ...body, metadata: { ...body.metadata, resourceVersion: String(++state.rv) } };
      return state.lease;
    },
    request: async (opts: RequestOptions) => {
      if (state.hung) await new Promise(() => {});
      if (state.down) throw unavailable();
      const body = opts.body as Lease;
      if (body.metadata.resourceVersion !== state.lease?.metadata.resourceVersion) throw new KubeError(409, 'Conflict', 'changed');
      state.lease = { ...body, metadata: { ...body.metadata, resourceVersion: String(++state.rv) } };
      return state.lease;
    },
    withSignal: (signal: AbortSignal) => {
      const bound =
        (call: (...args: never[]) => Promise<unknown>) =>
        (...args: never[]) =>
          Promise.race([
            call(...args),
            new Promise((_resolve, reject) => signal.addEventListener('abort', () => reject(signal.reason), { once: true })),
          ]);
      const calls = client as unknown as Record<'get' | 'request', (...args: never[]) => Promise<unknown>>;
      return { ...client, get: bound(calls.get), request: bound(calls.request) };
    },
  } as unknown as KubeClient;
  /** Another replica takes the lease. */
  const takeOver = (identity: string) => {
    state.lease = {
      ...state.lease!,
      spec: { ...state.lease!.spec, holderIdentity: identity },
      metadata: { ...state.lease!.metadata, resourceVersion: String(++state.rv) },
    };
  };
  return { client, state, takeOver };
}

function elector(client: KubeClient) {
  const terms: LeaderTerm[] = [];
  const stopped: string[] = [];
  const e = new LeaderElector(client, {
    namespace: 'ns',
    name: 'lease',
    identity: 'me',
    leaseDurationMs: 3_000,
    renewDeadlineMs: 2_000,
    retryPeriodMs: 300,
    onStartedLeading: (term) => void terms.push(term),
    onStoppedLeading: (why) => void stopped.push(why),
  });
  return { e, terms, stopped };
}

/** An elector on fake timers against a fake apiserver, after its first campaign (it leads: the lease was free). */
async function leading() {
  vi.useFakeTimers();
  const api = fakeApiserver();
  const x = elector(api.client);
  x.e.start();
  await vi.advanceTimersByTimeAsync(0);
  return { api, ...x };
}

afterEach(() => {
  vi.useRealTimers();
});

describe('LeaderElector', () => {
  it('ends the term, aborting its signal, when it cannot renew within the deadline even while a renewal hangs', async () => {
    const { api, e, terms, stopped } = await leading();
    expect(terms).toHaveLength(1);
    // Renewals now hang for good: only the deadline can end the term.
    api.client.request = () => new Promise(() => undefined);
    await vi.advanceTimersByTimeAsync(1_999);
    expect(terms[0]!.signal.aborted).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(terms[0]!.signal.aborted).toBe(true);
    expect(terms[0]!.signal.reason).toBeInstanceOf(LeadershipLostError);
    expect(stopped).toEqual(['lost']);
    expect(e.isLeader).toBe(false);
    await e.stop();
  });

  it('ends the term at the deadline even when the deadline timer fires before Date.now() has reached it', async () => {
    const { api, e, terms, stopped } = await leading();
    expect(terms).toHaveLength(1);
    // Renewals hang from now on, and Date.now() runs a millisecond behind the clock timers count on (setTimeout
    // counts on libuv's truncated millisecond clock): the deadline timer fires at 1999 ms by Date.now().
    api.state.hung = true;
    vi.setSystemTime(Date.now() - 1);
    await vi.advanceTimersByTimeAsync(2_000);
    expect(e.isLeader).toBe(true);
    // One millisecond later by Date.now() too: the term is over, though the hung renewal has not failed yet.
    await vi.advanceTimersByTimeAsync(1);
    expect(terms[0]!.signal.aborted).toBe(true);
    expect(stopped).toEqual(['lost']);
    expect(e.isLeader).toBe(false);
    await e.stop();
  });

  it('abandons an attempt that gets no answer within the renew deadline, and campaigns on', async () => {
    const { api, e, terms, stopped } = await leading();
    // The renewal at 300 ms hangs; the deadline ends the term at 2000 ms; then the apiserver answers again.
    api.state.hung = true;
    await vi.advanceTimersByTimeAsync(2_000);
    expect(stopped).toEqual(['lost']);
    api.state.hung = false;
    // The hung attempt is given up at 2300 ms and the next one, a retry period later, takes the lease again.
    await vi.advanceTimersByTimeAsync(1_000);
    expect(terms).toHaveLength(2);
    expect(e.isLeader).toBe(true);
    await e.stop();
  });

  it('ends the term as soon as another replica is seen holding the lease', async () => {
    const { api, e, terms, stopped } = await leading();
    api.takeOver('other');
    await vi.advanceTimersByTimeAsync(300);
    expect(terms[0]!.signal.aborted).toBe(true);
    expect(stopped).toEqual(['lost']);
    await e.stop();
  });

  it('after a pause in which no timer ran, confirm() ends the term before anything else is written', async () => {
    const { e, terms, stopped } = await leading();
    expect(() => terms[0]!.confirm()).not.toThrow();
    // The clock moves on while the process is stopped; timers have not fired yet when it resumes.
    vi.setSystemTime(Date.now() + 2_500);
    expect(() => terms[0]!.confirm()).toThrow(LeadershipLostError);
    expect(terms[0]!.signal.aborted).toBe(true);
    expect(stopped).toEqual(['lost']);
    await e.stop();
  });

  it('says released, not lost, when stop() gives the lease up, and frees it for the next replica', async () => {
    const { api, e, terms, stopped } = await leading();
    await e.stop();
    expect(terms[0]!.signal.aborted).toBe(true);
    expect(stopped).toEqual(['released']);
    expect(api.state.lease!.spec.holderIdentity).toBe('');
  });

  it('gives the release one retry period, so an apiserver that no longer answers does not hold the shutdown', async () => {
    const { api, e, stopped } = await leading();
    api.state.hung = true;
    let done = false;
    const stopping = e.stop().then(() => (done = true));
    await vi.advanceTimersByTimeAsync(299);
    expect(done).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    await stopping;
    expect(done).toBe(true);
    expect(stopped).toEqual(['released']);
  });
});
