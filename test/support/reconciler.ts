// Runs the reconciler in-process for a test (the service in reconciler-only mode, leader election included),
// plus the builders of the objects the reconciler tests write with the Kubernetes client.
import { randomBytes } from 'node:crypto';
import type { KubeConfig } from '@kubernetes/client-node';
import { pino } from 'pino';
import { loadConfig } from '../../src/config.ts';
import { KubeError, type KubeClient } from '../../src/kube/client.ts';
import { startService, type Service } from '../../src/service.ts';
import type { SessionController } from '../../operator/controller.ts';
import {
  API_VERSION,
  SESSION_PLURAL,
  TEMPLATE_PLURAL,
  type VDISession,
  type VDISessionSpec,
  type VDITemplate,
  type VDITemplateSpec,
} from '../../operator/v1alpha1.ts';
import { adminKubeConfig, eventually } from './cluster.ts';

export interface ReconcilerOptions {
  /** Where the leader-election Lease lives: replicas that share it elect one leader. */
  namespace: string;
  identity?: string;
  kubeConfig?: KubeConfig;
  /** Extra environment (VDI_* settings) on top of the test defaults. */
  env?: Record<string, string>;
}

/** Short leases, so a takeover happens within seconds. */
export const TEST_LEASE_ENV = {
  VDI_LEASE_DURATION_MS: '3000',
  VDI_RENEW_DEADLINE_MS: '2000',
  VDI_RETRY_PERIOD_MS: '300',
};

/** The environment of a reconciler-only replica for tests (also used by the child-process runner). */
export function reconcilerEnv(namespace: string, identity: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    VDI_MODE: 'reconciler',
    PORT: '0',
    HOST: '127.0.0.1',
    LOG_LEVEL: process.env.VDI_TEST_LOG_LEVEL ?? 'silent',
    POD_NAMESPACE: namespace,
    POD_NAME: identity,
    VDI_INTERNAL_URL: 'http://vdi-operator.vdi-system.svc:8080',
    ...TEST_LEASE_ENV,
    ...extra,
  };
}

export async function startReconciler(opts: ReconcilerOptions): Promise<Service> {
  const identity = opts.identity ?? `reconciler-${randomBytes(3).toString('hex')}`;
  const env = reconcilerEnv(opts.namespace, identity, opts.env);
  const config = loadConfig(env, []);
  const log = pino({ level: env.LOG_LEVEL, base: { identity } });
  return await startService({ config, kubeConfig: opts.kubeConfig ?? adminKubeConfig(), log });
}

/** Waits until the replica leads and its controller runs (the caches are synced by then). */
export async function leadingController(service: Service, timeoutMs = 30_000): Promise<SessionController> {
  return await eventually(async () => (service.isLeader() ? service.controller() : undefined), timeoutMs);
}

export const sessionsPath = (ns: string) => `/apis/${API_VERSION}/namespaces/${ns}/${SESSION_PLURAL}`;
export const sessionPath = (ns: string, name: string) => `${sessionsPath(ns)}/${name}`;
export const templatePath = (name: string) => `/apis/${API_VERSION}/${TEMPLATE_PLURAL}/${name}`;

/** A template with a unique name (templates are cluster-scoped and test files share the cluster). */
export function templateManifest(spec: Partial<VDITemplateSpec> = {}, name = `desktop-${randomBytes(3).toString('hex')}`): VDITemplate {
  return {
    apiVersion: API_VERSION,
    kind: 'VDITemplate',
    metadata: { name },
    spec: {
      image: 'ghcr.io/selkies-project/nvidia-egl-desktop:24.04-20241222100454',
      displayName: 'Test Desktop',
      resources: { defaultGPU: 1, maxGPU: 1, defaultMemory: '2Gi', maxMemory: '16Gi', defaultCPU: '1', maxCPU: '8' },
      defaultTimeout: '1h',
      maxTimeout: '24h',
      persistence: { defaultEnabled: false, defaultSize: '1Gi', maxSize: '10Gi' },
      ...spec,
    },
  };
}

