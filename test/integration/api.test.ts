// The GraphQL API on the real control plane, with the real OIDC provider and a real graphql-ws client:
// who may see and do what, decided by Kubernetes RBAC, for GraphQL and kubectl alike.
import { randomBytes } from 'node:crypto';
import { SignJWT, base64url, importJWK, exportSPKI } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOidcIssuer, type TestUser } from '../../dev/oidc-issuer.ts';
import { AUDIENCE, collect, startApiStack, type ApiStack } from '../support/api.ts';
import { createTemplate } from '../support/reconciler.ts';
import { adminClient, eventually, kubectl } from '../support/cluster.ts';
import { userNamespace } from '../../auth/namespace.ts';
import { parseDuration } from '../../formats/duration.ts';
import { FINALIZER } from '../../operator/v1alpha1.ts';

const suffix = randomBytes(3).toString('hex');
const alice: TestUser = { email: `alice-${suffix}@example.com`, groups: ['vdi-users'] };
const bob: TestUser = { email: `bob-${suffix}@example.com`, groups: ['vdi-users'] };
const admin: TestUser = { email: `admin-${suffix}@example.com`, groups: ['vdi-admins', 'staff'] };
const TEMPLATE = `api-desktop-${suffix}`;

let api: ApiStack;
let tokens: Record<'alice' | 'bob' | 'admin', string>;
const client = adminClient();

const SESSION_FIELDS = 'name namespace user status { phase reason url } spec { template resources { gpu } }';

beforeAll(async () => {
  await createTemplate(
    client,
    {
      image: 'ghcr.io/selkies-project/nvidia-egl-desktop:24.04-20241222100454',
      displayName: 'API test desktop',
      resources: { defaultGPU: 1, maxGPU: 1, defaultMemory: '4Gi', maxMemory: '8Gi', defaultCPU: '2', maxCPU: '4' },
      defaultTimeout: '1h',
      maxTimeout: '4h',
      persistence: { defaultEnabled: false },
    },
    TEMPLATE,
  );
  api = await startApiStack({ VDI_QUOTA_SESSIONS: '4', VDI_QUOTA_GPUS: '3', OIDC_CLOCK_TOLERANCE_SECONDS: '0' });
  tokens = { alice: await api.token(alice), bob: await api.token(bob), admin: await api.token(admin) };
});

afterAll(async () => {
  await api?.stop();
});

const create = (token: string, input: Record<string, unknown>) =>
  api.gql<{ createVDISession: { name: string; namespace: string; user: string } }>(
    token,
    `mutation($input: CreateVDISessionInput!) { createVDISession(input: $input) { ${SESSION_FIELDS} } }`,
    { input: { template: TEMPLATE, ...input } },
  );

