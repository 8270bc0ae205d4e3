// The Helm chart as the tests use it: rendered with the real helm binary, its objects picked by kind, the
// service's environment read from its Deployment, and a kubeconfig holding a token of its ServiceAccount.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { KubeConfig } from '@kubernetes/client-node';
import { ensureHelm, parseYamlDocuments } from '../../dev/control-plane.ts';
import type { KubeClient } from '../../src/kube/client.ts';

const execFileP = promisify(execFile);
const repoRoot = path.resolve(import.meta.dirname, '../..');
export const CHART_DIR = path.join(repoRoot, 'deploy/charts/vdi-operator');

export interface ChartObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; [key: string]: unknown };
  [key: string]: unknown;
}

export interface PolicyRule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
  resourceNames?: string[];
}

/** `helm template <release> deploy/charts/vdi-operator -n <namespace> <args>`, parsed. */
export async function renderChart(release: string, namespace: string, args: string[] = []): Promise<ChartObject[]> {
  const helm = await ensureHelm();
  const { stdout } = await execFileP(helm, ['template', release, CHART_DIR, '-n', namespace, ...args], {
    cwd: repoRoot,
    maxBuffer: 16 * 1024 * 1024,
  });
  return parseYamlDocuments(stdout) as ChartObject[];
}

/** The one rendered object of a kind (and name, when several share the kind). */
export function chartObject(objects: ChartObject[], kind: string, name?: string): ChartObject {
  const found = objects.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
  if (found.length !== 1) throw new Error(`expected one ${kind}${name ? ` ${name}` : ''} in the chart, found ${found.length}`);
  return found[0]!;
}

interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { fieldRef?: { fieldPath: string }; secretKeyRef?: unknown };
}

/**
 * The environment the chart gives the service container: literal values as rendered, downward-API fields
 * from `fields` (e.g. metadata.name → the pod's name), then `overrides` (what differs in a test process).
 * Values from Secrets are left out; pass them in `overrides`.
 */
export function chartEnvironment(objects: ChartObject[], fields: Record<string, string>, overrides: Record<string, string>): Record<string, string> {
  const deployment = chartObject(objects, 'Deployment') as ChartObject & { spec: { template: { spec: { containers: { env: EnvVar[] }[] } } } };
  const env: Record<string, string> = {};
  for (const v of deployment.spec.template.spec.containers[0]!.env) {
    if (v.value !== undefined) env[v.name] = v.value;
    else if (v.valueFrom?.fieldRef) {
      const value = fields[v.valueFrom.fieldRef.fieldPath];
      if (value === undefined) throw new Error(`no value for the field ${v.valueFrom.fieldRef.fieldPath} of ${v.name}`);
      env[v.name] = value;
    }
  }
  return { ...env, ...overrides };
}

/**
 * A kubeconfig that authenticates as a ServiceAccount with a token from the TokenRequest API (what the
 * kubelet mounts into the service's pod), for the apiserver at `server` trusted through `caFile`.
 */
export async function serviceAccountKubeConfig(
  admin: KubeClient,
  opts: { namespace: string; name: string; server: string; caFile: string; expirationSeconds?: number },
): Promise<KubeConfig> {
  const review = await admin.create<{ status: { token: string } }>(`/api/v1/namespaces/${opts.namespace}/serviceaccounts/${opts.name}/token`, {
    apiVersion: 'authentication.k8s.io/v1',
    kind: 'TokenRequest',
    spec: { expirationSeconds: opts.expirationSeconds ?? 3600 },
  });
  const kc = new KubeConfig();
  kc.loadFromClusterAndUser(
    { name: 'test-cluster', server: opts.server, caFile: opts.caFile, skipTLSVerify: false },
    { name: `system:serviceaccount:${opts.namespace}:${opts.name}`, token: review.status.token },
  );
  return kc;
}

/** The username the apiserver gives a ServiceAccount's tokens. */
export function serviceAccountUser(namespace: string, name: string): string {
  return `system:serviceaccount:${namespace}:${name}`;
}
