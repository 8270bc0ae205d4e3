// The domain behind the GraphQL resolvers. Reads come from the shared informer cache and are authorised
// per user with SubjectAccessReviews; writes are made as the user (impersonation), so Kubernetes RBAC,
// quotas and admission decide, exactly as they would for the same user's kubectl.
import { randomBytes } from 'node:crypto';
import type { V1ResourceQuota } from '@kubernetes/client-node';
import type { AccessQuestion, Authorizer } from '../../auth/authorizer.ts';
import type { Identity } from '../../auth/identity.ts';
import type { Caches } from '../../operator/caches.ts';
import type { ReconcilerConfig } from '../../operator/config.ts';
import { formatDuration, parseDuration } from '../../formats/duration.ts';
import { resolveSession, sessionGpuSlices } from '../../operator/resolve.ts';
import {
  ANNOTATION_EXTENDED_AT,
  ANNOTATION_STOP_REASON,
  API_VERSION,
  FINALIZER,
  GROUP,
  SESSION_KIND,
  SESSION_PLURAL,
  TEMPLATE_PLURAL,
  type SessionPhase,
  type VDISession,
  type VDITemplate,
} from '../../operator/v1alpha1.ts';
import { badInput, conflict, forbidden, fromKubeError, notFound, quotaExceeded } from '../errors.ts';
import { KubeError, isNotFound, type Impersonation, type KubeClient } from '../kube/client.ts';
import { idleReclaimFigures, type IdleReclaimFigures } from './idle-reclaim.ts';
import type { SessionEventModel } from './models.ts';
import { SessionEventHub } from '../subscriptions/session-events.ts';
import { QUOTA_NAME, SESSION_COUNT_RESOURCE, type UserNamespaces } from './user-namespaces.ts';
import { collectionPath, namedPath } from '../../operator/kinds.ts';

const DNS_NAME = /^[a-z0-9]([-a-z0-9]{0,51}[a-z0-9])?$/;

export interface CreateSessionInput {
  template: string;
  name?: string | null;
  user?: string | null;
  resources?: { gpu?: number | null; memory?: string | null; cpu?: string | null } | null;
  persistence?: { enabled: boolean; size?: string | null } | null;
  timeout?: string | null;
  idleTimeout?: string | null;
}

export interface ListOptions {
  user?: string | null;
  allUsers?: boolean | null;
  phase?: SessionPhase | null;
}

export interface QuotaUsage {
  used: number;
  limit: number | null;
}

export interface GpuNodeCapacity {
  name: string;
  product: string | null;
  ready: boolean;
  slicesTotal: number;
  slicesUsed: number;
  slicesFree: number;
}

const sessionsResource = (namespace?: string, verb: AccessQuestion['verb'] = 'list'): AccessQuestion => ({
  verb,
  group: GROUP,
  resource: SESSION_PLURAL,
  namespace,
});

export function impersonate(identity: Identity): Impersonation {
  return { username: identity.username, groups: identity.groups };
}

/** Strips what Kubernetes adds on the way (managedFields) so clients get a clean object. */
function clean(session: VDISession): VDISession {
  const { metadata } = session;
  const { managedFields: _m, ...rest } = metadata as typeof metadata & { managedFields?: unknown };
  return { ...session, metadata: rest };
}

export class ApiServices {
  readonly client: KubeClient;
  readonly caches: Caches;
  readonly authorizer: Authorizer;
  readonly namespaces: UserNamespaces;
  readonly reconcilerConfig: ReconcilerConfig;
  readonly events: SessionEventHub;

  constructor(deps: {
    client: KubeClient;
    caches: Caches;
    authorizer: Authorizer;
    namespaces: UserNamespaces;
    reconcilerConfig: ReconcilerConfig;
    decisionTtlMs?: number;
  }) {
    this.events = new SessionEventHub(deps.caches.sessions, { reauthorizeMs: deps.decisionTtlMs });
    this.client = deps.client;
    this.caches = deps.caches;
    this.authorizer = deps.authorizer;
    this.namespaces = deps.namespaces;
    this.reconcilerConfig = deps.reconcilerConfig;
  }

