// The foundation: the harness's control plane is a real Kubernetes that schedules GPU slices, collects
// garbage, and validates our CRDs.
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, onTestFinished, vi } from 'vitest';
import type { V1Node, V1Pod } from '@kubernetes/client-node';
import { KubeClient, KubeError, KubeUnavailableError } from '../../src/kube/client.ts';
import type { VDISession } from '../../operator/v1alpha1.ts';
import { adminClient, adminKubeConfig, eventually, kubectl, testNamespace } from '../support/cluster.ts';
import { gone, leadingController, sessionInPhase, sessionPath, startReconciler } from '../support/reconciler.ts';

/** The design document's two objects, exactly as it writes them (docs/design/README.md). */
const DESIGN_EXAMPLES = 'docs/design/examples/';
const DESIGN_NAMESPACE = 'vdi';

const client = adminClient();

describe('the local control plane', () => {
  it('reports the real Kubernetes version', async () => {
    const version = await client.get<{ gitVersion: string }>('/version');
    expect(version.gitVersion).toBe('v1.37.2');
  });

  it('has two 8-slice time-sliced GPU nodes and one CPU-only node, all Ready', async () => {
    const nodes = await client.list<V1Node>('/api/v1/nodes');
    const gpu = nodes.items.filter((n) => n.status?.allocatable?.['nvidia.com/gpu'] === '8');
    expect(gpu.map((n) => n.metadata!.name).sort()).toEqual(['gpu-node-1', 'gpu-node-2']);
    for (const n of gpu) {
      expect(n.metadata!.labels).toMatchObject({
        'nvidia.com/gpu.replicas': '8',
        'nvidia.com/gpu.sharing-strategy': 'time-slicing',
        'nvidia.com/gpu.product': 'NVIDIA-A10-SHARED',
      });
    }
    const cpuOnly = nodes.items.find((n) => n.metadata!.name === 'cpu-node-1');
    expect(cpuOnly?.status?.allocatable?.['nvidia.com/gpu']).toBeUndefined();
    for (const n of nodes.items) expect(n.status?.conditions?.find((c) => c.type === 'Ready')?.status).toBe('True');
  });
});

describe('the kube client', () => {
  it("trusts only the kubeconfig's CA, and takes a new CA without a restart", async () => {
    const kc = adminKubeConfig();
    const cluster = kc.getCurrentCluster()!;
    const realCa = await readFile(cluster.caFile!, 'utf8');
    const dir = await mkdtemp(path.join(tmpdir(), 'vdi-ca-'));
    onTestFinished(() => rm(dir, { recursive: true, force: true }));
    const caFile = path.join(dir, 'ca.crt');
    // The public CAs of the system: a real, valid bundle that did not sign the apiserver's certificate.
    await writeFile(caFile, await readFile('/etc/ssl/certs/ca-certificates.crt'));
    kc.clusters = kc.clusters.map((c) => (c.name === cluster.name ? { ...c, caFile } : c));
    const client = new KubeClient(kc);
    await expect(client.get('/version')).rejects.toBeInstanceOf(KubeUnavailableError);

    // The CA file is replaced (a rotated CA): read again within the client's refresh interval (a minute).
    await writeFile(caFile, realCa);
    vi.useFakeTimers({ toFake: ['Date'] });
    onTestFinished(() => void vi.useRealTimers());
    vi.setSystemTime(Date.now() + 61_000);
    expect((await client.get<{ gitVersion: string }>('/version')).gitVersion).toBe('v1.37.2');
  });
});