export async function createTemplate(client: KubeClient, spec: Partial<VDITemplateSpec> = {}, name?: string): Promise<VDITemplate> {
  const template = templateManifest(spec, name);
  return await client.create<VDITemplate>(`/apis/${API_VERSION}/${TEMPLATE_PLURAL}`, template);
}

export async function createSession(
  client: KubeClient,
  namespace: string,
  name: string,
  spec: Partial<VDISessionSpec> & { template: string },
): Promise<VDISession> {
  return await client.create<VDISession>(sessionsPath(namespace), {
    apiVersion: API_VERSION,
    kind: 'VDISession',
    metadata: { name, namespace },
    spec: { user: 'alice@example.com', ...spec },
  });
}

export async function getSession(client: KubeClient, namespace: string, name: string): Promise<VDISession | undefined> {
  return await getOrUndefined<VDISession>(client, sessionPath(namespace, name));
}

/** The object, or undefined when the apiserver answers 404. */
export async function getOrUndefined<T>(client: KubeClient, path: string): Promise<T | undefined> {
  try {
    return await client.get<T>(path);
  } catch (err) {
    if (err instanceof KubeError && err.status === 404) return undefined;
    throw err;
  }
}

/** Waits until the session's status satisfies `accept` and returns the session. */
export async function sessionWhere(
  client: KubeClient,
  namespace: string,
  name: string,
  accept: (session: VDISession) => boolean,
  timeoutMs = 30_000,
): Promise<VDISession> {
  return await eventually(async () => {
    const session = await getSession(client, namespace, name);
    return session && accept(session) ? session : undefined;
  }, timeoutMs);
}

export async function sessionInPhase(client: KubeClient, namespace: string, name: string, phase: string, timeoutMs = 30_000): Promise<VDISession> {
  return await sessionWhere(client, namespace, name, (s) => s.status?.phase === phase, timeoutMs);
}

/** Waits until the path answers 404. */
export async function gone(client: KubeClient, path: string, timeoutMs = 30_000): Promise<void> {
  await eventually(async () => (await getOrUndefined(client, path)) === undefined, timeoutMs);
}

/**
 * Deletes the namespace's sessions, waits until they are gone (a reconciler must still run: it lifts their
 * finalizers), then deletes the namespace. Sessions left behind would be finalized by the next test file's
 * reconciler, and charged to its figures.
 */
export async function deleteNamespace(client: KubeClient, namespace: string): Promise<void> {
  await client.request({ method: 'DELETE', path: sessionsPath(namespace) }).catch(() => undefined);
  await eventually(async () => (await client.list(sessionsPath(namespace))).items.length === 0, 60_000).catch(() => undefined);
  await client.delete(`/api/v1/namespaces/${namespace}`).catch(() => undefined);
}

/** The first path at which `actual` lacks a value of `desired` (the diagnosis when containsDesired says no). */
export function firstDifference(actual: unknown, desired: unknown, path = ''): string | undefined {
  if (desired === null || typeof desired !== 'object') {
    return actual === desired || String(actual) === String(desired) ? undefined : `${path}: ${JSON.stringify(actual)} ≠ ${JSON.stringify(desired)}`;
  }
  if (Array.isArray(desired)) {
    if (!Array.isArray(actual) || actual.length !== desired.length) return `${path}: ${JSON.stringify(actual)} ≠ ${JSON.stringify(desired)}`;
    for (const [i, d] of desired.entries()) {
      const diff = firstDifference(actual[i], d, `${path}[${i}]`);
      if (diff) return diff;
    }
    return undefined;
  }
  if (actual === null || typeof actual !== 'object') return `${path}: ${JSON.stringify(actual)} is not an object`;
  for (const [k, v] of Object.entries(desired)) {
    if (v === undefined) continue;
    const diff = firstDifference((actual as Record<string, unknown>)[k], v, `${path}.${k}`);
    if (diff) return diff;
  }
  return undefined;
}
