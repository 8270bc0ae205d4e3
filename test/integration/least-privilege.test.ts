// Least privilege, measured. The service runs in this process as the chart runs it (two replicas, the
// Deployment's environment) with a token of the chart's ServiceAccount and only the chart's RBAC, on a control
// plane of its own that writes an audit log. It drives a full session lifecycle and every GraphQL operation as
// a user and as an admin, plus forwardAuth, TURN, orphan clean-up and a leader takeover, and the audit log
// says what it asked for and whether it was refused. Then each rule of its roles is taken away in turn, and a
// request the service makes must be refused for want of exactly that rule. The same for each way the chart
// deploys it: mode all with Traefik routes (the default), ingress mode, and mode api beside mode reconciler.
//
// How 403s are counted: a request the service makes as itself (audit user = its ServiceAccount, no
// impersonatedUser) is the service's own; a 403 there means its roles lack something. A request made as a
// user (impersonatedUser set) is decided by that user's RBAC and admission, which may refuse on purpose
// (bob ending alice's session); those are counted apart and must be exactly the refusals the scenario asks
// for. A service that may not impersonate at all is refused as itself, so that shows as its own 403.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { KubeConfig } from '@kubernetes/client-node';
import { parse } from 'graphql';
import { createClient, type Client } from 'graphql-ws';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { userNamespace } from '../../auth/namespace.ts';
import { SECRET_KEY_PRESENCE_TOKEN, SECRET_KEY_TURN_TOKEN } from '../../operator/builders.ts';
import { pvcName } from '../../operator/naming.ts';
import type { VDISession } from '../../operator/v1alpha1.ts';
import { loadSchema } from '../../src/graphql/server.ts';
import { loadConfig } from '../../src/config.ts';
import { isNotFound, type KubeClient } from '../../src/kube/client.ts';
import { startService, type Service } from '../../src/service.ts';
import { ControlPlane, resourcePath, type AuditEvent } from '../../dev/control-plane.ts';
import {
  formatPermission,
  grants,
  isForbidden,
  permissionsOf,
  refusedPermission,
  requests,
  usedPermissions,
  type Permission,
} from '../support/audit.ts';
import {
  chartEnvironment,
  chartObject,
  renderChart,
  serviceAccountKubeConfig,
  serviceAccountUser,
  type ChartObject,
  type PolicyRule,
} from '../support/chart.ts';
import { startOidcIssuer, type OidcIssuer, type TestUser } from '../../dev/oidc-issuer.ts';

const NAMESPACE = 'vdi-system';
const LEASE = 'vdi-operator-leader';
// What differs from the default values here (none of it touches RBAC): desktops served over plain http on a
// test domain, home volumes from the test cluster's static pool (no storage class), and an issuer on http.
const TEST_VALUES = [
  'desktops.domain=vdi.test',
  'desktops.urlScheme=http',
  'desktops.storageClassName=',
  'desktops.homeStorageClass.enabled=false',
  'oidc.allowInsecureIssuer=true',
];
// The in-process issuer takes audiences as RFC 8707 resource indicators, which must be absolute URIs.
const AUDIENCE = 'urn:vdi-operator:least-privilege';
const SA_GROUPS = ['system:serviceaccounts', `system:serviceaccounts:${NAMESPACE}`, 'system:authenticated'];

type Role = ChartObject & { rules: PolicyRule[] };

/** One helm release of the chart: its objects, the service's roles, and the identity its pods run as. */
interface Release {
  name: string;
  objects: ChartObject[];
  /** The service's ClusterRole, and its leader-election Role where the mode renders one. */
  roles: Role[];
  /** The ServiceAccount, the service's ClusterRole and Role, and their bindings. */
  own: ChartObject[];
  serviceAccountName: string;
  /** The apiserver's name for the ServiceAccount's tokens. */
  user: string;
  env: Record<string, string>;
}

async function release(name: string, values: string[] = []): Promise<Release> {
  const objects = await renderChart(
    name,
    NAMESPACE,
    [...TEST_VALUES, ...values].flatMap((v) => ['--set', v]),
  );
  const serviceAccountName = chartObject(objects, 'ServiceAccount').metadata.name;
  const fullname = chartObject(objects, 'Deployment').metadata.name;
  const ours = (o: ChartObject) =>
    ['Role', 'RoleBinding'].includes(o.kind) || (['ClusterRole', 'ClusterRoleBinding'].includes(o.kind) && o.metadata.name === fullname);
  return {
    name,
    objects,
    roles: objects.filter((o): o is Role => ours(o) && (o.kind === 'ClusterRole' || o.kind === 'Role')),
    own: objects.filter((o) => o.kind === 'ServiceAccount' || ours(o)),
    serviceAccountName,
    user: serviceAccountUser(NAMESPACE, serviceAccountName),
    env: chartEnvironment(objects, { 'metadata.name': 'unused', 'metadata.namespace': NAMESPACE }, {}),
  };
}

/**
 * How the service is deployed: one release in mode `all` (both replicas serve the API and stand for leader), or
 * two releases, one in mode `api` and one in mode `reconciler`, each with its own ServiceAccount and roles.
 */
interface Variant {
  label: string;
  api: Release;
  reconciler: Release;
}
const releasesOf = (v: Variant): Release[] => [...new Set([v.api, v.reconciler])];

