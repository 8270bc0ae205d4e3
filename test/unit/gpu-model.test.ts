// One GPU model across the repository: the device plugin's time-slicing rule (deploy/manifests/
// time-slicing-config.yaml), the CRDs' bounds, the templates we ship and the reconciler's per-desktop limit
// must agree, or the API accepts a desktop that a real GPU node then refuses (UnexpectedAdmissionError).
import { readFileSync } from 'node:fs';
import { loadYaml } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { buildPod } from '../../operator/builders.ts';
import { MAX_GPU_SLICES_PER_DESKTOP, resolveSession } from '../../operator/resolve.ts';
import type { VDISession, VDITemplate } from '../../operator/v1alpha1.ts';
import { testReconcilerConfig } from '../support/reconciler-config.ts';

interface TimeSlicing {
  renameByDefault?: boolean;
  failRequestsGreaterThanOne?: boolean;
  resources: { name: string; rename?: string; replicas: number }[];
}

/**
 * Whether the NVIDIA device plugin lets a container that asks for `count` of `resource` start, under this
 * time-slicing config (k8s-device-plugin's Allocate): a resource shared by time-slicing is advertised under its
 * name (or `<name>.shared` with renameByDefault); with failRequestsGreaterThanOne, asking for more than one of a
 * shared resource fails the pod at admission, after it was scheduled.
 */
export function devicePluginAdmits(sharing: TimeSlicing, resource: string, count: number): boolean {
  const shared = sharing.resources.find((r) => r.replicas > 1 && (r.rename ?? (sharing.renameByDefault ? `${r.name}.shared` : r.name)) === resource);
  if (!shared || count <= 1) return true;
  return sharing.failRequestsGreaterThanOne !== true;
}

const repoFile = (relative: string) => readFileSync(new URL(`../../${relative}`, import.meta.url), 'utf8');

function timeSlicingFromManifest(): TimeSlicing {
  const configMap = loadYaml<{ data: Record<string, string> }>(repoFile('deploy/manifests/time-slicing-config.yaml'));
  const configs = Object.values(configMap.data);
  expect(configs).toHaveLength(1);
  const config = loadYaml<{ version: string; sharing: { timeSlicing: TimeSlicing } }>(configs[0]!);
  expect(config.version).toBe('v1');
  return config.sharing.timeSlicing;
}

/** The `maximum` of a schema field in a CRD file, found by its YAML path of property names. */
function crdMaximum(file: string, path: string[]): number {
  const crd = loadYaml<{ spec: { versions: { schema: { openAPIV3Schema: Record<string, unknown> } }[] } }>(repoFile(file));
  let node = crd.spec.versions[0]!.schema.openAPIV3Schema as { properties?: Record<string, unknown>; maximum?: number };
  for (const step of path) node = node.properties![step] as typeof node;
  return node.maximum!;
}

const sharing = timeSlicingFromManifest();
const config = testReconcilerConfig();

describe('devicePluginAdmits (the device plugin’s time-slicing rule)', () => {
  const base: TimeSlicing = { resources: [{ name: 'nvidia.com/gpu', replicas: 8 }] };

  it('refuses more than one slice with failRequestsGreaterThanOne, and grants it (uselessly) without', () => {
    expect(devicePluginAdmits({ ...base, failRequestsGreaterThanOne: true }, 'nvidia.com/gpu', 1)).toBe(true);
    expect(devicePluginAdmits({ ...base, failRequestsGreaterThanOne: true }, 'nvidia.com/gpu', 2)).toBe(false);
    expect(devicePluginAdmits({ ...base, failRequestsGreaterThanOne: false }, 'nvidia.com/gpu', 2)).toBe(true);
  });

  it('applies to the renamed resource with renameByDefault, and not to a resource that is not shared', () => {
    const renamed = { ...base, renameByDefault: true, failRequestsGreaterThanOne: true };
    expect(devicePluginAdmits(renamed, 'nvidia.com/gpu.shared', 2)).toBe(false);
    expect(devicePluginAdmits(renamed, 'nvidia.com/gpu', 2)).toBe(true);
  });
});

describe('the GPU model', () => {
  it('shares nvidia.com/gpu, the resource the reconciler asks for, and refuses more than one slice a pod', () => {
    expect(sharing.failRequestsGreaterThanOne).toBe(true);
    expect(devicePluginAdmits(sharing, config.gpuResourceName, 2)).toBe(false);
    expect(sharing.resources.map((r) => (sharing.renameByDefault ? `${r.name}.shared` : r.name))).toContain(config.gpuResourceName);
  });

  it('lets no CRD, shipped template or reconciler limit give a desktop more slices than the device plugin admits', () => {
    const bounds: [string, number][] = [
      ['MAX_GPU_SLICES_PER_DESKTOP', MAX_GPU_SLICES_PER_DESKTOP],
      ...['deploy/crds', 'deploy/charts/vdi-operator/crds'].flatMap((dir): [string, number][] => [
        [`${dir} VDISession spec.resources.gpu`, crdMaximum(`${dir}/vdi.kasm.io_vdisessions.yaml`, ['spec', 'resources', 'gpu'])],
        [`${dir} VDITemplate defaultGPU`, crdMaximum(`${dir}/vdi.kasm.io_vditemplates.yaml`, ['spec', 'resources', 'defaultGPU'])],
        [`${dir} VDITemplate maxGPU`, crdMaximum(`${dir}/vdi.kasm.io_vditemplates.yaml`, ['spec', 'resources', 'maxGPU'])],
      ]),
      ['deploy/examples template maxGPU', loadYaml<VDITemplate>(repoFile('deploy/examples/ubuntu-desktop-template.yaml')).spec.resources!.maxGPU!],
      [
        'chart default template maxGPU',
        loadYaml<{ defaultTemplate: VDITemplate }>(repoFile('deploy/charts/vdi-operator/values.yaml')).defaultTemplate.spec.resources!.maxGPU!,
      ],
      ['design template maxGPU', loadYaml<VDITemplate>(repoFile('docs/design/examples/vditemplate.yaml')).spec.resources!.maxGPU!],
    ];
    const refused = bounds.filter(([, count]) => !devicePluginAdmits(sharing, config.gpuResourceName, count));
    expect(refused).toEqual([]);
    expect(MAX_GPU_SLICES_PER_DESKTOP).toBeGreaterThanOrEqual(1);
  });

  it('builds, for the largest request an older template still allows, a pod the device plugin admits', () => {
    const template: VDITemplate = {
      apiVersion: 'vdi.kasm.io/v1alpha1',
      kind: 'VDITemplate',
      metadata: { name: 'old' },
      spec: { image: 'desktop:1', displayName: 'Old', resources: { defaultGPU: 1, maxGPU: 8 } },
    };
    const session = (gpu: number): VDISession => ({
      apiVersion: 'vdi.kasm.io/v1alpha1',
      kind: 'VDISession',
      metadata: { name: 's', namespace: 'n', uid: 'u' },
      spec: { user: 'alice@example.com', template: 'old', resources: { gpu } },
    });
    const two = resolveSession(session(2), template, config);
    expect(two).toMatchObject({ ok: false, reason: 'ExceedsTemplateLimits' });
    const one = resolveSession(session(1), template, config);
    if (!one.ok) throw new Error(one.message);
    const pod = buildPod(session(1), template, one.effective, config, 'secret');
    const slices = Number(pod.spec!.containers[0]!.resources!.limits![config.gpuResourceName]);
    expect(devicePluginAdmits(sharing, config.gpuResourceName, slices)).toBe(true);
  });
});