  // ---- templates ----

  async templates(identity: Identity): Promise<VDITemplate[]> {
    await this.require(identity, { verb: 'list', group: GROUP, resource: TEMPLATE_PLURAL });
    return this.caches.templates.list().sort((a, b) => (a.metadata.name ?? '').localeCompare(b.metadata.name ?? ''));
  }

  async template(identity: Identity, name: string): Promise<VDITemplate | null> {
    await this.require(identity, { verb: 'get', group: GROUP, resource: TEMPLATE_PLURAL, name });
    return this.caches.templates.get(name) ?? null;
  }

  // ---- sessions ----

  /**
   * The namespace whose sessions the caller asks for: their own, or (when allowed by RBAC) the named
   * user's. `undefined` means every namespace (allUsers).
   */
  private async scope(
    identity: Identity,
    user: string | null | undefined,
    allUsers: boolean | null | undefined,
    verb: AccessQuestion['verb'],
  ): Promise<string | undefined> {
    if (allUsers) {
      await this.require(identity, sessionsResource(undefined, verb));
      return undefined;
    }
    const namespace = this.namespaces.namespaceOf(user ?? identity.name);
    if (user && user !== identity.name) await this.require(identity, sessionsResource(namespace, verb));
    return namespace;
  }

  async sessions(identity: Identity, opts: ListOptions): Promise<VDISession[]> {
    const namespace = await this.scope(identity, opts.user, opts.allUsers, 'list');
    // Your own namespace: allowed once provisioned; before that (no RoleBinding yet) it is simply empty.
    if (namespace !== undefined && !(await this.authorizer.can(identity, sessionsResource(namespace)))) return [];
    const items = this.caches.sessions.list().filter((s) => {
      if (namespace !== undefined && s.metadata.namespace !== namespace) return false;
      return !opts.phase || (s.status?.phase ?? 'Pending') === opts.phase;
    });
    return items.sort((a, b) => (a.metadata.creationTimestamp ?? '').localeCompare(b.metadata.creationTimestamp ?? '')).map(clean);
  }

  async session(identity: Identity, name: string, user?: string | null): Promise<VDISession | null> {
    const namespace = this.namespaces.namespaceOf(user ?? identity.name);
    if (!(await this.authorizer.can(identity, { ...sessionsResource(namespace, 'get'), name }))) {
      if (user && user !== identity.name) throw forbidden();
      return null;
    }
    const s = this.caches.sessions.get(`${namespace}/${name}`);
    return s ? clean(s) : null;
  }

  async createSession(identity: Identity, input: CreateSessionInput): Promise<VDISession> {
    const user = input.user ?? identity.name;
    if (user !== identity.name && !identity.isAdmin) throw forbidden('only admins may create sessions for other users');
    const template = this.caches.templates.get(input.template);
    if (!template) throw badInput(`template "${input.template}" does not exist`, 'template');
    const name = input.name ?? `${input.template.slice(0, 40).replace(/-+$/, '')}-${randomBytes(3).toString('hex')}`;
    if (!DNS_NAME.test(name)) throw badInput('name must be lowercase letters, digits and dashes (at most 53 characters)', 'name');
    const spec: VDISession['spec'] = { user, template: input.template };
    if (input.resources) {
      const r = input.resources;
      spec.resources = {
        ...(r.gpu != null && { gpu: r.gpu }),
        ...(r.memory != null && { memory: r.memory }),
        ...(r.cpu != null && { cpu: r.cpu }),
      };
    }
    if (input.persistence)
      spec.persistence = { enabled: input.persistence.enabled, ...(input.persistence.size != null && { size: input.persistence.size }) };
    if (input.timeout != null) spec.timeout = input.timeout;
    if (input.idleTimeout != null) spec.idleTimeout = input.idleTimeout;
    const namespace = this.namespaces.namespaceOf(user);
    if (this.caches.sessions.get(`${namespace}/${name}`)) throw conflict(`a session named "${name}" already exists`);
    // Born with the reconciler's finalizer: it need not spend a write (and a round trip before the desktop
    // starts) adding it. Sessions made with kubectl get it from the reconciler.
    const session: VDISession = { apiVersion: API_VERSION, kind: SESSION_KIND, metadata: { name, namespace, finalizers: [FINALIZER] }, spec };

    // The reconciler's own rules, run before anything is written: a request it would fail is refused now.
    const resolution = resolveSession(session, template, this.reconcilerConfig);
    if (!resolution.ok) throw badInput(resolution.message, resolution.reason === 'ExceedsTemplateLimits' ? 'resources' : undefined);
    await this.checkGpuQuota(namespace, resolution.effective.gpu);

    if (await this.namespaces.ensure({ name: user })) this.authorizer.forget(`${this.namespaces.usernamePrefix}${user}`);
    try {
      const created = await this.client.create<VDISession>(collectionPath('VDISession', namespace), session, impersonate(identity));
      // Read-your-writes: the caller's next query sees the session before its watch event arrives.
      this.caches.sessions.remember(created);
      return clean(created);
    } catch (err) {
      throw fromKubeError(err, `session "${name}"`);
    }
  }