const DEFAULT = await release('vdi-operator');
const INGRESS = await release('vdi-operator', ['desktops.ingress.mode=ingress']);
const API = await release('vdi-api', ['mode=api']);
// A reconciler release points its desktops (forwardAuth, TURN) at the API release's Service, as the chart requires.
const RECONCILER = await release('vdi-reconciler', ['mode=reconciler', `desktops.internalUrl=${API.env.VDI_INTERNAL_URL}`]);
const VARIANTS: Variant[] = [
  { label: 'default values (mode all, Traefik routes)', api: DEFAULT, reconciler: DEFAULT },
  { label: 'ingress mode (networking.k8s.io Ingresses)', api: INGRESS, reconciler: INGRESS },
  { label: 'mode api beside mode reconciler (two releases)', api: API, reconciler: RECONCILER },
];
const TEMPLATE = chartObject(DEFAULT.objects, 'VDITemplate').metadata.name;
const env = DEFAULT.env;
// Shared by every release, applied once as helm would: the user roles, the admission policy, the template.
const SHARED = DEFAULT.objects.filter(
  (o) =>
    ['ClusterRole', 'ClusterRoleBinding', 'ValidatingAdmissionPolicy', 'ValidatingAdmissionPolicyBinding', 'VDITemplate'].includes(o.kind) &&
    !DEFAULT.own.includes(o),
);

/**
 * Roles the chart binds to groups every ServiceAccount belongs to (vdi-template-reader, for all authenticated
 * users). They grant the service too, but only while rbac.userRoles installs them, so the service's own roles
 * may not count on them: a round whose rule they overlap takes their binding away as well.
 */
const SHARED_GRANTS = SHARED.filter(
  (d) =>
    d.kind === 'ClusterRoleBinding' && (d.subjects as { kind: string; name: string }[]).some((x) => x.kind === 'Group' && SA_GROUPS.includes(x.name)),
).map((binding) => ({ binding, rules: (chartObject(SHARED, 'ClusterRole', (binding.roleRef as { name: string }).name) as Role).rules }));

let cp: ControlPlane;
let admin: KubeClient;
let issuer: OidcIssuer;
let scratch: string;
let turnSecretsFile: string;
let auditCursor = 0;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  const started = Date.now();
  cp = await ControlPlane.start({ auditLog: true, volumes: 32, log: (line) => console.log(`[least-privilege cluster] ${line}`) });
  admin = cp.client();
  await admin.create('/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NAMESPACE } });
  for (const doc of SHARED) await admin.apply(resourcePath(doc), doc, 'helm');
  issuer = await startOidcIssuer({ audience: AUDIENCE });
  scratch = await mkdtemp(path.join(os.tmpdir(), 'vdi-least-privilege-'));
  // The chart mounts the coturn secret as a file (VDI_TURN_SHARED_SECRETS_FILE); here it is a file too.
  turnSecretsFile = path.join(scratch, 'static-auth-secret');
  await writeFile(turnSecretsFile, `${randomBytes(24).toString('base64url')}\n`);
  console.log(
    `[least-privilege] cluster with an audit log, the chart's user roles, admission policy and template ready in ${((Date.now() - started) / 1000).toFixed(1)} s`,
  );
});