describe('identity', () => {
  it('maps the token to the cluster identity with the OIDC prefix', async () => {
    const res = await api.gql<{ me: Record<string, unknown> }>(tokens.admin, '{ me { username name groups isAdmin namespace } }');
    expect(res.errors).toBeUndefined();
    expect(res.data!.me).toEqual({
      username: `oidc:${admin.email}`,
      name: admin.email,
      groups: ['oidc:vdi-admins', 'oidc:staff'],
      isAdmin: true,
      namespace: userNamespace(admin.email),
    });
  });

  describe('refuses bad tokens with UNAUTHENTICATED (HTTP 401) and on the WebSocket', () => {
    const forge = async (header: Record<string, unknown>, claims: Record<string, unknown>, key?: Uint8Array) => {
      if (!key) return `${base64url.encode(JSON.stringify(header))}.${base64url.encode(JSON.stringify(claims))}.`;
      return await new SignJWT(claims as never).setProtectedHeader(header as never).sign(key);
    };
    const cases: [string, () => Promise<string | undefined>][] = [
      ['missing', async () => undefined],
      ['garbage', async () => 'not-a-jwt'],
      [
        'expired',
        async () => {
          const t = await api.token(alice, { expiresInSeconds: 1 });
          await new Promise((r) => setTimeout(r, 2100));
          return t;
        },
      ],
      [
        'from another issuer',
        async () => {
          const other = await startOidcIssuer({ audience: AUDIENCE });
          try {
            return await other.tokenFor(alice);
          } finally {
            await other.close();
          }
        },
      ],
      [
        'badly signed',
        async () => {
          const [h, p, s] = (await api.token(alice)).split('.') as [string, string, string];
          return `${h}.${p}.${s.slice(0, -6)}${s.slice(-6).split('').reverse().join('')}`;
        },
      ],
      [
        'alg none',
        async () => {
          const now = Math.floor(Date.now() / 1000);
          return await forge({ alg: 'none', typ: 'JWT' }, { iss: api.issuer.issuer, aud: AUDIENCE, exp: now + 300, iat: now, email: alice.email });
        },
      ],
      [
        'HS256 signed with the public key',
        async () => {
          const jwks = (await (await fetch(api.issuer.jwksUri)).json()) as { keys: ({ kid: string } & Record<string, unknown>)[] };
          const jwk = jwks.keys[0]!;
          const pem = await exportSPKI((await importJWK(jwk as never, 'RS256')) as never);
          const now = Math.floor(Date.now() / 1000);
          return await forge(
            { alg: 'HS256', kid: jwk.kid },
            { iss: api.issuer.issuer, aud: AUDIENCE, exp: now + 300, iat: now, email: alice.email },
            new TextEncoder().encode(pem),
          );
        },
      ],
    ];
    for (const [name, make] of cases) {
      it(name, async () => {
        const token = await make();
        const res = await api.gql(token, '{ me { name } }');
        expect(res.status).toBe(401);
        expect(res.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
        expect(res.data ?? null).toBeNull();
        const closed = await new Promise<number>((resolve) => {
          const ws = api.ws(token, (code) => resolve(code));
          ws.subscribe({ query: 'subscription { sessionEvents { type } }' }, { next: () => {}, error: () => {}, complete: () => {} });
        });
        expect(closed).toBe(4401);
      });
    }

    it('for another audience', async () => {
      const other = await startApiStack({ OIDC_AUDIENCE: 'urn:vdi-operator:elsewhere', VDI_MODE: 'api' }, { issuer: api.issuer });
      try {
        const res = await other.gql(tokens.alice, '{ me { name } }');
        expect(res.status).toBe(401);
        expect(res.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
      } finally {
        await other.stop();
      }
    });
  });
});

describe('the design examples', () => {
  it('creates a session for yourself and lists it with vdiSessions(user:)', async () => {
    const res = await create(tokens.alice, { user: alice.email });
    expect(res.errors).toBeUndefined();
    const { name } = res.data!.createVDISession;
    const list = await api.gql<{
      vdiSessions: { name: string; status: { phase: string; url: string | null }; spec: { template: string; resources: { gpu: number | null } } }[];
    }>(tokens.alice, `{ vdiSessions(user: "${alice.email}") { name status { phase url } spec { template resources { gpu } } } }`);
    expect(list.errors).toBeUndefined();
    expect(list.data!.vdiSessions.map((s) => s.name)).toContain(name);
    // The reconciler brings it to Running with a URL.
    const running = await eventually(async () => {
      const r = await api.gql<{ session: { status: { phase: string; url: string | null } } }>(
        tokens.alice,
        `{ session(name: "${name}") { status { phase url } } }`,
      );
      return r.data?.session?.status.phase === 'Running' ? r.data.session : undefined;
    }, 60_000);
    expect(running.status.url).toMatch(/^http:\/\/.+\.vdi\.test\/$/);
  });
});

describe('per-user RBAC', () => {
  let aliceSession: string;

  beforeAll(async () => {
    const res = await create(tokens.alice, { name: `mine-${suffix}`, resources: { gpu: 0 } });
    expect(res.errors).toBeUndefined();
    aliceSession = res.data!.createVDISession.name;
  });

  it("lets nobody else see alice's session, but her and an admin", async () => {
    const q = `{ sessions { name } session(name: "${aliceSession}") { name } }`;
    const own = await api.gql<{ sessions: { name: string }[]; session: { name: string } | null }>(tokens.alice, q);
    expect(own.data!.sessions.map((s) => s.name)).toContain(aliceSession);
    expect(own.data!.session?.name).toBe(aliceSession);

    const bobs = await api.gql<{ sessions: { name: string }[]; session: unknown }>(tokens.bob, q);
    expect(bobs.data!.sessions.map((s) => s.name)).not.toContain(aliceSession);
    expect(bobs.data!.session).toBeNull();

    const byUser = await api.gql(tokens.bob, `{ sessions(user: "${alice.email}") { name } }`);
    expect(byUser.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    const all = await api.gql(tokens.bob, '{ sessions(allUsers: true) { name } }');
    expect(all.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');

    const adminView = await api.gql<{ sessions: { name: string; user: string }[] }>(
      tokens.admin,
      `{ sessions(user: "${alice.email}") { name user } }`,
    );
    expect(adminView.data!.sessions).toContainEqual({ name: aliceSession, user: alice.email });
    const adminAll = await api.gql<{ sessions: { name: string }[] }>(tokens.admin, '{ sessions(allUsers: true) { name } }');
    expect(adminAll.data!.sessions.map((s) => s.name)).toContain(aliceSession);
  });

  it('does not let bob create a session for alice, terminate or extend hers', async () => {
    const forged = await create(tokens.bob, { user: alice.email });
    expect(forged.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    const terminate = await api.gql(tokens.bob, `mutation { terminateVDISession(name: "${aliceSession}", user: "${alice.email}") { name } }`);
    expect(terminate.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    const extend = await api.gql(tokens.bob, `mutation { extendVDISession(name: "${aliceSession}", user: "${alice.email}", by: "1h") { name } }`);
    expect(extend.errors?.[0]?.extensions?.code).toMatch(/FORBIDDEN|NOT_FOUND/);
    expect(
      (
        await client.get<{ metadata: { deletionTimestamp?: string } }>(
          `/apis/vdi.kasm.io/v1alpha1/namespaces/${userNamespace(alice.email)}/vdisessions/${aliceSession}`,
        )
      ).metadata.deletionTimestamp,
    ).toBeUndefined();
  });

  it('gives kubectl the same answers for the same identities', async () => {
    const ns = userNamespace(alice.email);
    const as = (u: TestUser) => ({ as: `oidc:${u.email}`, groups: (u.groups ?? []).map((g) => `oidc:${g}`) });
    const own = await kubectl(['get', 'vdis', '-n', ns, '-o', 'name'], as(alice));
    expect(own.code).toBe(0);
    expect(own.stdout).toContain(`vdisession.vdi.kasm.io/${aliceSession}`);
    const bobGet = await kubectl(['get', 'vdis', '-n', ns], as(bob));
    expect(bobGet.code).not.toBe(0);
    expect(bobGet.stderr).toContain('forbidden');
    const bobDelete = await kubectl(['delete', 'vdis', aliceSession, '-n', ns], as(bob));
    expect(bobDelete.stderr).toContain('forbidden');
    const adminGet = await kubectl(['get', 'vdis', '-n', ns, '-o', 'name'], as(admin));
    expect(adminGet.stdout).toContain(aliceSession);
    // The admission policy stops alice from forging spec.user with kubectl, in her own namespace.
    const forged = await kubectl(['apply', '-f', '-'], {
      ...as(alice),
      input: JSON.stringify({
        apiVersion: 'vdi.kasm.io/v1alpha1',
        kind: 'VDISession',
        metadata: { name: `forged-${suffix}`, namespace: ns },
        spec: { user: bob.email, template: TEMPLATE },
      }),
    });
    expect(forged.code).not.toBe(0);
    expect(forged.stderr).toContain('spec.user must be your own username');
  });

  it("creates a session with the reconciler's finalizer already on it, so the reconciler spends no write adding it", async () => {
    // A user of its own: the other tests count alice's sessions against her quota.
    const finn: TestUser = { email: `finn-${suffix}@example.com`, groups: ['vdi-users'] };
    const name = `born-finalized-${suffix}`;
    expect((await create(await api.token(finn), { name, resources: { gpu: 0 } })).errors).toBeUndefined();
    const ns = userNamespace(finn.email);
    const stored = await client.get<{ metadata: { finalizers?: string[] } }>(`/apis/vdi.kasm.io/v1alpha1/namespaces/${ns}/vdisessions/${name}`);
    expect(stored.metadata.finalizers).toEqual([FINALIZER]);
    const controller = api.service.controller()!;
    await eventually(async () => (controller.sessionWritesByKind(`${ns}/${name}`).Pod ?? 0) === 1);
    expect(controller.sessionWritesByKind(`${ns}/${name}`).finalizer).toBeUndefined();
  });

  it('lets an admin create a session for another user and end it', async () => {
    const res = await create(tokens.admin, { user: bob.email, name: `for-bob-${suffix}` });
    expect(res.errors).toBeUndefined();
    expect(res.data!.createVDISession).toMatchObject({ user: bob.email, namespace: userNamespace(bob.email) });
    // Served from the watch cache: the new session shows up as soon as its watch event arrives.
    await eventually(async () => {
      const bobSees = await api.gql<{ sessions: { name: string }[] }>(tokens.bob, '{ sessions { name } }');
      return bobSees.data!.sessions.some((s) => s.name === `for-bob-${suffix}`);
    });
    const ended = await api.gql<{ terminateVDISession: { status: { phase: string } } }>(
      tokens.admin,
      `mutation { terminateVDISession(name: "for-bob-${suffix}", user: "${bob.email}") { status { phase } } }`,
    );
    expect(ended.errors).toBeUndefined();
    expect(ended.data!.terminateVDISession.status.phase).toBe('Terminating');
  });

  it("streams only one's own sessions; bob's subscription never carries alice's session", async () => {
    const bobWs = api.ws(tokens.bob);
    const bobEvents: { sessionEvents: { type: string; session: { name: string; user: string } } }[] = [];
    const bobDone = collect<(typeof bobEvents)[number]>(bobWs, 'subscription { sessionEvents { type session { name user } } }', {}, (events) => {
      bobEvents.push(...events.slice(bobEvents.length));
      return events.some((e) => e.sessionEvents.session.name === `bob-marker-${suffix}`);
    });
    const aliceWs = api.ws(tokens.alice);
    const aliceDone = collect<{ sessionEvents: { type: string; session: { name: string } } }>(
      aliceWs,
      'subscription { sessionEvents { type session { name } } }',
      {},
      (events) => events.some((e) => e.sessionEvents.session.name === `alice-marker-${suffix}`),
    );
    await new Promise((r) => setTimeout(r, 300));
    expect((await create(tokens.alice, { name: `alice-marker-${suffix}`, resources: { gpu: 0 } })).errors).toBeUndefined();
    expect((await create(tokens.bob, { name: `bob-marker-${suffix}`, resources: { gpu: 0 } })).errors).toBeUndefined();
    const [bobSeen, aliceSeen] = await Promise.all([bobDone, aliceDone]);
    expect(aliceSeen.map((e) => e.sessionEvents.session.name)).toContain(aliceSession);
    expect(bobSeen.every((e) => e.sessionEvents.session.user === bob.email)).toBe(true);
    const forbidden = await collect(bobWs, `subscription { sessionEvents(user: "${alice.email}") { type } }`, {}, () => true).catch(
      (e: { errors?: { extensions?: { code?: string } }[] }) => e.errors,
    );
    expect((forbidden as { extensions?: { code?: string } }[])[0]?.extensions?.code).toBe('FORBIDDEN');
  });
});

describe('sessions made with kubectl', () => {
  it('appear in sessions, and their status changes arrive on the subscription', async () => {
    const carol: TestUser = { email: `carol-${suffix}@example.com`, groups: ['vdi-users'] };
    const token = await api.token(carol);
    const ns = userNamespace(carol.email);
    // Provision carol's namespace the way the API would on first use, then let her use kubectl.
    await api.service.caches.sessions.waitForSync();
    const ws = api.ws(token);
    const statusDone = collect<{ sessionStatus: { type: string; session: { status: { phase: string } } } }>(
      ws,
      'subscription($name: String!) { sessionStatus(name: $name) { type session { status { phase } } } }',
      { name: `kubectl-${suffix}` },
      (events) => events.some((e) => e.sessionStatus.session.status.phase === 'Running'),
      60_000,
    );
    expect((await api.gql(token, `{ me { namespace } }`)).errors).toBeUndefined();
    const created = await create(token, { name: `first-${suffix}` });
    expect(created.errors).toBeUndefined();
    const res = await kubectl(['apply', '-f', '-'], {
      as: `oidc:${carol.email}`,
      groups: ['oidc:vdi-users'],
      input: JSON.stringify({
        apiVersion: 'vdi.kasm.io/v1alpha1',
        kind: 'VDISession',
        metadata: { name: `kubectl-${suffix}`, namespace: ns },
        spec: { user: carol.email, template: TEMPLATE, resources: { gpu: 0 } },
      }),
    });
    expect(res.stderr).toBe('');
    const listed = await eventually(async () => {
      const r = await api.gql<{ sessions: { name: string }[] }>(token, '{ sessions { name } }');
      return r.data?.sessions.some((s) => s.name === `kubectl-${suffix}`) ? r.data.sessions : undefined;
    });
    expect(listed.map((s) => s.name)).toContain(`kubectl-${suffix}`);
    const events = await statusDone;
    expect(events[events.length - 1]!.sessionStatus.session.status.phase).toBe('Running');
    expect(events.map((e) => e.sessionStatus.type)).toContain('ADDED');
  });
});

describe('quota', () => {
  it('shows the quota the namespace will get before first use (no ResourceQuota yet), and the namespace quota after it', async () => {
    const gina: TestUser = { email: `gina-${suffix}@example.com`, groups: ['vdi-users'] };
    const token = await api.token(gina);
    const quota = async () => {
      const res = await api.gql<{ me: { quota: unknown } }>(token, '{ me { quota { sessions { used limit } gpus { used limit } } } }');
      expect(res.errors).toBeUndefined();
      return res.data!.me.quota;
    };
    expect(await quota()).toEqual({ sessions: { used: 0, limit: 4 }, gpus: { used: 0, limit: 3 } });
    expect((await create(token, { name: `g1-${suffix}`, resources: { gpu: 1 } })).errors).toBeUndefined();
    expect(await quota()).toEqual({ sessions: { used: 1, limit: 4 }, gpus: { used: 1, limit: 3 } });
  });

  it('refuses with QUOTA_EXCEEDED and creates nothing when the GPU quota is spent', async () => {
    const dave: TestUser = { email: `dave-${suffix}@example.com`, groups: ['vdi-users'] };
    const token = await api.token(dave);
    // A desktop holds one slice at most: three of them spend the quota of 3.
    for (const n of [1, 2, 3]) {
      expect((await create(token, { name: `d${n}-${suffix}`, resources: { gpu: 1 } })).errors).toBeUndefined();
      await eventually(async () => api.service.caches.sessions.get(`${userNamespace(dave.email)}/d${n}-${suffix}`));
    }
    const over = await create(token, { name: `d4-${suffix}`, resources: { gpu: 1 } });
    expect(over.errors?.[0]?.extensions?.code).toBe('QUOTA_EXCEEDED');
    const list = await client.list(`/apis/vdi.kasm.io/v1alpha1/namespaces/${userNamespace(dave.email)}/vdisessions`);
    expect(list.items).toHaveLength(3);
  });

  it('refuses with QUOTA_EXCEEDED when the session count quota is spent (the apiserver decides)', async () => {
    const erin: TestUser = { email: `erin-${suffix}@example.com`, groups: ['vdi-users'] };
    const token = await api.token(erin);
    for (let i = 0; i < 4; i++) expect((await create(token, { name: `e${i}-${suffix}`, resources: { gpu: 0 } })).errors).toBeUndefined();
    const ns = userNamespace(erin.email);
    // Quota usage is counted by the controller-manager; wait until it has seen all three.
    await eventually(async () => {
      const q = await client.get<{ status?: { used?: Record<string, string> } }>(`/api/v1/namespaces/${ns}/resourcequotas/vdi-quota`);
      return q.status?.used?.['count/vdisessions.vdi.kasm.io'] === '4';
    });
    const over = await create(token, { name: `e4-${suffix}`, resources: { gpu: 0 } });
    expect(over.errors?.[0]?.extensions?.code).toBe('QUOTA_EXCEEDED');
    expect((await client.list(`/apis/vdi.kasm.io/v1alpha1/namespaces/${ns}/vdisessions`)).items).toHaveLength(4);
  });
});

describe('bad input', () => {
  it.each([
    ['an unknown template', { template: 'no-such-template' }, 'BAD_USER_INPUT'],
    ['more GPUs than the template allows', { resources: { gpu: 5 } }, 'BAD_USER_INPUT'],
    ['a malformed timeout', { timeout: 'eight hours' }, 'BAD_USER_INPUT'],
    ['a timeout above the maximum', { timeout: '99h' }, 'BAD_USER_INPUT'],
    ['an invalid name', { name: 'Not_A_Name' }, 'BAD_USER_INPUT'],
  ])('refuses %s with a typed error and writes nothing', async (_what, input, code) => {
    const frank: TestUser = { email: `frank-${suffix}@example.com`, groups: ['vdi-users'] };
    const res = await create(await api.token(frank), input);
    expect(res.errors?.[0]?.extensions?.code).toBe(code);
    expect(res.errors?.[0]?.message).not.toMatch(/Status|apiVersion|at .*\.ts/);
    const list = await client.list(`/apis/vdi.kasm.io/v1alpha1/namespaces/${userNamespace(frank.email)}/vdisessions`).catch(() => ({ items: [] }));
    expect(list.items).toHaveLength(0);
  });

  it('refuses a name that is taken with CONFLICT', async () => {
    const res = await create(tokens.alice, { name: `mine-${suffix}`, resources: { gpu: 0 } });
    expect(res.errors?.[0]?.extensions?.code).toBe('CONFLICT');
  });

  it('refuses queries with too many aliases', async () => {
    const res = await api.gql(tokens.alice, '{ sessions { template { name } spec { resources { gpu } } status { conditions { type } } } }');
    expect(res.errors).toBeUndefined();
    const deep = await api.gql(tokens.alice, `{ ${Array.from({ length: 20 }, (_, i) => `a${i}: sessions { name }`).join(' ')} }`);
    expect(deep.errors?.[0]?.message).toMatch(/alias/i);
    expect(deep.data ?? null).toBeNull();
  });

  it('returns NOT_FOUND for ending a session that does not exist', async () => {
    const res = await api.gql(tokens.alice, 'mutation { terminateVDISession(name: "nope") { name } }');
    expect(res.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
  });
});

describe('extendVDISession', () => {
  it('renews the timeout within the template maximum', async () => {
    const res = await create(tokens.alice, { name: `ext-${suffix}`, timeout: '30m', resources: { gpu: 0 } });
    expect(res.errors).toBeUndefined();
    await eventually(async () => api.service.caches.sessions.get(`${userNamespace(alice.email)}/ext-${suffix}`));
    const ext = await api.gql<{ extendVDISession: { spec: { timeout: string } } }>(
      tokens.alice,
      `mutation { extendVDISession(name: "ext-${suffix}", by: "2h") { spec { timeout } } }`,
    );
    expect(ext.errors).toBeUndefined();
    // The new timeout is the session's age plus 2h: a little over 2h.
    const timeoutMs = parseDuration(ext.data!.extendVDISession.spec.timeout)!;
    expect(timeoutMs).toBeGreaterThanOrEqual(2 * 3600_000);
    expect(timeoutMs).toBeLessThan(2 * 3600_000 + 5 * 60_000);
    const capped = await api.gql<{ extendVDISession: { spec: { timeout: string } } }>(
      tokens.alice,
      `mutation { extendVDISession(name: "ext-${suffix}", by: "10h") { spec { timeout } } }`,
    );
    expect(capped.data!.extendVDISession.spec.timeout).toBe('4h');
    const beyond = await api.gql(tokens.alice, `mutation { extendVDISession(name: "ext-${suffix}", by: "1h") { spec { timeout } } }`);
    expect(beyond.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
  });
});

describe('templates and capacity', () => {
  it('lists templates and shows free GPU slices per node', async () => {
    const res = await api.gql<{
      templates: { name: string }[];
      template: { displayName: string };
      capacity: { totalSlices: number; nodes: { name: string; slicesTotal: number }[] };
    }>(
      tokens.bob,
      `{ templates { name } template(name: "${TEMPLATE}") { displayName } capacity { totalSlices freeSlices nodes { name slicesTotal slicesFree } } }`,
    );
    expect(res.errors).toBeUndefined();
    expect(res.data!.templates.map((t) => t.name)).toContain(TEMPLATE);
    expect(res.data!.template.displayName).toBe('API test desktop');
    expect(res.data!.capacity.nodes).toEqual(expect.arrayContaining([expect.objectContaining({ name: 'gpu-node-1', slicesTotal: 8 })]));
  });
});

describe('hardening', () => {
  it('turns introspection off and masks internal errors in production', async () => {
    const prod = await startApiStack({ NODE_ENV: 'production', VDI_MODE: 'api' }, { issuer: api.issuer });
    try {
      const res = await prod.gql(tokens.alice, '{ __schema { types { name } } }');
      expect(res.errors?.[0]?.message).toMatch(/introspection/i);
      expect(JSON.stringify(res)).not.toMatch(/stacktrace|\.ts:/);
      // The WebSocket path applies the same rule.
      const ws = prod.ws(tokens.alice);
      const err = await collect(ws, '{ __schema { queryType { name } } }', {}, () => true).catch((e: { errors?: unknown }) => e.errors ?? e);
      expect(JSON.stringify(err)).toMatch(/introspection/i);
      expect(JSON.stringify(err)).toContain('GRAPHQL_VALIDATION_FAILED');
    } finally {
      await prod.stop();
    }
  });

  it('limits subscriptions per connection', async () => {
    const limited = await startApiStack({ VDI_API_MAX_SUBSCRIPTIONS_PER_CONNECTION: '2', VDI_MODE: 'api' }, { issuer: api.issuer });
    try {
      const ws = limited.ws(tokens.alice);
      const q = 'subscription { sessionEvents { type } }';
      const open = [0, 1].map(() => ws.subscribe({ query: q }, { next: () => {}, error: () => {}, complete: () => {} }));
      await new Promise((r) => setTimeout(r, 200));
      const third = await collect(ws, q, {}, () => true, 10_000).catch((e: { errors?: { extensions?: { code?: string } }[] }) => e.errors);
      expect((third as { extensions?: { code?: string } }[])[0]?.extensions?.code).toBe('RATE_LIMITED');
      open.forEach((dispose) => dispose());
    } finally {
      await limited.stop();
    }
  });

  it('re-checks a subscription after a quiet spell, withholds events while the RoleBinding is gone, and delivers again once it is back', async () => {
    // Decisions live 1 s here (10 s by default), so the test can wait them out.
    const short = await startApiStack({ VDI_API_DECISION_TTL_SECONDS: '1', VDI_MODE: 'api' }, { issuer: api.issuer });
    // A user of this test's own: the quota tests above spend theirs, and this stack provisions with its own quota.
    const dave: TestUser = { email: `dave-recheck-${suffix}@example.com`, groups: ['vdi-users'] };
    const ns = userNamespace(dave.email);
    const name = `revoked-${suffix}`;
    const sessionPath = `/apis/vdi.kasm.io/v1alpha1/namespaces/${ns}/vdisessions/${name}`;
    try {
      const token = await short.token(dave);
      // Dave's first session provisions his namespace and the RoleBinding that lets him see it.
      const created = await short.gql(
        token,
        `mutation { createVDISession(input: {template: "${TEMPLATE}", name: "${name}", resources: {gpu: 0}}) { name } }`,
      );
      expect(created.errors).toBeUndefined();
      await eventually(async () => (await client.get<{ status?: { phase?: string } }>(sessionPath)).status?.phase === 'Running', 60_000);
      const events: string[] = [];
      let failure: readonly { extensions?: { code?: unknown } }[] | undefined;
      const ws = short.ws(token);
      ws.subscribe<{ sessionStatus: { type: string } }>(
        { query: 'subscription($name: String!) { sessionStatus(name: $name) { type } }', variables: { name } },
        {
          next: (value) => {
            if (value.errors) failure = value.errors;
            else events.push(value.data!.sessionStatus.type);
          },
          error: (err) => (failure = Array.isArray(err) ? err : [{ extensions: { code: String(err) } }]),
          complete: () => {},
        },
      );
      await eventually(async () => events.length === 1);
      const touch = (n: number) => client.mergePatch(sessionPath, { metadata: { annotations: { 'test.vdi.kasm.io/touch': String(n) } } });

      // Quiet for longer than a decision lives: the next event is re-checked first, then delivered.
      await new Promise((r) => setTimeout(r, 1_500));
      await touch(1);
      await eventually(async () => events.includes('MODIFIED'), 10_000);
      expect(failure).toBeUndefined();

      // Access revoked in the user's own namespace: once the last decision has expired, events are withheld, as
      // the HTTP query answers [] there (ADR 0006); the subscription stays, and each event asks again.
      const bindingPath = `/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/rolebindings/vdi-user`;
      const binding = await client.get<{ metadata: Record<string, unknown> }>(bindingPath);
      await client.delete(bindingPath);
      await new Promise((r) => setTimeout(r, 1_500));
      const seen = events.length;
      await touch(2);
      await touch(3);
      await new Promise((r) => setTimeout(r, 3_000));
      expect(events.length).toBe(seen);
      expect(failure).toBeUndefined();

      // Access given back: the next event is asked about again, allowed and delivered.
      const { name: bindingName, namespace: bindingNamespace, labels, annotations } = binding.metadata;
      await client.create(`/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/rolebindings`, {
        ...binding,
        metadata: { name: bindingName, namespace: bindingNamespace, labels, annotations },
      });
      await new Promise((r) => setTimeout(r, 1_500));
      await touch(4);
      await eventually(async () => events.length > seen, 10_000);
      expect(failure).toBeUndefined();
    } finally {
      await client.delete(sessionPath).catch(() => {});
      await short.stop();
    }
  });

  it('closes a WebSocket when the token that opened it expires', async () => {
    const token = await api.token(alice, { expiresInSeconds: 2 });
    const closed = await new Promise<{ code: number; reason: string }>((resolve) => {
      const ws = api.ws(token, (code, reason) => resolve({ code, reason }));
      ws.subscribe({ query: 'subscription { sessionEvents { type } }' }, { next: () => {}, error: () => {}, complete: () => {} });
    });
    expect(closed).toEqual({ code: 4401, reason: 'Token expired' });
  });
});