describe('GPU time-slices on kwok nodes', () => {
  // A private pool of two 8-slice nodes, tainted so only this test's pods land there: other test files
  // sharing the cluster cannot change the arithmetic.
  const pool = `pool-${randomBytes(3).toString('hex')}`;
  const nodeNames = [`${pool}-a`, `${pool}-b`];
  let ns: string;

  beforeAll(async () => {
    ns = await testNamespace(client, 'gpu');
    for (const name of nodeNames) {
      const capacity = { cpu: '64', memory: '256Gi', pods: '110', 'nvidia.com/gpu': '8' };
      await client.create('/api/v1/nodes', {
        apiVersion: 'v1',
        kind: 'Node',
        metadata: { name, annotations: { 'kwok.x-k8s.io/node': 'fake' }, labels: { 'vdi-test-pool': pool, type: 'kwok' } },
        spec: { taints: [{ key: 'vdi-test-pool', value: pool, effect: 'NoSchedule' }] },
        status: { capacity, allocatable: capacity },
      });
    }
  });

  afterAll(async () => {
    await client.delete(`/api/v1/namespaces/${ns}`);
    for (const name of nodeNames) await client.delete(`/api/v1/nodes/${name}`);
  });

  const gpuPod = (name: string) => ({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name },
    spec: {
      nodeSelector: { 'vdi-test-pool': pool },
      tolerations: [{ key: 'vdi-test-pool', operator: 'Equal', value: pool, effect: 'NoSchedule' }],
      containers: [{ name: 'desktop', image: 'desktop:test', resources: { limits: { 'nvidia.com/gpu': '1' } } }],
    },
  });

  it('runs 16 one-slice pods on two 8-slice nodes and keeps the 17th Pending for lack of a slice', async () => {
    for (let i = 0; i < 16; i++) await client.create(`/api/v1/namespaces/${ns}/pods`, gpuPod(`slice-${i}`));
    const running = await eventually(async () => {
      const pods = await client.list<V1Pod>(`/api/v1/namespaces/${ns}/pods`);
      const n = pods.items.filter((p) => p.status?.phase === 'Running').length;
      return n === 16 ? pods.items : undefined;
    });
    const perNode = new Map<string, number>();
    for (const p of running) perNode.set(p.spec!.nodeName!, (perNode.get(p.spec!.nodeName!) ?? 0) + 1);
    expect([...perNode.entries()].sort()).toEqual(nodeNames.map((n) => [n, 8]));

    await client.create(`/api/v1/namespaces/${ns}/pods`, gpuPod('slice-16'));
    const unschedulable = await eventually(async () => {
      const pod = await client.get<V1Pod>(`/api/v1/namespaces/${ns}/pods/slice-16`);
      return pod.status?.conditions?.find((c) => c.type === 'PodScheduled' && c.status === 'False');
    });
    expect(unschedulable.reason).toBe('Unschedulable');
    expect(unschedulable.message).toContain('Insufficient nvidia.com/gpu');

    // Freeing one slice lets the waiting pod run.
    await client.delete(`/api/v1/namespaces/${ns}/pods/slice-3`, undefined, { gracePeriodSeconds: 0 });
    await eventually(async () => (await client.get<V1Pod>(`/api/v1/namespaces/${ns}/pods/slice-16`)).status?.phase === 'Running');
  });
});

describe('garbage collection', () => {
  it('deletes an owned object once its owner is deleted', async () => {
    const ns = await testNamespace(client, 'gc');
    const owner = await client.create<{ metadata: { uid: string } }>(`/api/v1/namespaces/${ns}/configmaps`, {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'owner' },
    });
    await client.create(`/api/v1/namespaces/${ns}/configmaps`, {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'child', ownerReferences: [{ apiVersion: 'v1', kind: 'ConfigMap', name: 'owner', uid: owner.metadata.uid }] },
    });
    await client.delete(`/api/v1/namespaces/${ns}/configmaps/owner`);
    await eventually(async () => {
      try {
        await client.get(`/api/v1/namespaces/${ns}/configmaps/child`);
        return false;
      } catch (err) {
        return err instanceof KubeError && err.status === 404;
      }
    });
    await client.delete(`/api/v1/namespaces/${ns}`);
  });
});

