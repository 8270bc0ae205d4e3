// Each user's sessions live in the user's own namespace, created on first use by the service account with a
// RoleBinding to the shipped vdi-user ClusterRole (for that user only) and a ResourceQuota. Everything the
// user does inside it is then decided by Kubernetes RBAC, quotas and admission, for GraphQL and kubectl alike.
//
// Provisioning never takes over an object that exists already: each object records its owner's exact name in
// the `vdi.kasm.io/user` annotation, and an existing one is changed only by a JSON patch whose first operation
// tests that annotation, so the check and the change are one atomic write. An object owned by anyone else (or
// by no one) is left exactly as it is, and the caller is refused (docs/adr/0006-one-identity-one-namespace.md).
import type { Identity } from '../../auth/identity.ts';
import { userNamespace } from '../../auth/namespace.ts';
import { LABEL_USER, MANAGER } from '../../operator/v1alpha1.ts';
import { userLabelValue } from '../../operator/naming.ts';
import type { Config } from '../config.ts';
import { badInput, forbidden } from '../errors.ts';
import { KubeError, isConflict, type KubeClient } from '../kube/client.ts';
import type { Logger } from '../log.ts';
import { collectionPath } from '../../operator/kinds.ts';

export const QUOTA_NAME = 'vdi-quota';
export const SESSION_COUNT_RESOURCE = 'count/vdisessions.vdi.kasm.io';
/** The annotation that names an object's owner: the exact, unprefixed verified name. */
export const OWNER_ANNOTATION = LABEL_USER;
const OWNER_POINTER = `/metadata/annotations/${OWNER_ANNOTATION.replaceAll('~', '~0').replaceAll('/', '~1')}`;

export type ProvisionedKind = 'Namespace' | 'RoleBinding' | 'ResourceQuota';

export interface UserNamespacesOptions {
  log?: Pick<Logger, 'warn'>;
  /** Called once for each object provisioning refused to take over. */
  onTakeoverRefused?: (kind: ProvisionedKind) => void;
}

type JsonPatchOperation = { op: 'test' | 'replace' | 'add'; path: string; value: unknown };

export class UserNamespaces {
  private readonly client: KubeClient;
  private readonly config: Config['users'];
  private readonly gpuResource: string;
  readonly usernamePrefix: string;
  private readonly ensured = new Map<string, Promise<string>>();
  private readonly options: UserNamespacesOptions;

  constructor(client: KubeClient, config: Config, options: UserNamespacesOptions = {}) {
    this.client = client;
    this.config = config.users;
    this.gpuResource = config.desktops.gpuResourceName;
    this.usernamePrefix = config.oidc.usernamePrefix;
    this.options = options;
  }

  /** The ResourceQuota limits every user's namespace is provisioned with (and has until then, in effect). */
  quotaHard(): Record<string, string> {
    return { [SESSION_COUNT_RESOURCE]: String(this.config.quotaSessions), [`requests.${this.gpuResource}`]: String(this.config.quotaGpus) };
  }

  /** The namespace of a user by their unprefixed name (spec.user). */
  namespaceOf(name: string): string {
    // A user argument is client input: one with a lone surrogate names no one (no identity can hold it).
    if (!name.isWellFormed()) throw badInput('user is not a valid user name', 'user');
    return userNamespace(name, this.config.namespacePrefix);
  }

  /**
   * Creates (once per process and user) the namespace, its RoleBinding and its ResourceQuota. Resolves to
   * true when this call provisioned it (the user's permissions may just have changed), false when done before.
   * Refuses with FORBIDDEN, changing nothing, when any of them exists and belongs to someone else.
   */
  async ensure(user: Pick<Identity, 'name'>): Promise<boolean> {
    const existing = this.ensured.get(user.name);
    if (existing) {
      await existing;
      return false;
    }
    const pending = this.provision(user.name);
    this.ensured.set(user.name, pending);
    pending.catch(() => this.ensured.delete(user.name));
    await pending;
    return true;
  }

  private async provision(name: string): Promise<string> {
    const ns = this.namespaceOf(name);
    const labels = { [LABEL_USER]: userLabelValue(name), 'app.kubernetes.io/managed-by': MANAGER };
    const annotations = { [OWNER_ANNOTATION]: name };
    const metadata = (extra: Record<string, string> = {}) => ({ ...extra, labels, annotations });
    await this.claim(
      name,
      'Namespace',
      collectionPath('Namespace'),
      ns,
      { apiVersion: 'v1', kind: 'Namespace', metadata: metadata({ name: ns }) },
      [],
    );

    const subjects = [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: `${this.usernamePrefix}${name}` }];
    await this.claim(
      name,
      'RoleBinding',
      collectionPath('RoleBinding', ns),
      'vdi-user',
      {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'RoleBinding',
        metadata: metadata({ name: 'vdi-user', namespace: ns }),
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: this.config.userClusterRole },
        subjects,
      },
      // The owner's own binding is put back to the owner alone (a subject added by hand is dropped).
      [{ op: 'replace', path: '/subjects', value: subjects }],
    );

    const hard = this.quotaHard();
    await this.claim(
      name,
      'ResourceQuota',
      collectionPath('ResourceQuota', ns),
      QUOTA_NAME,
      { apiVersion: 'v1', kind: 'ResourceQuota', metadata: metadata({ name: QUOTA_NAME, namespace: ns }), spec: { hard } },
      // The configured limits win over earlier ones (the configuration may have changed since).
      [{ op: 'replace', path: '/spec/hard', value: hard }],
    );
    return ns;
  }

  /**
   * Creates the object, or, when it exists, applies `updates` to it only if its owner annotation is `owner`:
   * the apiserver applies a JSON patch whole or not at all, so a failed `test` leaves it untouched.
   */
  private async claim(
    owner: string,
    kind: ProvisionedKind,
    collection: string,
    name: string,
    body: unknown,
    updates: JsonPatchOperation[],
  ): Promise<void> {
    try {
      await this.client.create(collection, body);
      return;
    } catch (err) {
      if (!isConflict(err)) throw err;
    }
    try {
      await this.client.jsonPatch(`${collection}/${name}`, [{ op: 'test', path: OWNER_POINTER, value: owner }, ...updates], MANAGER);
    } catch (err) {
      // A failed test (another owner, or none) is an invalid patch: 422, or 400 from some versions.
      if (!(err instanceof KubeError && (err.status === 422 || err.status === 400))) throw err;
      this.options.log?.warn(
        { kind, name, namespace: kind === 'Namespace' ? name : this.namespaceOf(owner), user: owner },
        'refused to take over an object that belongs to another user',
      );
      this.options.onTakeoverRefused?.(kind);
      throw forbidden('your namespace cannot be set up: its name is held by another user; ask an administrator');
    }
  }
}
