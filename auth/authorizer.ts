// Authorization decided by Kubernetes RBAC. Reads served from the informer cache are checked with a
// SubjectAccessReview that names the user and groups explicitly in its spec (never a self-review sent with
// credentials a client library might drop, which made every review in the closest prior art run as the
// service account), cached briefly per identity and question.
import { utf8HeaderValue, type KubeClient } from '../src/kube/client.ts';
import type { Identity } from './identity.ts';

export interface AccessQuestion {
  verb: 'get' | 'list' | 'watch' | 'create' | 'update' | 'patch' | 'delete';
  group: string;
  resource: string;
  namespace?: string;
  name?: string;
}

export interface Authorizer {
  can(identity: Identity, q: AccessQuestion): Promise<boolean>;
  /** Equal for two calls of can() that always get the same answer (the same identity asking the same question). */
  key(identity: Identity, q: AccessQuestion): string;
  /** Drops cached decisions about a user (after their permissions changed, e.g. a new RoleBinding). */
  forget(username: string): void;
}

interface CacheEntry {
  allowed: Promise<boolean>;
  at: number;
}

function decisionKey(identity: Identity, q: AccessQuestion): string {
  return JSON.stringify([identity.username, identity.groups, q.verb, q.group, q.resource, q.namespace ?? '', q.name ?? '']);
}

export function createAuthorizer(client: KubeClient, opts: { ttlMs?: number; deniedTtlMs?: number; maxEntries?: number } = {}): Authorizer {
  const ttlMs = opts.ttlMs ?? 10_000;
  // A denial is kept only briefly: a user's first session creates the RoleBinding that changes the answer.
  const deniedTtlMs = opts.deniedTtlMs ?? 1_000;
  const maxEntries = opts.maxEntries ?? 50_000;
  const cache = new Map<string, CacheEntry>();
  return {
    forget(username) {
      const prefix = JSON.stringify([username]).slice(0, -1);
      for (const key of cache.keys()) if (key.startsWith(prefix)) cache.delete(key);
    },
    key: decisionKey,
    async can(identity, q) {
      // A review about a name the apiserver would read differently (a lone surrogate becomes U+FFFD in JSON)
      // would answer for someone else: refused like the impersonated request it stands for.
      for (const name of [identity.username, ...identity.groups]) utf8HeaderValue(name);
      const key = decisionKey(identity, q);
      const hit = cache.get(key);
      if (hit && Date.now() - hit.at < deniedTtlMs) return await hit.allowed;
      if (hit && Date.now() - hit.at < ttlMs && (await hit.allowed)) return true;
      const allowed = client
        .create<{ status?: { allowed?: boolean } }>('/apis/authorization.k8s.io/v1/subjectaccessreviews', {
          apiVersion: 'authorization.k8s.io/v1',
          kind: 'SubjectAccessReview',
          spec: {
            user: identity.username,
            // Impersonated requests are authenticated; the review must see the same groups the apiserver would.
            groups: [...identity.groups, 'system:authenticated'],
            resourceAttributes: { verb: q.verb, group: q.group, resource: q.resource, namespace: q.namespace, name: q.name },
          },
        })
        .then((r) => r.status?.allowed === true);
      if (cache.size >= maxEntries) cache.delete(cache.keys().next().value!);
      cache.set(key, { allowed, at: Date.now() });
      try {
        return await allowed;
      } catch (err) {
        cache.delete(key);
        throw err;
      }
    },
  };
}