afterAll(async () => {
  await issuer?.close();
  await cp?.stop();
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

// ---- the deployment: replicas of the service in this process, as the chart's pods would run them ----

class Deployment {
  readonly replicas: Service[] = [];
  readonly logs: string[] = [];
  readonly users: TestUser[] = [];

  /** A replica of `r` named `podName`, with a fresh token of its ServiceAccount (as the kubelet mounts one per pod). */
  async start(r: Release, podName: string): Promise<Service> {
    const config = loadConfig(
      chartEnvironment(
        r.objects,
        { 'metadata.name': podName, 'metadata.namespace': NAMESPACE },
        {
          PORT: '0',
          HOST: '127.0.0.1',
          OIDC_ISSUER_URL: issuer.issuer,
          OIDC_AUDIENCE: AUDIENCE,
          VDI_TURN_SHARED_SECRETS_FILE: turnSecretsFile,
        },
      ),
      [],
    );
    const log = pino({ level: 'info', base: { pod: podName } }, { write: (line: string) => void this.logs.push(line.trim()) });
    const service = await startService({ config, kubeConfig: await serviceAccountConfig(r), log });
    this.replicas.push(service);
    return service;
  }

  async stop(service: Service): Promise<void> {
    const i = this.replicas.indexOf(service);
    if (i >= 0) this.replicas.splice(i, 1);
    await service.stop();
  }

  async stopAll(): Promise<void> {
    for (const service of [...this.replicas]) await this.stop(service);
  }
}

async function serviceAccountConfig(r: Release): Promise<KubeConfig> {
  return await serviceAccountKubeConfig(admin, {
    namespace: NAMESPACE,
    name: r.serviceAccountName,
    server: cp.apiserverUrl,
    caFile: path.join(cp.dir, 'certs/apiserver.crt'),
  });
}

// ---- talking to the service ----

type Who = 'user' | 'admin';
const ROOT_TYPES = { query: 'Query', mutation: 'Mutation', subscription: 'Subscription' } as const;

interface GraphQLResult<T> {
  data?: T | null;
  errors?: { message: string; extensions?: { code?: string } }[];
}

/** Root fields of a document, as `user:Query.me` / `admin:Mutation.createVDISession`. */
function rootFields(who: Who, query: string): string[] {
  return parse(query).definitions.flatMap((d) =>
    d.kind === 'OperationDefinition'
      ? d.selectionSet.selections.flatMap((s) =>
          s.kind === 'Field' && !s.name.value.startsWith('__') ? [`${who}:${ROOT_TYPES[d.operation]}.${s.name.value}`] : [],
        )
      : [],
  );
}

/** Every root field of schema/*.graphql, for both kinds of caller. */
function schemaOperations(): string[] {
  const schema = loadSchema();
  const types = [schema.getQueryType(), schema.getMutationType(), schema.getSubscriptionType()];
  const fields = types.flatMap((t) => (t ? Object.keys(t.getFields()).map((f) => `${t.name}.${f}`) : []));
  return (['user', 'admin'] as const).flatMap((who) => fields.map((f) => `${who}:${f}`)).sort();
}

/** A graphql-ws subscription's events, kept as they arrive. */
class Feed<T> {
  readonly events: T[] = [];
  readonly errors: unknown[] = [];
  private readonly client: Client;

  constructor(url: string, token: string, query: string) {
    this.client = createClient({
      url: `${url.replace(/^http/, 'ws')}/graphql`,
      webSocketImpl: WebSocket,
      connectionParams: { authorization: `Bearer ${token}` },
      retryAttempts: 0,
      lazy: false,
      onNonLazyError: (err) => void this.errors.push(err),
    });
    this.client.subscribe<T>(
      { query },
      {
        next: (value) => (value.errors ? this.errors.push(value.errors) : this.events.push(value.data as T)),
        error: (err) => void this.errors.push(err),
        complete: () => {},
      },
    );
  }

  async close(): Promise<void> {
    await this.client.dispose();
  }
}

class Aborted extends Error {}

/** Polls `probe` until it returns something truthy; gives up after `timeoutMs` or when the run is aborted. */
async function until<T>(
  what: string,
  signal: AbortSignal,
  probe: () => Promise<T | undefined | null | false> | T | undefined | null | false,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    if (signal.aborted) throw new Aborted(`aborted while waiting for ${what}`);
    try {
      const value = await probe();
      if (value) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? ` (${String(last)})` : ''}`);
    await sleep(150);
  }
}
const NEVER_ABORTED = new AbortController().signal;

async function getOrUndefined<T>(p: string): Promise<T | undefined> {
  try {
    return await admin.get<T>(p);
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

// ---- the scenario ----

interface Scenario {
  /** Root fields run, per kind of caller. */
  operations: Set<string>;
  /** The step reached (for reports on runs that were cut short). */
  step: string;
  /** Requests made as a user that the scenario expects the apiserver to refuse, as `username verb namespace/name`. */
  deliberateRefusals: string[];
}

const sessionsPath = (ns: string) => `/apis/vdi.kasm.io/v1alpha1/namespaces/${ns}/vdisessions`;
const ready = async (replica: Service) => (await fetch(`${replica.url}/readyz`)).ok;

/**
 * Everything the service does for its users, in the order a day would bring it: the first visit, a desktop
 * launched on a GPU node, reached through forwardAuth and TURN, extended, watched, refused to the wrong user,
 * ended with its home kept; an admin's view and actions; orphans swept; the leader replaced; a desktop expired.
 */
async function runScenario(v: Variant, d: Deployment, signal: AbortSignal, s: Scenario): Promise<void> {
  const id = randomBytes(3).toString('hex');
  const alice: TestUser = { email: `alice-${id}@example.com`, groups: ['vdi-users'] };
  const bob: TestUser = { email: `bob-${id}@example.com`, groups: ['vdi-users'] };
  const boss: TestUser = { email: `admin-${id}@example.com`, groups: [env.OIDC_ADMIN_GROUP!] };
  d.users.push(alice, bob, boss);
  const feeds: Feed<unknown>[] = [];
  const step = (name: string) => {
    if (signal.aborted) throw new Aborted(`aborted before ${name}`);
    s.step = name;
  };
  const gql = async <T>(replica: Service, who: Who, token: string, query: string): Promise<GraphQLResult<T>> => {
    for (const f of rootFields(who, query)) s.operations.add(f);
    const res = await fetch(`${replica.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ query }),
    });
    return (await res.json()) as GraphQLResult<T>;
  };
  const ok = <T>(res: GraphQLResult<T>): T => {
    expect(res.errors, JSON.stringify(res.errors)).toBeUndefined();
    return res.data!;
  };
  const subscribe = <T>(replica: Service, who: Who, token: string, query: string): Feed<T> => {
    for (const f of rootFields(who, query)) s.operations.add(f);
    const feed = new Feed<T>(replica.url, token, query);
    feeds.push(feed as Feed<unknown>);
    return feed;
  };
  type Event = { type: string; session: { name: string; namespace: string; status: { phase: string } } };
  const phasesOf = (events: Event[], name: string) => events.filter((e) => e.session.name === name).map((e) => `${e.type}:${e.session.status.phase}`);

  try {
    // `first` and `second` serve the API (two replicas of mode all, or two of mode api, as the chart runs them);
    // `leader` holds the Lease and `standby` waits for it. A replica that has not provisioned a user checks their
    // namespace on their next launch: `brief`, made on `second`, takes the owner-tested patches of what exists.
    let first: Service, second: Service, leader: Service, standby: Service;
    if (v.api === v.reconciler) {
      step('two replicas start; the first leads, both serve the API');
      leader = first = await d.start(v.api, `${v.api.name}-a-${id}`);
      await until('replica a ready and leading', signal, async () => (await ready(first)) && first.isLeader());
      standby = second = await d.start(v.api, `${v.api.name}-b-${id}`);
      await until('replica b ready', signal, () => ready(second));
    } else {
      step('two reconciler replicas start and the first leads; two API replicas start');
      leader = await d.start(v.reconciler, `${v.reconciler.name}-a-${id}`);
      await until('reconciler a ready and leading', signal, async () => (await ready(leader)) && leader.isLeader());
      standby = await d.start(v.reconciler, `${v.reconciler.name}-b-${id}`);
      await until('reconciler b ready', signal, () => ready(standby));
      first = await d.start(v.api, `${v.api.name}-a-${id}`);
      await until('API replica a ready', signal, () => ready(first));
      second = await d.start(v.api, `${v.api.name}-b-${id}`);
      await until('API replica b ready', signal, () => ready(second));
      expect(first.isLeader() || second.isLeader()).toBe(false);
    }
    expect(standby.isLeader()).toBe(false);
    const token = async (u: TestUser) => await issuer.tokenFor(u, { expiresInSeconds: 600 });
    const t = { alice: await token(alice), bob: await token(bob), boss: await token(boss) };
    const aliceNs = userNamespace(alice.email, env.VDI_NAMESPACE_PREFIX);

    step('first visit: every query as a user with no namespace yet');
    const visit = ok(
      await gql<{
        me: { name: string; namespace: string; isAdmin: boolean; quota: { sessions: { used: number; limit: number | null } } };
        capacity: { totalSlices: number; freeSlices: number; nodes: { name: string }[] };
        templates: { name: string }[];
        template: { name: string; persistence: { defaultEnabled: boolean } } | null;
        sessions: unknown[];
        vdiSessions: unknown[];
        session: unknown;
      }>(
        first,
        'user',
        t.alice,
        `{
        me { username name groups isAdmin namespace quota { sessions { used limit } gpus { used limit } } }
        capacity { totalSlices usedSlices freeSlices nodes { name product ready slicesTotal slicesUsed slicesFree } }
        templates { name displayName }
        template(name: "${TEMPLATE}") { name persistence { defaultEnabled } }
        sessions { name }
        vdiSessions { name }
        session(name: "desk") { name }
      }`,
      ),
    );
    expect(visit.me).toMatchObject({
      name: alice.email,
      namespace: aliceNs,
      isAdmin: false,
      quota: { sessions: { used: 0, limit: Number(env.VDI_QUOTA_SESSIONS) } },
    });
    expect(visit.capacity.nodes.map((n) => n.name)).toEqual(['gpu-node-1', 'gpu-node-2']);
    expect(visit.templates.map((x) => x.name)).toEqual([TEMPLATE]);
    expect(visit.template?.persistence.defaultEnabled).toBe(true);
    expect([visit.sessions, visit.vdiSessions, visit.session]).toEqual([[], [], null]);

    step("an admin watches every user's sessions");
    const bossFeed = subscribe<{ sessionEvents: Event }>(
      second,
      'admin',
      t.boss,
      'subscription { sessionEvents(allUsers: true) { type session { name namespace status { phase } } } }',
    );

    step('first use: alice launches a desktop (namespace, RoleBinding and ResourceQuota made for her)');
    const created = ok(
      await gql<{ createVDISession: { name: string; namespace: string } }>(
        first,
        'user',
        t.alice,
        `mutation { createVDISession(input: { template: "${TEMPLATE}", name: "desk", resources: { gpu: 1 } }) { name namespace } }`,
      ),
    );
    expect(created.createVDISession).toEqual({ name: 'desk', namespace: aliceNs });
    const aliceFeed = subscribe<{ sessionEvents: Event }>(
      second,
      'user',
      t.alice,
      'subscription { sessionEvents { type session { name namespace status { phase } } } }',
    );
    const deskFeed = subscribe<{ sessionStatus: Event }>(
      second,
      'user',
      t.alice,
      'subscription { sessionStatus(name: "desk") { type session { name namespace status { phase } } } }',
    );
    const bossDeskFeed = subscribe<{ sessionStatus: Event }>(
      second,
      'admin',
      t.boss,
      `subscription { sessionStatus(name: "desk", user: "${alice.email}") { type session { name namespace status { phase } } } }`,
    );

    step('the desktop runs on a GPU node');
    type Status = { phase: string; nodeName: string | null; podName: string | null; url: string | null };
    const running = await until(
      'desk Running',
      signal,
      async () => {
        const r = await gql<{ session: { status: Status } | null }>(
          second,
          'user',
          t.alice,
          '{ session(name: "desk") { status { phase nodeName podName url } } }',
        );
        return r.data?.session?.status.phase === 'Running' ? r.data.session.status : undefined;
      },
      60_000,
    );
    expect(running.nodeName).toMatch(/^gpu-node-\d$/);
    const quota = ok(
      await gql<{ me: { quota: Record<'sessions' | 'gpus', { used: number; limit: number | null }> } }>(
        second,
        'user',
        t.alice,
        '{ me { quota { sessions { used limit } gpus { used limit } } } }',
      ),
    );
    expect(quota.me.quota).toEqual({
      sessions: { used: 1, limit: Number(env.VDI_QUOTA_SESSIONS) },
      gpus: { used: 1, limit: Number(env.VDI_QUOTA_GPUS) },
    });
    const pvc = `/api/v1/namespaces/${aliceNs}/persistentvolumeclaims/${pvcName(alice.email, TEMPLATE)}`;
    expect(await getOrUndefined(pvc)).toBeDefined();

    step('forwardAuth lets the owner and an admin in, and not bob');
    const host = new URL(running.url!).host;
    const forward = async (bearer: string) =>
      await fetch(`${second.url}/auth/forward`, {
        headers: { authorization: `Bearer ${bearer}`, 'x-forwarded-host': host, 'x-forwarded-proto': 'http', 'x-forwarded-uri': '/' },
      });
    const owner = await forward(t.alice);
    expect(owner.status).toBe(200);
    expect(owner.headers.get('authorization')).toMatch(/^Basic /);
    expect((await forward(t.boss)).status).toBe(200);
    expect((await forward(t.bob)).status).toBe(403);

    step('the desktop gets TURN credentials with the token in its Secret');
    const secret = await admin.get<{ data: Record<string, string> }>(`/api/v1/namespaces/${aliceNs}/secrets/${running.podName}`);
    const turnToken = Buffer.from(secret.data[SECRET_KEY_TURN_TOKEN]!, 'base64').toString('utf8');
    const turn = await fetch(`${second.url}/turn/${aliceNs}/desk/${turnToken}`);
    expect(turn.status).toBe(200);
    const rtc = (await turn.json()) as { iceServers: { username?: string }[] };
    expect(rtc.iceServers[1]?.username).toBe(`${rtc.iceServers[1]?.username?.split(':')[0]}:${alice.email}`);

    step('the desktop reports a client connecting, with the presence token in its Secret (written as the API)');
    const presenceToken = Buffer.from(secret.data[SECRET_KEY_PRESENCE_TOKEN]!, 'base64').toString('utf8');
    const presence = await fetch(`${second.url}/presence/${aliceNs}/desk/connected`, {
      method: 'POST',
      headers: { authorization: `Bearer ${presenceToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ at: Date.now() / 1000 }),
    });
    expect(presence.status).toBe(200);

    step('resuming a desktop that is not stopped changes nothing');
    const resumed = ok(
      await gql<{ resumeVDISession: { name: string } }>(first, 'user', t.alice, 'mutation { resumeVDISession(name: "desk") { name } }'),
    );
    expect(resumed.resumeVDISession.name).toBe('desk');

    step('the owner and an admin extend the desktop');
    const extended = ok(
      await gql<{ extendVDISession: { spec: { timeout: string } } }>(
        first,
        'user',
        t.alice,
        'mutation { extendVDISession(name: "desk", by: "2h") { spec { timeout } } }',
      ),
    );
    expect(extended.extendVDISession.spec.timeout).toMatch(/^2h/);
    const extendedByBoss = ok(
      await gql<{ extendVDISession: { spec: { timeout: string } } }>(
        first,
        'admin',
        t.boss,
        `mutation { extendVDISession(name: "desk", user: "${alice.email}", by: "3h") { spec { timeout } } }`,
      ),
    );
    expect(extendedByBoss.extendVDISession.spec.timeout).toMatch(/^3h/);

    step("an admin runs every query, naming alice's sessions");
    const bossView = ok(
      await gql<{
        me: { isAdmin: boolean };
        capacity: { usedSlices: number };
        templates: unknown[];
        template: unknown;
        sessions: { name: string }[];
        vdiSessions: { name: string; namespace: string }[];
        session: { name: string } | null;
      }>(
        first,
        'admin',
        t.boss,
        `{
          me { isAdmin quota { sessions { used limit } } }
          capacity { usedSlices }
          templates { name }
          template(name: "${TEMPLATE}") { name }
          sessions(user: "${alice.email}") { name }
          vdiSessions(allUsers: true) { name namespace }
          session(name: "desk", user: "${alice.email}") { name }
          idleReclaim { idleSessions }
        }`,
      ),
    );
    expect(bossView.me.isAdmin).toBe(true);
    expect(bossView.capacity.usedSlices).toBe(1);
    expect(bossView.sessions.map((x) => x.name)).toEqual(['desk']);
    expect(bossView.vdiSessions).toContainEqual({ name: 'desk', namespace: aliceNs });
    expect(bossView.session?.name).toBe('desk');

    step('an admin resumes a desktop that runs (nothing to do); a user may not see the idle-reclaim figures');
    ok(await gql(first, 'admin', t.boss, `mutation { resumeVDISession(name: "desk", user: "${alice.email}") { name } }`));
    const userReclaim = await gql(first, 'user', t.alice, '{ idleReclaim { idleSessions } }');
    expect(userReclaim.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');

    step("bob may not end or list alice's desktop");
    // Refused by a SubjectAccessReview before any DELETE is sent as bob (issue #20): no 403 in the audit log.
    const bobEnds = await gql(first, 'user', t.bob, `mutation { terminateVDISession(name: "desk", user: "${alice.email}") { name } }`);
    expect(bobEnds.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    const bobLists = await gql(first, 'user', t.bob, `{ sessions(user: "${alice.email}") { name } }`);
    expect(bobLists.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');

    step('an admin launches a desktop for bob (his namespace made on first use) and ends it');
    const forBob = ok(
      await gql<{ createVDISession: { namespace: string; user: string } }>(
        first,
        'admin',
        t.boss,
        `mutation { createVDISession(input: { template: "${TEMPLATE}", name: "for-bob", user: "${bob.email}", resources: { gpu: 0 }, persistence: { enabled: false } }) { namespace user } }`,
      ),
    );
    expect(forBob.createVDISession).toEqual({ namespace: userNamespace(bob.email, env.VDI_NAMESPACE_PREFIX), user: bob.email });
    await until("the admin's feed shows bob's desktop", signal, () => bossFeed.events.some((e) => e.sessionEvents.session.name === 'for-bob'));
    const bossEnds = ok(
      await gql<{ terminateVDISession: { status: { phase: string } } }>(
        first,
        'admin',
        t.boss,
        `mutation { terminateVDISession(name: "for-bob", user: "${bob.email}") { status { phase } } }`,
      ),
    );
    expect(bossEnds.terminateVDISession.status.phase).toBe('Terminating');

    step('alice ends her desktop: the pod and the session go, the home volume stays');
    const ended = ok(
      await gql<{ terminateVDISession: { status: { phase: string } } }>(
        first,
        'user',
        t.alice,
        'mutation { terminateVDISession(name: "desk") { status { phase } } }',
      ),
    );
    expect(ended.terminateVDISession.status.phase).toBe('Terminating');
    await until(
      'desk gone',
      signal,
      async () =>
        !(await getOrUndefined(`${sessionsPath(aliceNs)}/desk`)) && !(await getOrUndefined(`/api/v1/namespaces/${aliceNs}/pods/${running.podName}`)),
    );
    expect(await getOrUndefined(pvc)).toBeDefined();
    await until("alice's feed ends with DELETED", signal, () =>
      phasesOf(
        aliceFeed.events.map((e) => e.sessionEvents),
        'desk',
      ).includes('DELETED:Terminating'),
    );
    for (const feed of [deskFeed, bossDeskFeed]) {
      await until('the sessionStatus feeds see the end', signal, () => feed.events.some((e) => e.sessionStatus.type === 'DELETED'));
      expect(feed.events.map((e) => `${e.sessionStatus.type}:${e.sessionStatus.session.status.phase}`).join(' ')).toMatch(/Running.*Terminating/);
    }

    step('objects labelled as ours whose session is gone are swept');
    const labels = { 'app.kubernetes.io/managed-by': 'vdi-operator', 'vdi.kasm.io/session': 'ghost' };
    const meta = { name: 'vdi-ghost', namespace: aliceNs, labels };
    const ghosts = [
      { apiVersion: 'v1', kind: 'Secret', metadata: meta, stringData: { password: 'x' } },
      { apiVersion: 'v1', kind: 'Service', metadata: meta, spec: { ports: [{ port: 8080 }], selector: labels } },
      {
        apiVersion: 'discovery.k8s.io/v1',
        kind: 'EndpointSlice',
        metadata: meta,
        addressType: 'IPv4',
        endpoints: [],
        ports: [{ name: 'http', port: 8080 }],
      },
      { apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: meta, spec: { podSelector: { matchLabels: labels } } },
      // The route kinds of the release's ingress mode, the only ones the reconciler watches and sweeps.
      ...(v.reconciler.env.VDI_INGRESS_MODE === 'traefik'
        ? [
            { apiVersion: 'traefik.io/v1alpha1', kind: 'Middleware', metadata: meta, spec: { stripPrefix: { prefixes: ['/x'] } } },
            {
              apiVersion: 'traefik.io/v1alpha1',
              kind: 'IngressRoute',
              metadata: meta,
              spec: { routes: [{ match: 'Host(`ghost.vdi.test`)', kind: 'Rule', services: [{ name: 'vdi-ghost', port: 8080 }] }] },
            },
          ]
        : [
            {
              apiVersion: 'networking.k8s.io/v1',
              kind: 'Ingress',
              metadata: meta,
              spec: {
                rules: [
                  {
                    host: 'ghost.vdi.test',
                    http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: 'vdi-ghost', port: { number: 8080 } } } }] },
                  },
                ],
              },
            },
          ]),
    ];
    for (const g of ghosts) await admin.create(resourcePath(g).replace(/\/[^/]+$/, ''), g);
    await until('the orphans swept', signal, async () =>
      (await Promise.all(ghosts.map((g) => getOrUndefined(resourcePath(g))))).every((x) => x === undefined),
    );

    step('the leader steps down and the standby takes over');
    await d.stop(leader);
    await until('the standby leading', signal, () => standby.isLeader(), 20_000);

    step('the new leader expires a desktop at its timeout');
    const briefFeed = subscribe<{ sessionStatus: Event }>(
      second,
      'user',
      t.alice,
      'subscription { sessionStatus(name: "brief") { type session { name namespace status { phase } } } }',
    );
    ok(
      await gql(second, 'user', t.alice, `mutation { createVDISession(input: { template: "${TEMPLATE}", name: "brief", timeout: "3s" }) { name } }`),
    );
    await until('brief expired and deleted', signal, () => briefFeed.events.some((e) => e.sessionStatus.type === 'DELETED'), 60_000);
    const briefPhases = briefFeed.events.map((e) => `${e.sessionStatus.type}:${e.sessionStatus.session.status.phase}`);
    expect(briefPhases.join(' ')).toMatch(/Running.*Expired/);
    expect(briefPhases.at(-1)).toBe('DELETED:Expired');

    step('the feeds saw it all, with no errors');
    expect(
      phasesOf(
        bossFeed.events.map((e) => e.sessionEvents),
        'desk',
      ),
    ).toContain('DELETED:Terminating');
    for (const feed of feeds) expect(feed.errors).toEqual([]);
    step('done');
  } finally {
    for (const feed of feeds) await feed.close().catch(() => {});
  }
}

// ---- a run: the scenario against fresh replicas, with the audit log followed ----

interface RunResult {
  /** One per request the service's ServiceAccounts made (audit IDs). */
  requests: AuditEvent[];
  own: AuditEvent[];
  impersonated: AuditEvent[];
  ownRefused: AuditEvent[];
  impersonatedRefused: AuditEvent[];
  scenario: Scenario;
  error: unknown;
  ms: number;
  logs: string[];
}

/** Audit events written since the last call (the cursor moves on). */
async function newAuditEvents(): Promise<AuditEvent[]> {
  const { events, next } = await cp.readAuditLog(auditCursor);
  auditCursor = next;
  return events;
}

/**
 * Runs the scenario against new replicas. With `stopAtRefusal` the run ends as soon as the audit log shows the
 * service refused as itself (what the rounds without a rule look for); otherwise it runs to its end.
 */
async function run(v: Variant, opts: { stopAtRefusal: boolean }): Promise<RunResult> {
  const users = new Set(releasesOf(v).map((r) => r.user));
  const isOwn = (e: AuditEvent) => users.has(e.user.username) && !e.impersonatedUser;
  await newAuditEvents();
  const started = Date.now();
  const d = new Deployment();
  const scenario: Scenario = { operations: new Set(), step: 'not started', deliberateRefusals: [] };
  const abort = new AbortController();
  const events: AuditEvent[] = [];
  const following = (async () => {
    while (!abort.signal.aborted) {
      const more = await newAuditEvents();
      events.push(...more);
      if (opts.stopAtRefusal && more.some((e) => isOwn(e) && isForbidden(e))) return;
      await sleep(200);
    }
  })();
  const outcome = runScenario(v, d, abort.signal, scenario).then(
    () => undefined,
    (err: unknown) => err ?? new Error('the scenario failed'),
  );
  await Promise.race([outcome, following]);
  abort.abort();
  const error = await outcome;
  await following;
  await d.stopAll();
  const ms = Date.now() - started;
  // Watches are audited when they end, and an event is written about when its response completes.
  await sleep(500);
  events.push(...(await newAuditEvents()));
  await resetWorld(d.users);
  const mine = requests(events.filter((e) => users.has(e.user.username)));
  const own = mine.filter((e) => !e.impersonatedUser);
  const impersonated = mine.filter((e) => e.impersonatedUser);
  return {
    requests: mine,
    own,
    impersonated,
    ownRefused: own.filter(isForbidden),
    impersonatedRefused: impersonated.filter(isForbidden),
    scenario,
    error,
    ms,
    logs: d.logs,
  };
}

/** Takes away what a run left: sessions (finalizers lifted), the users' namespaces, the leader Lease. */
async function resetWorld(users: TestUser[]): Promise<void> {
  const sessions = await admin.list<VDISession>('/apis/vdi.kasm.io/v1alpha1/vdisessions');
  for (const s of sessions.items) {
    const p = `${sessionsPath(s.metadata.namespace!)}/${s.metadata.name}`;
    await admin.mergePatch(p, { metadata: { finalizers: null } }).catch(() => undefined);
    await admin.delete(p).catch(() => undefined);
  }
  for (const u of users) await admin.delete(`/api/v1/namespaces/${userNamespace(u.email, env.VDI_NAMESPACE_PREFIX)}`).catch(() => undefined);
  await admin.delete(`/apis/coordination.k8s.io/v1/namespaces/${NAMESPACE}/leases/${LEASE}`).catch(() => undefined);
}

const describeRequest = (e: AuditEvent) =>
  `${e.verb} ${e.requestURI.split('?')[0]} → ${e.responseStatus?.code}${e.impersonatedUser ? ` (as ${e.impersonatedUser.username})` : ''}`;

function errorText(err: unknown): string {
  if (!err) return 'none';
  return err instanceof Error ? err.message.split('\n')[0]! : JSON.stringify(err);
}

// ---- the service's roles, with and without each rule ----

async function applyRules(role: Role, rules: PolicyRule[]): Promise<void> {
  await admin.apply(resourcePath(role), { ...role, rules }, 'helm');
}

/** Whether the apiserver lets the release's ServiceAccount do `p` (in the Role's namespace, for a Role's rules). */
async function serviceAccountMay(r: Release, p: Permission, namespace?: string): Promise<boolean> {
  const [resource, subresource] = p.resource.split('/');
  const review = await admin.create<{ status: { allowed?: boolean } }>('/apis/authorization.k8s.io/v1/subjectaccessreviews', {
    apiVersion: 'authorization.k8s.io/v1',
    kind: 'SubjectAccessReview',
    spec: { user: r.user, groups: SA_GROUPS, resourceAttributes: { verb: p.verb, group: p.group, resource, subresource, name: p.name, namespace } },
  });
  return review.status.allowed === true;
}

const describeRule = (r: PolicyRule) =>
  `${r.verbs.join(',')} ${r.resources.join(',')}${r.apiGroups.some(Boolean) ? ` (${r.apiGroups.join(',')})` : ''}${r.resourceNames ? ` named ${r.resourceNames.join(',')}` : ''}`;

const ruleKey = (r: Release, rule: PolicyRule) => `${r.user} ${JSON.stringify(rule)}`;
/** Rules whose rounds an earlier variant already ran (same ServiceAccount, same rule). */
const measuredRules = new Set<string>();

for (const v of VARIANTS) {
  // Each rule of each role the variant's ServiceAccounts hold, once per ServiceAccount across variants.
  const rounds = releasesOf(v)
    .flatMap((r) =>
      r.roles.flatMap((role) => role.rules.map((rule, index) => ({ r, role, rule, index, namespace: role.kind === 'Role' ? NAMESPACE : undefined }))),
    )
    .filter(({ r, rule }) => !measuredRules.has(ruleKey(r, rule)));
  for (const { r, rule } of rounds) measuredRules.add(ruleKey(r, rule));

  describe(`the chart's ServiceAccount and RBAC, ${v.label}`, () => {
    let full: RunResult;

    beforeAll(async () => {
      for (const r of releasesOf(v)) for (const doc of r.own) await admin.apply(resourcePath(doc), doc, 'helm');
    });

    it("serve a full session lifecycle and every GraphQL operation with no 403 of the service's own", { timeout: 240_000 }, async () => {
      full = await run(v, { stopAtRefusal: false });
      const byVerb = Object.entries(Object.groupBy(full.own, (e) => e.verb))
        .map(([verb, es]) => `${verb} ${es!.length}`)
        .join(', ');
      console.log(
        `[least-privilege] ${v.label}: full run in ${(full.ms / 1000).toFixed(1)} s, ${full.requests.length} requests by ${releasesOf(v)
          .map((r) => r.user)
          .join(' and ')} ` +
          `(${full.own.length} as itself: ${byVerb}; ${full.impersonated.length} as users); ` +
          `403s: ${full.ownRefused.length} as itself, ${full.impersonatedRefused.length} as users (${full.impersonatedRefused.map(describeRequest).join('; ')})`,
      );
      expect(full.error, `${errorText(full.error)} at step "${full.scenario.step}"\n${full.logs.slice(-20).join('\n')}`).toBeUndefined();
      expect(full.scenario.step).toBe('done');
      expect(full.ownRefused.map((e) => `${describeRequest(e)}: ${e.responseStatus?.message}`)).toEqual([]);
      // The users' refusals are exactly the ones the scenario asked for.
      expect(full.impersonatedRefused.map((e) => `${e.impersonatedUser!.username} ${e.verb} ${e.objectRef?.namespace}/${e.objectRef?.name}`)).toEqual(
        full.scenario.deliberateRefusals,
      );
      // Each release did its part as its own ServiceAccount: the API as users, the reconciler as itself.
      expect(full.impersonated.every((e) => e.user.username === v.api.user)).toBe(true);
      expect(full.own.some((e) => e.user.username === v.reconciler.user && e.objectRef?.resource === 'pods' && e.verb === 'create')).toBe(true);
    });

    it('drove every query, mutation and subscription of schema/*.graphql as a user and as an admin', () => {
      expect([...full.scenario.operations].sort()).toEqual(schemaOperations());
    });

    it('used every permission its roles grant', () => {
      const unused = releasesOf(v).flatMap((r) => {
        const used = full.requests.filter((e) => e.user.username === r.user).flatMap(usedPermissions);
        return r.roles
          .flatMap((role) => role.rules.flatMap(permissionsOf))
          .filter(
            (p) =>
              !used.some((u) =>
                grants({ apiGroups: [p.group], resources: [p.resource], verbs: [p.verb], ...(p.name && { resourceNames: [p.name] }) }, u),
              ),
          )
          .map((p) => `${r.serviceAccountName}: ${formatPermission(p)}`);
      });
      expect(unused).toEqual([]);
    });

    describe('without any one rule of its roles, the service is refused something it asks for', () => {
      for (const { r, role, rule, index, namespace } of rounds) {
        it(`${role.kind} ${role.metadata.name} rule ${index + 1}: ${describeRule(rule)}`, { timeout: 120_000 }, async () => {
          const others = r.roles.flatMap((x) => x.rules).filter((x) => x !== rule);
          // A permission only this rule grants: without one, the rule would be dead weight by construction.
          const only = permissionsOf(rule).find((p) => !others.some((o) => grants(o, p)));
          expect(only, 'every permission of this rule is granted by another rule too').toBeDefined();
          const shadowing = SHARED_GRANTS.filter((g) => g.rules.some((x) => grants(x, only!)));
          await applyRules(
            role,
            role.rules.filter((_, i) => i !== index),
          );
          for (const { binding } of shadowing) await admin.delete(resourcePath(binding));
          try {
            await until('the apiserver to see the rule gone', NEVER_ABORTED, async () => !(await serviceAccountMay(r, only!, namespace)));
            const result = await run(v, { stopAtRefusal: true });
            const refused = result.ownRefused.map((e) => ({ e, p: refusedPermission(e) }));
            const forThisRule = refused.filter(({ e, p }) => e.user.username === r.user && p && grants(rule, p) && !others.some((o) => grants(o, p)));
            const hit = forThisRule[0];
            console.log(
              `[least-privilege] without ${r.serviceAccountName}'s ${role.kind} rule ${index + 1} (${describeRule(rule)})` +
                shadowing.map(({ binding }) => ` and ${binding.kind} ${binding.metadata.name}`).join('') +
                ': ' +
                (hit ? `refused ${formatPermission(hit.p!)}: ${describeRequest(hit.e)}, at "${result.scenario.step}"` : 'nothing refused') +
                `; ${result.ownRefused.length} refusals in ${(result.ms / 1000).toFixed(1)} s; the scenario: ${errorText(result.error)}`,
            );
            expect(
              forThisRule.length,
              `no request was refused for want of this rule; refused: ${refused.map(({ e }) => `${describeRequest(e)} ${e.responseStatus?.message}`).join('; ') || 'none'}; ` +
                `the scenario: ${errorText(result.error)} at "${result.scenario.step}"`,
            ).toBeGreaterThan(0);
            // Nothing else was missing: every refusal is one this rule would have allowed.
            expect(
              refused
                .filter(({ e, p }) => e.user.username !== r.user || !p || !grants(rule, p))
                .map(({ e }) => `${describeRequest(e)}: ${e.responseStatus?.message}`),
            ).toEqual([]);
          } finally {
            await applyRules(role, role.rules);
            for (const { binding } of shadowing) await admin.apply(resourcePath(binding), binding, 'helm');
            await until('the apiserver to see the rule back', NEVER_ABORTED, async () => await serviceAccountMay(r, only!, namespace));
          }
        });
      }
    });
  });
}
