// Issue #20 on the real control plane: one verified identity, one namespace, exactly the bytes that were
// verified. A namespace twin, an identity whose namespace name is held by someone else, non-ASCII names,
// mojibake look-alikes, hostile variables and other spellings of internal routes.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { TestUser } from '../../dev/oidc-issuer.ts';
import { userNamespace } from '../../auth/namespace.ts';
import { QUOTA_NAME } from '../../src/sessions/user-namespaces.ts';
import { adminClient, eventually } from '../support/cluster.ts';
import { startApiStack, type ApiStack } from '../support/api.ts';
import { createTemplate } from '../support/reconciler.ts';

const suffix = randomBytes(3).toString('hex');
const TEMPLATE = `isolation-${suffix}`;
const client = adminClient();
const user = (email: string): TestUser => ({ email, groups: ['vdi-users'] });

// The pair an attack run found against the old 24-bit namespace names (issue #20).
const alice = user('alice@example.com');
const aliceTwin = user('alicE+_!=!~!__++!+-_-@example.com');
// U+00C3 U+00A9 is the Latin-1 reading of the UTF-8 of é: sent as Latin-1 header bytes, it was josé.
const jose = user(`josé-${suffix}@example.com`);
const joseMojibake = user(`josÃ©-${suffix}@example.com`);

let api: ApiStack;

const objectsOf = (ns: string) => [
  `/api/v1/namespaces/${ns}`,
  `/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/rolebindings/vdi-user`,
  `/api/v1/namespaces/${ns}/resourcequotas/${QUOTA_NAME}`,
];
/** What someone owns in their namespace: each object whole (resourceVersion included: any write changes it). */
const snapshot = async (ns: string) => Promise.all(objectsOf(ns).map((path) => client.get(path).catch(() => undefined)));

const create = async (who: TestUser, name: string) =>
  api.gql<{ createVDISession: { name: string; namespace: string } }>(
    await api.token(who),
    `mutation($input: CreateVDISessionInput!) { createVDISession(input: $input) { name namespace } }`,
    { input: { template: TEMPLATE, name, resources: { gpu: 0 } } },
  );

beforeAll(async () => {
  await createTemplate(
    client,
    {
      image: 'ghcr.io/selkies-project/nvidia-egl-desktop:24.04-20241222100454',
      displayName: 'Isolation test',
      resources: { defaultGPU: 0, maxGPU: 1 },
    },
    TEMPLATE,
  );
  api = await startApiStack();
});

afterAll(async () => {
  await api?.stop();
});

describe('namespace twins', () => {
  it("provisioning for alice's twin gets the twin a namespace of its own and changes nothing of alice's", async () => {
    expect((await create(alice, `a-${suffix}`)).errors).toBeUndefined();
    const aliceNs = userNamespace(alice.email);
    const before = await snapshot(aliceNs);
    expect(before.every(Boolean)).toBe(true);

    const twin = await create(aliceTwin, `t-${suffix}`);
    expect(twin.errors).toBeUndefined();
    expect(twin.data!.createVDISession.namespace).not.toBe(aliceNs);
    expect(await snapshot(aliceNs)).toEqual(before);

    const twinToken = await api.token(aliceTwin);
    const theirs = await api.gql<{ sessions: { name: string }[] }>(twinToken, '{ sessions { name } }');
    expect(theirs.data!.sessions.map((s) => s.name)).toEqual([`t-${suffix}`]);
    const hers = await api.gql(twinToken, `{ sessions(user: "${alice.email}") { name } }`);
    expect(hers.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
  });

  it.each([
    ['the namespace', { namespace: 'victim', binding: 'victim' }, 'Namespace'],
    ['the RoleBinding in it', { namespace: 'self', binding: 'victim' }, 'RoleBinding'],
  ] as const)('refuses to take over %s when another identity owns it, and leaves it as it was', async (_case, owners, kind) => {
    // What a hash collision (or an administrator's namespace) would look like: the name provisioning would
    // use, held by someone else.
    const victim = `victim-${kind.toLowerCase()}-${suffix}@example.com`;
    const mallory = user(`mallory-${kind.toLowerCase()}-${suffix}@example.com`);
    const ns = userNamespace(mallory.email);
    const owner = (who: 'victim' | 'self') => ({ 'vdi.kasm.io/user': who === 'victim' ? victim : mallory.email });
    await client.create('/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns, annotations: owner(owners.namespace) } });
    await client.create(`/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/rolebindings`, {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: { name: 'vdi-user', annotations: owner(owners.binding) },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'vdi-user' },
      subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: `oidc:${victim}` }],
    });
    const before = await snapshot(ns);

    const res = await create(mallory, `m-${suffix}`);
    expect(res.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect(await snapshot(ns)).toEqual(before);
    const metrics = await (await fetch(`${api.url}/metrics`)).text();
    expect(metrics).toMatch(new RegExp(`^vdi_namespace_takeovers_refused_total\\{kind="${kind}"\\} [1-9]`, 'm'));
    await client.delete(`/api/v1/namespaces/${ns}`);
  });
});

