// Each user's sessions live in the user's own namespace, created on first use by the service account with a
// RoleBinding to the shipped vdi-user ClusterRole (for that user only) and a ResourceQuota. Everything the
// user does inside it is then decided by Kubernetes RBAC, quotas and admission, for GraphQL and kubectl alike.
import type { Identity } from '../../auth/identity.ts';
import { userNamespace } from '../../auth/namespace.ts';
import { LABEL_USER, MANAGER } from '../../operator/v1alpha1.ts';
import { userLabelValue } from '../../operator/naming.ts';
import type { Config } from '../config.ts';
import type { KubeClient } from '../kube/client.ts';

export const QUOTA_NAME = 'vdi-quota';
export const SESSION_COUNT_RESOURCE = 'count/vdisessions.vdi.kasm.io';

export class UserNamespaces {
  private readonly client: KubeClient;
  private readonly config: Config['users'];
  private readonly gpuResource: string;
  readonly usernamePrefix: string;
  private readonly ensured = new Map<string, Promise<string>>();

  constructor(client: KubeClient, config: Config) {
    this.client = client;
    this.config = config.users;
    this.gpuResource = config.desktops.gpuResourceName;
    this.usernamePrefix = config.oidc.usernamePrefix;
  }

  /** The namespace of a user by their unprefixed name (spec.user). */
  namespaceOf(name: string): string {
    return userNamespace(name, this.config.namespacePrefix);
  }

  /**
   * Creates (once per process and user) the namespace, its RoleBinding and its ResourceQuota. Resolves to
   * true when this call provisioned it (the user's permissions may just have changed), false when done before.
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
    const annotations = { [LABEL_USER]: name };
    await this.client.apply(`/api/v1/namespaces/${ns}`, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns, labels, annotations } }, MANAGER);
    await this.client.apply(
      `/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/rolebindings/vdi-user`,
      {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'RoleBinding',
        metadata: { name: 'vdi-user', namespace: ns, labels, annotations },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: this.config.userClusterRole },
        subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: `${this.usernamePrefix}${name}` }],
      },
      MANAGER,
    );
    await this.client.apply(
      `/api/v1/namespaces/${ns}/resourcequotas/${QUOTA_NAME}`,
      {
        apiVersion: 'v1',
        kind: 'ResourceQuota',
        metadata: { name: QUOTA_NAME, namespace: ns, labels },
        spec: { hard: { [SESSION_COUNT_RESOURCE]: String(this.config.quotaSessions), [`requests.${this.gpuResource}`]: String(this.config.quotaGpus) } },
      },
      MANAGER,
    );
    return ns;
  }
}
