// Subscription fan-out: 1,000 and 10,000 concurrent graphql-ws subscribers on one service process (the
// clients run in a second process on the same machine). For each size: latency from a status write on the
// apiserver to receipt by every client (p50/p99), server memory per idle subscriber, the number of watches
// the apiserver holds for vdisessions (it must not grow with subscribers), and, in the same run, a bare
// `ws` broadcast of a message of the same size to the same number of clients as the floor to compare with.
//
// After the steady events, a few more each come after a quiet spell longer than the life of a subscriber's
// authorisation decision (10 s), as most do in a real cluster: every subscriber is re-checked before it gets one.
//
//   npm run bench:subscriptions -- [--sizes 1000,10000] [--events 20] [--quiet-events 3]
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import http from 'node:http';
import { parseArgs } from 'node:util';
import { WebSocketServer } from 'ws';
import { userNamespace } from '../auth/namespace.ts';
import { fmt, startBenchStack, summarize } from './support.ts';

const { values } = parseArgs({
  options: {
    sizes: { type: 'string', default: '1000,10000' },
    events: { type: 'string', default: '20' },
    'quiet-events': { type: 'string', default: '3' },
  },
});
const SIZES = values.sizes.split(',').map(Number);
const EVENTS = Number(values.events);
const QUIET_EVENTS = Number(values['quiet-events']);
/** Longer than the service's authorisation decisions live (VDI_API_DECISION_TTL_SECONDS, 10 s by default). */
const QUIET_MS = 11_000;
const now = () => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const gc = () => (globalThis as { gc?: () => void }).gc?.();
const rss = () => {
  gc();
  return process.memoryUsage().rss;
};