describe('non-ASCII identities', () => {
  const selfReview = async (username: string, groups: string[]) =>
    (
      await client.request<{ status: { userInfo: { username: string; groups: string[] } } }>({
        method: 'POST',
        path: '/apis/authentication.k8s.io/v1/selfsubjectreviews',
        body: { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' },
        as: { username, groups },
      })
    ).status.userInfo;

  it.each([`oidc:${jose.email}`, `oidc:${joseMojibake.email}`, 'oidc:张伟@例え.jp', 'oidc:emoji🖥️@example.com'])(
    'reach the apiserver as exactly themselves: %s',
    async (username) => {
      const seen = await selfReview(username, ['oidc:équipe', 'oidc:vdi-users']);
      expect(seen.username).toBe(username);
      expect(seen.groups).toEqual(expect.arrayContaining(['oidc:équipe', 'oidc:vdi-users']));
    },
  );

  it('may create their own sessions, and a mojibake look-alike can neither see nor end them', async () => {
    const made = await create(jose, `j-${suffix}`);
    expect(made.errors).toBeUndefined();
    const ns = made.data!.createVDISession.namespace;
    expect(ns).toBe(userNamespace(jose.email));
    await eventually(async () => api.service.caches.sessions.get(`${ns}/j-${suffix}`));

    const lookalike = await api.token(joseMojibake);
    const seen = await api.gql(lookalike, `{ sessions(user: "${jose.email}") { name } }`);
    expect(seen.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    const ended = await api.gql(lookalike, `mutation { terminateVDISession(name: "j-${suffix}", user: "${jose.email}") { name } }`);
    expect(ended.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    const extended = await api.gql(lookalike, `mutation { extendVDISession(name: "j-${suffix}", user: "${jose.email}", by: "1h") { name } }`);
    expect(extended.errors?.[0]?.extensions?.code).toMatch(/^(FORBIDDEN|NOT_FOUND)$/);
    const still = await client.get<{ metadata: { deletionTimestamp?: string } }>(
      `/apis/vdi.kasm.io/v1alpha1/namespaces/${ns}/vdisessions/j-${suffix}`,
    );
    expect(still.metadata.deletionTimestamp).toBeUndefined();
  });
});

describe('hostile variables', () => {
  /** JSON text of variables holding 30,000 nested arrays (60 KB, within both transports' size limits), made as text: JSON.stringify of it would overflow this process's stack too. */
  const deepVariables = `{"n":"x","deep":${'['.repeat(30_000)}${']'.repeat(30_000)}}`;

  /** A graphql-transport-ws connection spoken by hand, so the hostile message goes out as written. */
  async function rawSocket(token: string) {
    const socket = new WebSocket(`${api.url.replace('http', 'ws')}/graphql`, 'graphql-transport-ws');
    const messages: { id?: string; type: string; payload?: unknown }[] = [];
    const waiters: (() => void)[] = [];
    let closed: number | undefined;
    socket.on('message', (data) => {
      messages.push(JSON.parse(String(data)));
      waiters.splice(0).forEach((w) => w());
    });
    socket.on('close', (code) => {
      closed = code;
      waiters.splice(0).forEach((w) => w());
    });
    await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));
    const next = async (type: string, id?: string) => {
      for (;;) {
        const found = messages.find((m) => m.type === type && (id === undefined || m.id === id));
        if (found) return found;
        if (closed !== undefined) throw new Error(`socket closed with ${closed}`);
        await new Promise<void>((resolve) => waiters.push(resolve));
      }
    };
    socket.send(JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${token}` } }));
    await next('connection_ack');
    return { socket, next, closed: () => closed };
  }

  it('get the same typed error over HTTP and WebSocket, and the socket stays open', async () => {
    const carol = user(`carol-${suffix}@example.com`);
    expect((await create(carol, `c-${suffix}`)).errors).toBeUndefined();
    const token = await api.token(carol);
    const res = await fetch(`${api.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: `{"query":"query($n: String) { templates { name } }","variables":${deepVariables}}`,
    });
    expect(res.status).toBe(400);
    const http = (await res.json()) as { errors: { message: string; extensions: { code: string } }[] };
    expect(http.errors[0]!.extensions.code).toBe('BAD_USER_INPUT');

    const ws = await rawSocket(token);
    ws.socket.send(`{"id":"deep","type":"subscribe","payload":{"query":"subscription { sessionEvents { type } }","variables":${deepVariables}}}`);
    const refused = (await ws.next('error', 'deep')) as { payload: unknown };
    expect(refused.payload).toEqual([{ message: http.errors[0]!.message, extensions: http.errors[0]!.extensions }]);
    // The same connection still serves: a subscription gets its first event (carol's session).
    ws.socket.send(JSON.stringify({ id: 'ok', type: 'subscribe', payload: { query: 'subscription { sessionEvents { type session { name } } }' } }));
    expect(await ws.next('next', 'ok')).toMatchObject({ payload: { data: { sessionEvents: { type: 'ADDED' } } } });
    expect(ws.closed()).toBeUndefined();
    ws.socket.close();
  });
});

describe('internal routes', () => {
  it.each(['/METRICS', '/Metrics', '/metrics/', '/AUTH/forward', '/Auth/Forward', '/auth/forward/', '/TURN/ns/name/token', '/Turn/ns/name/token'])(
    'answer only as written, not as %s',
    async (path) => {
      const res = await fetch(`${api.url}${path}`, { headers: { accept: 'application/json' } });
      const body = await res.text();
      expect(body).not.toContain('# HELP');
      // forwardAuth and TURN answers (allowed or not) are never cached; nothing else here says no-store.
      expect(res.headers.get('cache-control')).not.toBe('no-store');
    },
  );
});
