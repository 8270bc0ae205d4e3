// The GraphQL examples of README.md, executed against the real schema and resolvers over ApiServices with an
// in-memory cluster: every field the examples ask for has a value, the same one the reconciler works with.
import { readFileSync } from 'node:fs';
import { graphql } from 'graphql';
import { describe, expect, it } from 'vitest';
import type { Authorizer } from '../auth/authorizer.ts';
import type { Identity } from '../auth/identity.ts';
import type { Caches } from '../operator/caches.ts';
import type { VDISession, VDITemplate } from '../operator/v1alpha1.ts';
import type { KubeClient } from '../src/kube/client.ts';
import { loadSchema } from '../src/graphql/server.ts';
import { ApiServices } from '../src/sessions/services.ts';
import type { UserNamespaces } from '../src/sessions/user-namespaces.ts';
import type { Context } from './context.ts';
import { testReconcilerConfig } from '../test/support/reconciler-config.ts';

const config = testReconcilerConfig({ domain: 'vdi.example.com' });
const schema = loadSchema();
const admin: Identity = { username: 'oidc:admin@example.com', name: 'admin@example.com', groups: ['oidc:vdi-admins'], isAdmin: true };

function template(name: string, resources: VDITemplate['spec']['resources']): VDITemplate {
  return { apiVersion: 'vdi.kasm.io/v1alpha1', kind: 'VDITemplate', metadata: { name }, spec: { image: 'desktop:1', displayName: name, resources } };
}

/** ApiServices over an in-memory cluster that holds `templates` and `sessions`, with a ResourceQuota of `gpus` slices. */
function servicesWith(templates: VDITemplate[], sessions: VDISession[] = [], gpus = 2): ApiServices {
  const stored = new Map(sessions.map((s) => [`${s.metadata.namespace}/${s.metadata.name}`, s]));
  const client = {
    get: async () => ({ status: { hard: { 'count/vdisessions.vdi.kasm.io': '3', 'requests.nvidia.com/gpu': String(gpus) } } }),
    create: async (_path: string, body: VDISession) => ({
      ...body,
      metadata: { ...body.metadata, uid: 'u1', creationTimestamp: '2025-01-01T00:00:00Z' },
    }),
  } as unknown as KubeClient;
  const caches = {
    sessions: {
      list: () => [...stored.values()],
      get: (key: string) => stored.get(key),
      remember: (s: VDISession) => void stored.set(`${s.metadata.namespace}/${s.metadata.name}`, s),
      on: () => () => {},
    },
    templates: { list: () => templates, get: (name: string) => templates.find((t) => t.metadata.name === name) },
  } as unknown as Caches;
  const authorizer = { can: async () => true, key: () => 'k', forget: () => {} } as unknown as Authorizer;
  const namespaces = {
    namespaceOf: (user: string) => `vdi-${user.split('@')[0]}`,
    ensure: async () => false,
    usernamePrefix: 'oidc:',
  } as unknown as UserNamespaces;
  return new ApiServices({ client, caches, authorizer, namespaces, reconcilerConfig: config });
}

async function run(
  services: ApiServices,
  query: string,
): Promise<{ data?: Record<string, unknown> | null; errors?: readonly { message: string; extensions?: Record<string, unknown> }[] }> {
  const contextValue: Context = {
    identity: admin,
    services,
    loaders: { template: { load: async (name: string) => services.caches.templates.get(name) } } as unknown as Context['loaders'],
  };
  const result = await graphql({ schema, source: query, contextValue });
  return JSON.parse(JSON.stringify(result)) as never;
}

/** Every path in `value` that holds null. */
function nulls(value: unknown, path = ''): string[] {
  if (value === null) return [path];
  if (Array.isArray(value)) return value.flatMap((v, i) => nulls(v, `${path}[${i}]`));
  if (typeof value === 'object') return Object.entries(value as object).flatMap(([k, v]) => nulls(v, path ? `${path}.${k}` : k));
  return [];
}

/** The README's example operation that starts with `start` (its GraphQL block is the API's documentation). */
function readmeExample(start: string): string {
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
  const block = /```graphql\n([\s\S]*?)```/.exec(readme)?.[1] ?? '';
  const line = block.split('\n').find((l) => l.startsWith(start));
  if (!line) throw new Error(`README.md has no GraphQL example starting with ${start}`);
  return line;
}

const ubuntu = template('ubuntu-desktop', { defaultGPU: 1, maxGPU: 1, defaultMemory: '8Gi', defaultCPU: 2 });