  async terminateSession(identity: Identity, name: string, user?: string | null): Promise<VDISession> {
    const namespace = this.namespaces.namespaceOf(user ?? identity.name);
    const path = namedPath('VDISession', namespace, name);
    // Asked before anything is sent, as for every read: a DELETE goes out only for a caller who may make it.
    await this.require(identity, { ...sessionsResource(namespace, 'delete'), name });
    // Read before deleting: a session not finalized yet is gone at once, and its DELETED watch event may empty
    // the cache before the DELETE's answer (a Status, for a custom resource) arrives.
    const cached = this.caches.sessions.get(`${namespace}/${name}`);
    try {
      // DELETE answers with the object (finalizer pending: Terminating) or a Status once it is gone.
      const res = await this.client.delete<VDISession | { kind: 'Status' }>(path, impersonate(identity));
      if (res && 'spec' in res) this.caches.sessions.remember(res);
      const session = res && 'spec' in res ? res : (this.caches.sessions.get(`${namespace}/${name}`) ?? cached);
      if (!session) throw notFound(`session "${name}"`);
      return clean({ ...session, status: { ...session.status, phase: 'Terminating' } });
    } catch (err) {
      throw fromKubeError(err, `session "${name}"`);
    }
  }

  /** New timeout = the session's age now + `by` (default: the template's default timeout), within the maximum. */
  async extendSession(identity: Identity, name: string, user: string | null | undefined, by: string | null | undefined): Promise<VDISession> {
    const namespace = this.namespaces.namespaceOf(user ?? identity.name);
    const current = this.caches.sessions.get(`${namespace}/${name}`);
    if (!current || !(await this.authorizer.can(identity, { ...sessionsResource(namespace, 'get'), name }))) throw notFound(`session "${name}"`);
    await this.require(identity, { ...sessionsResource(namespace, 'patch'), name });
    const template = this.caches.templates.get(current.spec.template);
    const byMs = parseDuration(by ?? template?.spec.defaultTimeout ?? this.reconcilerConfig.defaultSessionTimeout);
    if (!byMs) throw badInput('by must be a duration such as 1h or 30m', 'by');
    // The timeout counts from the first start, across stops and resumes (operator/status.ts).
    const started = Date.parse(
      current.status?.firstStartTime ?? current.status?.startTime ?? current.metadata.creationTimestamp ?? new Date().toISOString(),
    );
    const maxMs = template?.spec.maxTimeout ? parseDuration(template.spec.maxTimeout) : undefined;
    let timeoutMs = Math.ceil((Date.now() - started + byMs) / 1000) * 1000;
    if (maxMs !== undefined) {
      const currentMs = parseDuration(current.spec.timeout ?? '') ?? 0;
      if (currentMs >= maxMs) throw badInput(`the session is already at the template's maximum of ${template!.spec.maxTimeout}`, 'by');
      timeoutMs = Math.min(timeoutMs, maxMs);
    }
    try {
      const patched = await this.client.mergePatch<VDISession>(
        namedPath('VDISession', namespace, name),
        // The annotation restarts the idle clock (operator/idle.ts): an extend, like a client, says someone is there.
        { metadata: { annotations: { [ANNOTATION_EXTENDED_AT]: new Date().toISOString() } }, spec: { timeout: formatDuration(timeoutMs) } },
        impersonate(identity),
      );
      this.caches.sessions.remember(patched);
      return clean(patched);
    } catch (err) {
      throw fromKubeError(err, `session "${name}"`);
    }
  }