async function clients(url: string, mode: 'graphql' | 'raw', n: number, token?: string): Promise<ChildProcess> {
  const child = fork(new URL('./ws-clients.ts', import.meta.url).pathname, [url, mode, String(n), token ?? ''], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const [msg] = (await once(child, 'message')) as [{ type: string; ready: number }];
  if (msg.ready !== n) throw new Error(`only ${msg.ready}/${n} clients ready`);
  return child;
}

async function collect(child: ChildProcess): Promise<number[]> {
  child.send({ type: 'report' });
  const [msg] = (await once(child, 'message')) as [{ latencies: number[] }];
  return msg.latencies;
}

async function stop(child: ChildProcess): Promise<void> {
  child.send({ type: 'exit' });
  await once(child, 'exit');
}

const stack = await startBenchStack({ VDI_MODE: 'api', VDI_API_MAX_CONNECTIONS_PER_USER: '1000000', VDI_API_RATE_LIMIT_PER_MINUTE: '100000000' });
try {
  const user = 'fanout@example.com';
  const token = await stack.issuer.tokenFor({ email: user, groups: ['vdi-users'] }, { expiresInSeconds: 3600 });
  await stack.client.apply(
    '/apis/vdi.kasm.io/v1alpha1/vditemplates/bench-desktop',
    {
      apiVersion: 'vdi.kasm.io/v1alpha1',
      kind: 'VDITemplate',
      metadata: { name: 'bench-desktop' },
      spec: { image: 'desktop:bench', displayName: 'Bench' },
    },
    'bench',
  );
  const res = await fetch(`${stack.service.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({
      query: 'mutation { createVDISession(input: {template: "bench-desktop", name: "fanout", resources: {gpu: 0}}) { name } }',
    }),
  });
  if (!res.ok) throw new Error(await res.text());
  const statusPath = `/apis/vdi.kasm.io/v1alpha1/namespaces/${userNamespace(user)}/vdisessions/fanout/status`;
  const watches = async () => {
    const text = await stack.client.request<string>({ path: '/metrics' });
    let n = 0;
    for (const line of text.split('\n')) {
      if (line.startsWith('apiserver_longrunning_requests{') && line.includes('verb="WATCH"') && line.includes('resource="vdisessions"'))
        n += Number(line.split(' ').pop());
    }
    return n;
  };
  const wsUrl = `${stack.service.url.replace('http', 'ws')}/graphql`;
  const messageSize = JSON.stringify({
    id: 's1',
    type: 'next',
    payload: { data: { sessionEvents: { type: 'MODIFIED', session: { name: 'fanout', status: { phase: 'Running', message: `bench:${now()}` } } } } },
  }).length;

  // The bare broadcast floor: a plain ws server on this process sending one message to every client.
  const bareServer = http.createServer();
  const bare = new WebSocketServer({ server: bareServer });
  await new Promise<void>((r) => bareServer.listen(0, '127.0.0.1', r));
  const bareUrl = `ws://127.0.0.1:${(bareServer.address() as { port: number }).port}`;

  // Inside the service: when each status write's watch event has been handled by the hub (this listener comes
  // after the hub's, which writes to every subscriber's socket that can take the event at once), and when the
  // rest (subscribers woken to take the event through their queue) has been issued (the next setImmediate).
  const watchLag: number[] = [];
  const fanOut: number[] = [];
  stack.service.caches.sessions.on((_type, s) => {
    const m = /bench:(\d+(?:\.\d+)?)/.exec(s.status?.message ?? '');
    if (!m) return;
    const arrived = now();
    watchLag.push(arrived - Number(m[1]));
    setImmediate(() => fanOut.push(now() - arrived));
  });

  for (const n of SIZES) {
    watchLag.length = 0;
    fanOut.length = 0;
    const watchesBefore = await watches();
    const before = rss();
    const child = await clients(wsUrl, 'graphql', n, token);
    await sleep(1000);
    const perSubscriber = (rss() - before) / n;
    const watchesDuring = await watches();
    await collect(child); // drop the initial events
    for (let i = 0; i < EVENTS; i++) {
      await stack.client.mergePatch(statusPath, { status: { phase: 'Running', message: `bench:${now()}` } });
      await sleep(n >= 5000 ? 1500 : 500);
    }
    await sleep(2000);
    const lat = summarize(await collect(child));
    const lag = summarize(watchLag);
    const burst = summarize(fanOut);
    for (let i = 0; i < QUIET_EVENTS; i++) {
      await sleep(QUIET_MS);
      await stack.client.mergePatch(statusPath, { status: { phase: 'Running', message: `bench:${now()}` } });
    }
    await sleep(2000);
    const quiet = QUIET_EVENTS ? summarize(await collect(child)) : undefined;
    await stop(child);

    const rawChild = await clients(bareUrl, 'raw', n);
    const filler = 'x'.repeat(Math.max(0, messageSize - 40));
    const bareLoop: number[] = [];
    for (let i = 0; i < EVENTS; i++) {
      const msg = JSON.stringify({ type: 'next', payload: `bench:${now()}`, filler });
      const loopStart = performance.now();
      for (const ws of bare.clients) ws.send(msg);
      bareLoop.push(performance.now() - loopStart);
      await sleep(n >= 5000 ? 1500 : 500);
    }
    await sleep(1000);
    const base = summarize(await collect(rawChild));
    await stop(rawChild);

    console.log(`fan-out to ${n} graphql-ws subscribers (${EVENTS} status writes, ${lat.n} deliveries, message ~${messageSize} B)`);
    console.log(`  write → every client: p50 ${fmt(lat.p50)}  p99 ${fmt(lat.p99)}  max ${fmt(lat.max)}`);
    console.log(
      `    in the service: write → event handled, direct sends issued: p50 ${fmt(lag.p50)}  max ${fmt(lag.max)}; then → queued sends issued: p50 ${fmt(burst.p50)}  max ${fmt(burst.max)}`,
    );
    if (quiet) {
      console.log(
        `  after ${QUIET_MS / 1000} s without events, every decision expired and re-checked first (${QUIET_EVENTS} writes): p50 ${fmt(quiet.p50)}  p99 ${fmt(quiet.p99)}  max ${fmt(quiet.max)}`,
      );
    }
    const loop = summarize(bareLoop);
    console.log(
      `  bare ws broadcast (same run, same clients count): p50 ${fmt(base.p50)}  p99 ${fmt(base.p99)}; its send loop alone (one socket write each): p50 ${fmt(loop.p50)}  max ${fmt(loop.max)}`,
    );
    console.log(`  ratio to bare broadcast: p50 ${(lat.p50 / base.p50).toFixed(2)}x  p99 ${(lat.p99 / base.p99).toFixed(2)}x`);
    console.log(`  server memory per idle subscriber: ${(perSubscriber / 1024).toFixed(1)} KB (RSS delta / ${n})`);
    console.log(`  apiserver watches on vdisessions: ${watchesBefore} before, ${watchesDuring} with ${n} subscribers`);
    console.log(`  subscriptions seen by the hub at peak: ${n}; service RSS now ${(process.memoryUsage().rss / 1048576).toFixed(0)} MiB`);
  }
  bare.close();
  bareServer.close();
} finally {
  await stack.stop();
}