describe("README's GraphQL examples", () => {
  it('vdiSessions answers the effective resources (the template default GPU) and the URL, no nulls', async () => {
    const session: VDISession = {
      apiVersion: 'vdi.kasm.io/v1alpha1',
      kind: 'VDISession',
      metadata: { name: 'ubuntu-desktop-1a2b3c', namespace: 'vdi-alice', creationTimestamp: '2025-01-01T00:00:00Z' },
      spec: { user: 'alice@example.com', template: 'ubuntu-desktop' },
      status: { phase: 'Starting' },
    };
    const result = await run(servicesWith([ubuntu], [session]), readmeExample('query { vdiSessions'));
    expect(result.errors).toBeUndefined();
    expect(nulls(result.data)).toEqual([]);
    expect(result.data).toEqual({
      vdiSessions: [
        {
          name: 'ubuntu-desktop-1a2b3c',
          status: { phase: 'Starting', url: 'https://ubuntu-desktop-1a2b3c-vdi-alice.vdi.example.com/' },
          spec: { template: 'ubuntu-desktop', resources: { gpu: 1 } },
        },
      ],
    });
  });

  it('createVDISession answers the URL the desktop will have, while the phase says it is not there yet', async () => {
    const services = servicesWith([ubuntu]);
    const mutation = readmeExample('mutation { createVDISession').replace('{ name status { url } }', '{ name status { phase url } }');
    const result = await run(services, mutation);
    expect(result.errors).toBeUndefined();
    expect(nulls(result.data)).toEqual([]);
    const created = result.data?.createVDISession as { name: string; status: { phase: string; url: string } };
    expect(created.status).toEqual({ phase: 'Pending', url: `https://${created.name}-vdi-alice.vdi.example.com/` });
  });
});

describe('effective resources over GraphQL', () => {
  it('shows integer quantities as text, and what the pod gets when the session asked for nothing', async () => {
    const design = template('ubuntu-gpu', { defaultGPU: 1, maxGPU: 1, defaultCPU: 2, maxCPU: 8 });
    const session: VDISession = {
      apiVersion: 'vdi.kasm.io/v1alpha1',
      kind: 'VDISession',
      metadata: { name: 'alice-ubuntu', namespace: 'vdi-alice' },
      spec: { user: 'alice@example.com', template: 'ubuntu-gpu', resources: { cpu: 2 } },
    };
    const result = await run(
      servicesWith([design], [session]),
      'query { sessions(user: "alice@example.com") { spec { resources { gpu memory cpu } } template { resources { defaultCPU maxCPU maxGPU } } } }',
    );
    expect(result.errors).toBeUndefined();
    expect(result.data).toEqual({
      sessions: [{ spec: { resources: { gpu: 1, memory: '8Gi', cpu: '2' } }, template: { resources: { defaultCPU: '2', maxCPU: '8', maxGPU: 1 } } }],
    });
  });

  it('reports as maxGPU the limit the reconciler enforces, not a larger template value', async () => {
    const old = template('old', { defaultGPU: 1, maxGPU: 2 });
    const result = await run(servicesWith([old]), 'query { template(name: "old") { resources { defaultGPU maxGPU } } }');
    expect(result.data).toEqual({ template: { resources: { defaultGPU: 1, maxGPU: 1 } } });
  });

  it('takes a quantity as an integer or a string on input, and refuses one beyond the template with BAD_USER_INPUT', async () => {
    const t = template('t', { defaultGPU: 0, maxGPU: 1, maxCPU: 8 });
    const ok = await run(
      servicesWith([t]),
      'mutation { createVDISession(input: {template: "t", resources: {cpu: 2, memory: "4Gi"}}) { spec { resources { cpu memory } } } }',
    );
    expect(ok.errors).toBeUndefined();
    expect(ok.data).toEqual({ createVDISession: { spec: { resources: { cpu: '2', memory: '4Gi' } } } });
    const tooMuch = await run(servicesWith([t]), 'mutation { createVDISession(input: {template: "t", resources: {cpu: 9}}) { name } }');
    expect(tooMuch.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
  });
});

describe('GPU quota', () => {
  const cpuOnly = template('cpu-only', { defaultGPU: 0, maxGPU: 0 });
  const mine = (name: string, tpl: string): VDISession => ({
    apiVersion: 'vdi.kasm.io/v1alpha1',
    kind: 'VDISession',
    metadata: { name, namespace: 'vdi-admin' },
    spec: { user: 'admin@example.com', template: tpl },
    status: { phase: 'Running' },
  });

  it('counts sessions of a CPU-only template as no slice in me.quota', async () => {
    const services = servicesWith([cpuOnly, ubuntu], [mine('a', 'cpu-only'), mine('b', 'cpu-only'), mine('c', 'ubuntu-desktop')]);
    expect((await services.quota('vdi-admin')).gpus).toEqual({ used: 1, limit: 2 });
  });

  it('admits a GPU desktop beside CPU-only ones, and refuses the slice the quota does not hold (QUOTA_EXCEEDED)', async () => {
    const services = servicesWith([cpuOnly, ubuntu], [mine('a', 'cpu-only'), mine('b', 'cpu-only')], 1);
    const first = await run(
      services,
      'mutation { createVDISession(input: {template: "ubuntu-desktop", name: "g1"}) { spec { resources { gpu } } } }',
    );
    expect(first.errors).toBeUndefined();
    expect(first.data).toEqual({ createVDISession: { spec: { resources: { gpu: 1 } } } });
    const second = await run(services, 'mutation { createVDISession(input: {template: "ubuntu-desktop", name: "g2"}) { name } }');
    expect(second.errors?.[0]?.extensions?.code).toBe('QUOTA_EXCEEDED');
  });
});