  /**
   * Clears spec.suspend (and the reconciler's stop reason), as the user: the reconciler starts the desktop again
   * with the same home volume. Refused up front when the user's GPU quota cannot hold it any more (another
   * session took the slice meanwhile), as a create would be. A session that is not stopped is returned as it is.
   */
  async resumeSession(identity: Identity, name: string, user: string | null | undefined): Promise<VDISession> {
    const namespace = this.namespaces.namespaceOf(user ?? identity.name);
    const current = this.caches.sessions.get(`${namespace}/${name}`);
    if (!current || !(await this.authorizer.can(identity, { ...sessionsResource(namespace, 'get'), name }))) throw notFound(`session "${name}"`);
    await this.require(identity, { ...sessionsResource(namespace, 'patch'), name });
    if (current.metadata.deletionTimestamp) throw conflict(`session "${name}" is being deleted`);
    if (!current.spec.suspend && current.status?.phase !== 'Stopped') return clean(current);
    const gpu = sessionGpuSlices(current, this.caches.templates.get(current.spec.template), this.reconcilerConfig);
    await this.checkGpuQuota(namespace, gpu);
    try {
      const patched = await this.client.mergePatch<VDISession>(
        namedPath('VDISession', namespace, name),
        {
          metadata: { annotations: { [ANNOTATION_STOP_REASON]: null, [ANNOTATION_EXTENDED_AT]: null } },
          spec: { suspend: null },
        },
        impersonate(identity),
      );
      this.caches.sessions.remember(patched);
      return clean(patched);
    } catch (err) {
      throw fromKubeError(err, `session "${name}"`);
    }
  }

  /** What idle stops give back now, cluster-wide (admins: those who may list every session). */
  async idleReclaim(identity: Identity): Promise<IdleReclaimFigures> {
    await this.require(identity, sessionsResource(undefined, 'list'));
    return idleReclaimFigures(this.caches.sessions.list(), (name) => this.caches.templates.get(name), this.reconcilerConfig, new Date());
  }

  /**
   * Session events for a subscription, authorised as the subscriber before anything is delivered and again
   * while it runs, with the question the HTTP query asks. In the caller's own namespace a refusal withholds
   * (the query answers [] there until the namespace is provisioned); anywhere else it ends the subscription.
   */
  async subscribeSessions(
    identity: Identity,
    opts: { user?: string | null; allUsers?: boolean | null; name?: string | null },
    direct?: (event: SessionEventModel) => boolean,
  ): Promise<AsyncIterableIterator<SessionEventModel>> {
    const namespace = await this.scope(identity, opts.user, opts.allUsers, 'watch');
    const question = sessionsResource(namespace, 'watch');
    return this.events.subscribe({
      namespace,
      name: opts.name ?? undefined,
      authorize: () => this.authorizer.can(identity, question),
      authorizationKey: this.authorizer.key(identity, question),
      whenRefused: opts.allUsers || (opts.user && opts.user !== identity.name) ? 'end' : 'withhold',
      direct,
    });
  }

  // ---- quota and capacity ----

