// What each kind of write a session needs costs the apiserver: N writes of each kind, made as the reconciler
// makes them (create, server-side apply, merge patch of status) from the reconciler's own builders, with the
// apiserver's CPU (and etcd's and the controller-manager's, which follow some writes) read from /proc before and
// after. A ConfigMap create and a bare pod create are the yardsticks. Pods are created already bound to a node
// that does not exist, so neither the scheduler nor kwok adds work; a Service's cost includes the EndpointSlice
// and Endpoints the controller-manager writes for it.
//
//   npm run bench:apiserver-cost -- [--writes 1000] [--concurrency 64]
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { buildIngressRoute, buildPod, buildSecret, buildService } from '../operator/builders.ts';
import { resolveSession } from '../operator/resolve.ts';
import type { VDISession } from '../operator/v1alpha1.ts';
import { applyBenchTemplate, fmt, load, processCpu, startBenchStack, summarize } from './support.ts';
import { testReconcilerConfig } from '../test/support/reconciler-config.ts';

const { values } = parseArgs({ options: { writes: { type: 'string', default: '1000' }, concurrency: { type: 'string', default: '64' } } });
const N = Number(values.writes);
const CONCURRENCY = Number(values.concurrency);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const stack = await startBenchStack({ VDI_MODE: 'api' });
try {
  const { client } = stack;
  const ns = 'bench-cost';
  await client.create('/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
  const template = await applyBenchTemplate(client);
  const config = testReconcilerConfig();
  const sessions: VDISession[] = [];
  const rows: { kind: string; bytes: number; ms: number; apiserver: number; others: number; p50: number; p99: number }[] = [];

  /** N writes made by `write(i)`; the CPU the control plane used for them, per write. */
  async function measure(kind: string, body: (i: number) => unknown, write: (i: number) => Promise<unknown>, settleMs = 500) {
    await sleep(1000);
    const before = await processCpu();
    let next = 0;
    const { latencies, wallMs } = await load(N, CONCURRENCY, async () => void (await write(next++)));
    await sleep(settleMs); // what follows the writes (controller-manager, watch fan-out) is counted too
    const after = await processCpu();
    const used = (name: string) => (after.get(name) ?? 0) - (before.get(name) ?? 0);
    const others = ['etcd', 'kube-controller', 'kube-scheduler', 'kwok'].reduce((a, n) => a + used(n), 0);
    const lat = summarize(latencies);
    rows.push({
      kind,
      bytes: JSON.stringify(body(0)).length,
      ms: wallMs,
      apiserver: (used('kube-apiserver') * 1000) / N,
      others: (others * 1000) / N,
      p50: lat.p50,
      p99: lat.p99,
    });
  }

  const configMap = (i: number) => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: `cm-${i}` }, data: { i: String(i) } });
  // A first round warms the apiserver's paths; the yardstick is the second.
  await measure('warm-up', configMap, (i) => client.create(`/api/v1/namespaces/${ns}/configmaps`, configMap(i)));
  rows.pop();
  await client.request({ method: 'DELETE', path: `/api/v1/namespaces/${ns}/configmaps` });
  await measure('ConfigMap create (yardstick)', configMap, (i) => client.create(`/api/v1/namespaces/${ns}/configmaps`, configMap(i)));

  const sessionBody = (i: number) => ({
    apiVersion: 'vdi.kasm.io/v1alpha1',
    kind: 'VDISession',
    metadata: { name: `s-${i}`, namespace: ns },
    spec: { user: `user-${i}@example.com`, template: 'bench-desktop' },
  });
  await measure('VDISession create', sessionBody, async (i) =>
    sessions.push(await client.create<VDISession>(`/apis/vdi.kasm.io/v1alpha1/namespaces/${ns}/vdisessions`, sessionBody(i))),
  );
  sessions.sort((a, b) => Number(a.metadata.name!.slice(2)) - Number(b.metadata.name!.slice(2)));
  // The same without our admission policies, one after the other, to show what each costs.
  const named = (prefix: string) => (i: number) => ({ ...sessionBody(i), metadata: { name: `${prefix}-${i}`, namespace: ns } });
  await client.request({ method: 'DELETE', path: '/apis/admissionregistration.k8s.io/v1/mutatingadmissionpolicybindings/vdi-session-finalizer' });
  await sleep(2000); // policy bindings take effect through an informer
  const noFinalizer = named('f');
  await measure('  without the finalizer policy (MutatingAdmissionPolicy)', noFinalizer, (i) =>
    client.create(`/apis/vdi.kasm.io/v1alpha1/namespaces/${ns}/vdisessions`, noFinalizer(i)),
  );
  await client.request({ method: 'DELETE', path: '/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicybindings/vdi-session-owner' });
  await sleep(2000);
  const unchecked = named('u');
  await measure('  without both policies (also the spec.user check)', unchecked, (i) =>
    client.create(`/apis/vdi.kasm.io/v1alpha1/namespaces/${ns}/vdisessions`, unchecked(i)),
  );
  const effective = (s: VDISession) => {
    const r = resolveSession(s, template, config);
    if (!r.ok) throw new Error(r.message);
    return r.effective;
  };

  const secret = (i: number) =>
    buildSecret(sessions[i]!, randomBytes(18).toString('base64url'), randomBytes(24).toString('base64url'), randomBytes(24).toString('base64url'));
  await measure('Secret create', secret, (i) => client.create(`/api/v1/namespaces/${ns}/secrets`, secret(i)));

  const nowhere = 'no-such-node';
  const bare = (i: number) => ({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: `p-${i}` },
    spec: {
      nodeName: nowhere,
      containers: [{ name: 'desktop', image: 'desktop:bench', resources: { limits: { 'nvidia.com/gpu': '1', memory: '1Gi', cpu: '1' } } }],
    },
  });
  await measure('bare Pod create (yardstick)', bare, (i) => client.create(`/api/v1/namespaces/${ns}/pods`, bare(i)));
  const pod = (i: number) => {
    const p = buildPod(sessions[i]!, template, effective(sessions[i]!), config, secret(i).metadata.name!);
    return { ...p, spec: { ...p.spec, nodeName: nowhere } };
  };
  await measure('desktop Pod create', pod, (i) => client.create(`/api/v1/namespaces/${ns}/pods`, pod(i)));

  const service = (i: number) => buildService(sessions[i]!);
  await measure(
    'Service apply (+ its EndpointSlice, Endpoints)',
    service,
    (i) => client.apply(`/api/v1/namespaces/${ns}/services/${service(i).metadata.name}`, service(i), 'vdi-operator'),
    2000,
  );

  const route = (i: number) => buildIngressRoute(sessions[i]!, config);
  await measure('IngressRoute apply', route, (i) =>
    client.apply(`/apis/traefik.io/v1alpha1/namespaces/${ns}/ingressroutes/${route(i).metadata.name}`, route(i), 'vdi-operator'),
  );
  // What server-side apply costs over a plain create (we apply: one field manager owns our fields, so drift
  // is put back without conflicts with our own earlier writes).
  const routeCopy = (i: number) => ({ ...route(i), metadata: { ...route(i).metadata, name: `${route(i).metadata.name}-c` } });
  await measure('  the same by create, for comparison', routeCopy, (i) =>
    client.create(`/apis/traefik.io/v1alpha1/namespaces/${ns}/ingressroutes`, routeCopy(i)),
  );

  const status = () => ({
    status: {
      phase: 'Running',
      reason: 'Ready',
      message: 'the desktop is ready',
      url: 'https://s.vdi.example.com/',
      startTime: new Date().toISOString(),
    },
  });
  await measure('VDISession status merge patch', status, (i) =>
    client.mergePatch(`/apis/vdi.kasm.io/v1alpha1/namespaces/${ns}/vdisessions/s-${i}/status`, status()),
  );

  const event = (i: number) => ({
    apiVersion: 'events.k8s.io/v1',
    kind: 'Event',
    metadata: { name: `s-${i}.${randomBytes(8).toString('hex')}`, namespace: ns },
    eventTime: new Date().toISOString().replace(/Z$/, '000Z'),
    reportingController: 'vdi.kasm.io/vdi-operator',
    reportingInstance: 'bench',
    action: 'Running',
    reason: 'Ready',
    note: 'the desktop is ready',
    type: 'Normal',
    regarding: { apiVersion: 'vdi.kasm.io/v1alpha1', kind: 'VDISession', name: `s-${i}`, namespace: ns, uid: sessions[i]!.metadata.uid },
  });
  await measure('Event create', event, (i) => client.create(`/apis/events.k8s.io/v1/namespaces/${ns}/events`, event(i)));

  const yardstick = rows[0]!.apiserver;
  console.log(
    `apiserver CPU per write, ${N} writes of each kind, ${CONCURRENCY} in flight (CPU read from /proc; etcd, kcm, scheduler and kwok as "others")`,
  );
  for (const r of rows) {
    console.log(
      `  ${r.kind.padEnd(58)} ${String(r.bytes).padStart(5)} B  apiserver ${r.apiserver.toFixed(2)} ms (${(r.apiserver / yardstick).toFixed(1)}x ConfigMap)  others ${r.others.toFixed(2)} ms  latency p50 ${fmt(r.p50)} p99 ${fmt(r.p99)}  ${(N / (r.ms / 1000)).toFixed(0)}/s`,
    );
  }
} finally {
  await stack.stop();
}