describe('the vdi.kasm.io CRDs', () => {
  let ns: string;
  beforeAll(async () => {
    ns = await testNamespace(client, 'crd');
  });
  afterAll(async () => {
    await client.delete(`/api/v1/namespaces/${ns}`);
  });

  const session = (spec: Record<string, unknown>, name = `s-${randomBytes(3).toString('hex')}`) => ({
    apiVersion: 'vdi.kasm.io/v1alpha1',
    kind: 'VDISession',
    metadata: { name, namespace: ns },
    spec: { user: 'alice@example.com', template: 'ubuntu-desktop', ...spec },
  });

  async function rejection(body: unknown): Promise<string> {
    try {
      await client.create(`/apis/vdi.kasm.io/v1alpha1/namespaces/${ns}/vdisessions`, body);
    } catch (err) {
      expect(err).toBeInstanceOf(KubeError);
      expect((err as KubeError).status).toBe(422);
      return (err as KubeError).message;
    }
    throw new Error('the apiserver accepted an invalid VDISession');
  }

  it("accepts the seed's examples as written", async () => {
    // The design's own documents, verbatim (integer quantities, the shared namespace vdi, a status block).
    await kubectl(['create', 'namespace', DESIGN_NAMESPACE]);
    const design = await kubectl(['apply', '-f', DESIGN_EXAMPLES]);
    expect(design.stderr).toBe('');
    expect(design.code).toBe(0);
    expect(design.stdout).toContain('vditemplate.vdi.kasm.io/ubuntu-gpu');
    expect(design.stdout).toContain('vdisession.vdi.kasm.io/alice-ubuntu');
    const stored = await client.get<VDISession>(sessionPath(DESIGN_NAMESPACE, 'alice-ubuntu'));
    expect(stored.spec.resources?.cpu).toBe(2);
    // Status is a subresource: the document's `status:` is dropped, not taken for the truth.
    expect(stored.status).toBeUndefined();

    // The project's tidied examples.
    await kubectl(['create', 'namespace', 'vdi-alice']);
    const res = await kubectl(['apply', '-f', 'deploy/examples/']);
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    expect(res.stdout).toContain('vditemplate.vdi.kasm.io/ubuntu-desktop');
    expect(res.stdout).toContain('vdisession.vdi.kasm.io/alice-desktop');
  });

  it("turns the design's session, made by an admin in the shared namespace vdi, into a Running desktop", async () => {
    const service = await startReconciler({ namespace: ns });
    onTestFinished(async () => {
      // The reconciler lifts the session's finalizer before it stops.
      await client.delete(sessionPath(DESIGN_NAMESPACE, 'alice-ubuntu')).catch(() => undefined);
      await gone(client, sessionPath(DESIGN_NAMESPACE, 'alice-ubuntu'), 60_000).catch(() => undefined);
      await service.stop();
      await client.delete(`/api/v1/namespaces/${DESIGN_NAMESPACE}`).catch(() => undefined);
    });
    await leadingController(service);
    const running = await sessionInPhase(client, DESIGN_NAMESPACE, 'alice-ubuntu', 'Running', 60_000);
    expect(running.status?.url).toMatch(/^https:\/\/alice-ubuntu-vdi\./);
    // The session names no GPU: kubectl's GPU column shows the template's default it runs with (status.resources).
    expect(running.status?.resources).toEqual({ gpu: 1, cpu: '2', memory: '8Gi' });
    const table = await kubectl(['get', 'vdis', 'alice-ubuntu', '-n', DESIGN_NAMESPACE]);
    expect(table.stdout).toMatch(/^NAME\s+USER\s+TEMPLATE\s+GPU\s+PHASE/);
    expect(table.stdout).toMatch(/\nalice-ubuntu\s+\S+\s+ubuntu-gpu\s+1\s+Running/);
    const pod = await client.get<V1Pod>(`/api/v1/namespaces/${DESIGN_NAMESPACE}/pods/vdi-alice-ubuntu`);
    const resources = pod.spec?.containers[0]?.resources;
    // cpu: 2 from the session, the template's default GPU slice and memory.
    expect(resources?.limits).toMatchObject({ cpu: '2', memory: '8Gi', 'nvidia.com/gpu': '1' });
  });

  it('shows user, template, phase, URL and age in kubectl get vdis', async () => {
    const res = await kubectl(['get', 'vdis', '-n', 'vdi-alice']);
    expect(res.code).toBe(0);
    const header = res.stdout.split('\n')[0]!.split(/\s+/);
    expect(header).toEqual(expect.arrayContaining(['NAME', 'USER', 'TEMPLATE', 'PHASE', 'URL', 'AGE']));
    expect(res.stdout).toMatch(/alice-desktop\s+alice@example\.com\s+ubuntu-desktop/);
  });

  it('rejects a bad memory quantity', async () => {
    expect(await rejection(session({ resources: { memory: '8GB' } }))).toContain('spec.resources.memory');
  });

  it('takes quantities as integers or strings, and refuses other numbers', async () => {
    await client.create(`/apis/vdi.kasm.io/v1alpha1/namespaces/${ns}/vdisessions`, session({ resources: { cpu: 2, memory: '4Gi' } }));
    expect(await rejection(session({ resources: { cpu: 1.5 } }))).toContain('spec.resources.cpu');
  });

  it("compares an integer default with a string maximum in the template's CEL rule", async () => {
    const template = (resources: Record<string, unknown>) => ({
      apiVersion: 'vdi.kasm.io/v1alpha1',
      kind: 'VDITemplate',
      metadata: { name: `t-${randomBytes(3).toString('hex')}` },
      spec: { image: 'desktop:1', displayName: 'T', resources },
    });
    const ok = await client.create<{ metadata: { name: string } }>(
      '/apis/vdi.kasm.io/v1alpha1/vditemplates',
      template({ defaultCPU: 2, maxCPU: '8' }),
    );
    await client.delete(`/apis/vdi.kasm.io/v1alpha1/vditemplates/${ok.metadata.name}`);
    const err = await client.create('/apis/vdi.kasm.io/v1alpha1/vditemplates', template({ defaultCPU: 9, maxCPU: '8000m' })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KubeError);
    expect((err as KubeError).message).toContain('defaultCPU must not exceed maxCPU');
  });

  it('rejects a bad timeout duration', async () => {
    expect(await rejection(session({ timeout: '8 hours' }))).toContain('spec.timeout');
  });

  it('rejects a negative GPU count', async () => {
    expect(await rejection(session({ resources: { gpu: -1 } }))).toContain('spec.resources.gpu');
  });

  it('rejects an unknown phase in the status', async () => {
    const name = `s-${randomBytes(3).toString('hex')}`;
    await client.create(`/apis/vdi.kasm.io/v1alpha1/namespaces/${ns}/vdisessions`, session({}, name));
    const err = await client
      .mergePatch(`/apis/vdi.kasm.io/v1alpha1/namespaces/${ns}/vdisessions/${name}/status`, { status: { phase: 'Sleeping' } })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KubeError);
    expect((err as KubeError).message).toContain('Unsupported value: "Sleeping"');
  });

  it('refuses to change spec.user or spec.template', async () => {
    const name = `s-${randomBytes(3).toString('hex')}`;
    await client.create(`/apis/vdi.kasm.io/v1alpha1/namespaces/${ns}/vdisessions`, session({}, name));
    const path = `/apis/vdi.kasm.io/v1alpha1/namespaces/${ns}/vdisessions/${name}`;
    const user = await client.mergePatch(path, { spec: { user: 'mallory@example.com' } }).catch((e: unknown) => e);
    expect((user as KubeError).message).toContain('spec.user is immutable');
    const template = await client.mergePatch(path, { spec: { template: 'other' } }).catch((e: unknown) => e);
    expect((template as KubeError).message).toContain('spec.template is immutable');
  });

  it('keeps kubectl and the CRD file in agreement about the short names', async () => {
    const crd = await readFile('deploy/crds/vdi.kasm.io_vdisessions.yaml', 'utf8');
    expect(crd).toContain('- vdis');
    const res = await kubectl(['get', 'vdit', 'ubuntu-desktop', '-o', 'jsonpath={.spec.displayName}']);
    expect(res.stdout).toBe('Ubuntu Desktop');
  });
});
