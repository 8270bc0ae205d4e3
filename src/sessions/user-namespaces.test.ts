import { describe, expect, it } from 'vitest';
import { loadConfig } from '../config.ts';
import { KubeError, type KubeClient } from '../kube/client.ts';
import { UserNamespaces, type ProvisionedKind } from './user-namespaces.ts';

type Obj = { metadata: { name: string; annotations?: Record<string, string> } } & Record<string, unknown>;

/** An apiserver's object store as far as provisioning uses it: create, JSON patch (all or nothing), apply. */
function fakeApiserver() {
  const objects = new Map<string, Obj>();
  const at = (path: string) => path.replace(/\?.*$/, '');
  const pointer = (obj: unknown, path: string): [Record<string, unknown> | undefined, string] => {
    const parts = path
      .split('/')
      .slice(1)
      .map((p) => p.replaceAll('~1', '/').replaceAll('~0', '~'));
    let parent = obj as Record<string, unknown> | undefined;
    for (const part of parts.slice(0, -1)) parent = parent?.[part] as Record<string, unknown> | undefined;
    return [parent, parts.at(-1)!];
  };
  const client = {
    async create(collection: string, body: Obj) {
      const path = `${at(collection)}/${body.metadata.name}`;
      if (objects.has(path)) throw new KubeError(409, 'AlreadyExists', 'already exists');
      objects.set(path, structuredClone(body));
      return body;
    },
    async jsonPatch(path: string, operations: { op: string; path: string; value: unknown }[]) {
      const current = objects.get(at(path));
      if (!current) throw new KubeError(404, 'NotFound', 'not found');
      const next = structuredClone(current);
      for (const op of operations) {
        const [parent, key] = pointer(next, op.path);
        if (op.op === 'test' && JSON.stringify(parent?.[key]) !== JSON.stringify(op.value)) throw new KubeError(422, 'Invalid', 'test failed');
        if (op.op === 'replace' || op.op === 'add') parent![key] = op.value;
      }
      objects.set(at(path), next);
      return next;
    },
    // What force-applying did before: the caller's fields win, whoever owned the object.
    async apply(path: string, body: Obj) {
      objects.set(at(path), { ...(objects.get(at(path)) ?? {}), ...structuredClone(body) });
      return body;
    },
  };
  return { objects, client: client as unknown as KubeClient };
}

const config = loadConfig({ OIDC_ISSUER_URL: 'https://issuer.example', VDI_QUOTA_SESSIONS: '3', VDI_QUOTA_GPUS: '2' }, []);

function namespaces(client: KubeClient) {
  const refused: ProvisionedKind[] = [];
  const warnings: unknown[] = [];
  const users = new UserNamespaces(client, config, {
    log: { warn: (fields: unknown) => void warnings.push(fields) } as never,
    onTakeoverRefused: (kind) => refused.push(kind),
  });
  return { users, refused, warnings };
}

describe('UserNamespaces.ensure', () => {
  it("creates the namespace, RoleBinding and quota with the owner's exact name on each", async () => {
    const { objects, client } = fakeApiserver();
    const { users } = namespaces(client);
    expect(await users.ensure({ name: 'josé@example.com' })).toBe(true);
    const ns = users.namespaceOf('josé@example.com');
    const owners = [...objects.values()].map((o) => o.metadata.annotations?.['vdi.kasm.io/user']);
    expect(owners).toEqual(['josé@example.com', 'josé@example.com', 'josé@example.com']);
    expect(objects.get(`/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/rolebindings/vdi-user`)).toMatchObject({
      subjects: [{ kind: 'User', name: 'oidc:josé@example.com' }],
    });
  });

  it("keeps the owner's own objects and restores the binding to the owner alone", async () => {
    const { objects, client } = fakeApiserver();
    await namespaces(client).users.ensure({ name: 'alice@example.com' });
    const ns = namespaces(client).users.namespaceOf('alice@example.com');
    const binding = objects.get(`/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/rolebindings/vdi-user`)!;
    (binding.subjects as unknown[]).push({ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: 'oidc:mallory@example.com' });
    // A new process (nothing remembered) provisions alice again.
    const { users, refused } = namespaces(client);
    await users.ensure({ name: 'alice@example.com' });
    expect(refused).toEqual([]);
    expect(objects.get(`/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/rolebindings/vdi-user`)!.subjects).toEqual([
      { apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: 'oidc:alice@example.com' },
    ]);
  });

  it.each([
    ['another user', { 'vdi.kasm.io/user': 'alice@example.com' }],
    ['no one (a namespace made by hand)', undefined],
    ['a name that differs only in case', { 'vdi.kasm.io/user': 'Bob@example.com' }],
  ])('refuses, changes nothing, logs and counts when the namespace belongs to %s', async (_case, annotations) => {
    const { objects, client } = fakeApiserver();
    const { users, refused, warnings } = namespaces(client);
    // Objects at the name bob's namespace would have (a hash collision, or someone else's namespace).
    const ns = users.namespaceOf('bob@example.com');
    objects.set(`/api/v1/namespaces/${ns}`, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns, ...(annotations && { annotations }) } });
    objects.set(`/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/rolebindings/vdi-user`, {
      metadata: { name: 'vdi-user', ...(annotations && { annotations }) },
      subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: 'oidc:alice@example.com' }],
    });
    const before = structuredClone([...objects]);
    const failure = await users.ensure({ name: 'bob@example.com' }).then(
      () => undefined,
      (err: Error & { extensions?: { code?: string } }) => err,
    );
    expect(failure?.extensions?.code).toBe('FORBIDDEN');
    expect([...objects]).toEqual(before);
    expect(refused).toEqual(['Namespace']);
    expect(warnings).toEqual([expect.objectContaining({ kind: 'Namespace', name: ns, user: 'bob@example.com' })]);
  });

  it("refuses a RoleBinding or quota that another user owns inside the caller's own namespace", async () => {
    const { objects, client } = fakeApiserver();
    const { users, refused } = namespaces(client);
    const ns = users.namespaceOf('bob@example.com');
    objects.set(`/api/v1/namespaces/${ns}`, { metadata: { name: ns, annotations: { 'vdi.kasm.io/user': 'bob@example.com' } } });
    objects.set(`/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/rolebindings/vdi-user`, {
      metadata: { name: 'vdi-user', annotations: { 'vdi.kasm.io/user': 'alice@example.com' } },
      subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: 'oidc:alice@example.com' }],
    });
    const before = structuredClone([...objects]);
    await expect(users.ensure({ name: 'bob@example.com' })).rejects.toMatchObject({ extensions: { code: 'FORBIDDEN' } });
    expect([...objects]).toEqual(before);
    expect(refused).toEqual(['RoleBinding']);
  });
});