  /** Sessions and GPU slices used in a user's namespace, beside the ResourceQuota's limits (null: unlimited). */
  async quota(namespace: string): Promise<{ sessions: QuotaUsage; gpus: QuotaUsage }> {
    let hard: Record<string, string> = {};
    try {
      const quota = await this.client.get<V1ResourceQuota>(namedPath('ResourceQuota', namespace, QUOTA_NAME));
      hard = quota.status?.hard ?? quota.spec?.hard ?? {};
    } catch (err) {
      // Only a missing quota means "not provisioned yet": the user's first session will provision the quota every
      // namespace gets, so that is their limit already. A refusal or an outage must not pass for one. The read is
      // the service's own, so a 403 is its RBAC's fault, not the caller's: left untyped, it becomes an internal
      // error that the server logs.
      if (!isNotFound(err)) throw err instanceof KubeError && err.status === 403 ? err : fromKubeError(err, 'your quota');
      hard = this.namespaces.quotaHard();
    }
    const mine = this.caches.sessions.list().filter((s) => s.metadata.namespace === namespace);
    const limit = (k: string) => (hard[k] !== undefined ? Number(hard[k]) : null);
    return {
      sessions: { used: mine.length, limit: limit(SESSION_COUNT_RESOURCE) },
      gpus: { used: this.gpuSlicesInUse(mine), limit: limit(`requests.${this.reconcilerConfig.gpuResourceName}`) },
    };
  }

  /**
   * GPU slices held by sessions that still have (or will get) a pod, each counted as the reconciler gives it
   * (the template's default applied: a CPU-only template's session holds none).
   */
  private gpuSlicesInUse(sessions: VDISession[]): number {
    return (
      sessions
        // A stopped desktop holds no slice until it resumes (resumeSession checks the quota again then).
        .filter((s) => !s.metadata.deletionTimestamp && !s.spec.suspend && !['Failed', 'Expired', 'Stopped'].includes(s.status?.phase ?? ''))
        .reduce((n, s) => n + sessionGpuSlices(s, this.caches.templates.get(s.spec.template), this.reconcilerConfig), 0)
    );
  }

  /** Refuses up front a session whose GPU slices the user's quota cannot hold (its pod would be refused later). */
  private async checkGpuQuota(namespace: string, gpu: number): Promise<void> {
    if (gpu === 0) return;
    const { gpus } = await this.quota(namespace);
    if (gpus.limit !== null && gpus.used + gpu > gpus.limit) {
      throw quotaExceeded(`this needs ${gpu} GPU slice(s); the quota allows ${gpus.limit} and ${gpus.used} are in use`);
    }
  }

  capacity(): { totalSlices: number; usedSlices: number; freeSlices: number; nodes: GpuNodeCapacity[] } {
    const resource = this.reconcilerConfig.gpuResourceName;
    const used = new Map<string, number>();
    for (const pod of this.caches.pods.list()) {
      const node = pod.spec?.nodeName;
      if (!node || pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed') continue;
      const slices = (pod.spec?.containers ?? []).reduce((n, c) => n + Number(c.resources?.limits?.[resource] ?? 0), 0);
      used.set(node, (used.get(node) ?? 0) + slices);
    }
    const nodes: GpuNodeCapacity[] = [];
    for (const node of this.caches.nodes.list()) {
      const total = Number(node.status?.allocatable?.[resource] ?? 0);
      if (!total) continue;
      const slicesUsed = Math.min(used.get(node.metadata!.name!) ?? 0, total);
      nodes.push({
        name: node.metadata!.name!,
        product: node.metadata?.labels?.['nvidia.com/gpu.product'] ?? null,
        ready: node.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false,
        slicesTotal: total,
        slicesUsed,
        slicesFree: total - slicesUsed,
      });
    }
    nodes.sort((a, b) => a.name.localeCompare(b.name));
    const totalSlices = nodes.reduce((n, x) => n + x.slicesTotal, 0);
    const usedSlices = nodes.reduce((n, x) => n + x.slicesUsed, 0);
    return { totalSlices, usedSlices, freeSlices: totalSlices - usedSlices, nodes };
  }

  private async require(identity: Identity, q: AccessQuestion): Promise<void> {
    if (!(await this.authorizer.can(identity, q))) throw forbidden();
  }
}
