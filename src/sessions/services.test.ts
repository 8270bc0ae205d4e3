import { describe, expect, it } from 'vitest';
import type { Authorizer } from '../../auth/authorizer.ts';
import type { Caches } from '../../operator/caches.ts';
import { KubeError, type KubeClient } from '../kube/client.ts';
import type { Logger } from '../log.ts';
import { maskError } from '../graphql/server.ts';
import { ApiServices } from './services.ts';
import type { UserNamespaces } from './user-namespaces.ts';
import { testReconcilerConfig } from '../../test/support/reconciler-config.ts';

/** Services whose read of the ResourceQuota fails with `err`, over an empty session cache. */
function servicesWhoseQuotaReadFails(err: Error): ApiServices {
  const client = { get: () => Promise.reject(err) } as unknown as KubeClient;
  const sessions = { list: () => [], on: () => () => {} };
  return new ApiServices({
    client,
    caches: { sessions } as unknown as Caches,
    authorizer: {} as Authorizer,
    namespaces: { quotaHard: () => ({ 'count/vdisessions.vdi.kasm.io': '3', 'requests.nvidia.com/gpu': '2' }) } as unknown as UserNamespaces,
    reconcilerConfig: testReconcilerConfig(),
  });
}

/** The error as a GraphQL client receives it (src/graphql/server.ts maskError), and whether the server logged it. */
function served(err: Error & { extensions?: Record<string, unknown> }): { code: unknown; message: string; logged: boolean } {
  let logged = false;
  const log = { error: () => void (logged = true) } as unknown as Logger;
  const shown = maskError({ message: err.message, extensions: err.extensions }, err, log);
  return { code: shown.extensions?.code, message: shown.message, logged };
}

describe('ApiServices.quota', () => {
  it('shows the quota every namespace is provisioned with while the ResourceQuota does not exist yet', async () => {
    const quota = await servicesWhoseQuotaReadFails(new KubeError(404, 'NotFound', 'resourcequotas "vdi-quota" not found')).quota('vdi-u-alice');
    expect(quota).toEqual({ sessions: { used: 0, limit: 3 }, gpus: { used: 0, limit: 2 } });
  });

  it.each([
    // The service's own read refused: its RBAC is wrong, which the caller can do nothing about; the log says so.
    [403, 'Forbidden', { code: 'INTERNAL_SERVER_ERROR', logged: true }],
    [500, 'InternalError', { code: 'UNAVAILABLE', logged: false }],
  ])('fails, rather than showing no limits, when reading it answers %i', async (status, reason, expected) => {
    const failure = await servicesWhoseQuotaReadFails(new KubeError(status, reason, 'etcd at 10.0.0.7 said no'))
      .quota('vdi-u-alice')
      .then(
        () => undefined,
        (err: Error) => err,
      );
    expect(failure).toBeInstanceOf(Error);
    const shown = served(failure!);
    expect(shown).toMatchObject(expected);
    expect(shown.message).not.toContain('10.0.0.7');
  });
});

/** Services over one session of alice's, with an authorizer that allows only `allowed` verbs; records what is sent. */
function servicesForAlice(allowed: string[]) {
  const sent: string[] = [];
  const asked: string[] = [];
  const ns = 'vdi-alice';
  const session = {
    metadata: { name: 'desk', namespace: ns, creationTimestamp: new Date().toISOString() },
    spec: { user: 'alice@example.com', template: 't' },
  };
  const client = {
    delete: async (path: string) => (sent.push(`DELETE ${path}`), session),
    mergePatch: async (path: string) => (sent.push(`PATCH ${path}`), session),
  } as unknown as KubeClient;
  const authorizer = {
    can: async (_identity: unknown, q: { verb: string; namespace?: string; name?: string }) => (
      asked.push(`${q.verb} ${q.namespace}/${q.name}`),
      allowed.includes(q.verb)
    ),
    key: () => 'k',
    forget: () => {},
  } as Authorizer;
  const services = new ApiServices({
    client,
    caches: {
      sessions: { list: () => [session], get: () => session, remember: () => {}, on: () => () => {} },
      templates: { get: () => undefined },
    } as unknown as Caches,
    authorizer,
    namespaces: { namespaceOf: () => ns } as unknown as UserNamespaces,
    reconcilerConfig: testReconcilerConfig(),
  });
  return { services, sent, asked };
}

const mallory = { username: 'oidc:mallory@example.com', name: 'mallory@example.com', groups: [], isAdmin: false };

describe('destructive mutations are authorised on the named session before anything is sent', () => {
  it('terminateVDISession asks for delete on that session and sends nothing when refused', async () => {
    const { services, sent, asked } = servicesForAlice(['get', 'list', 'watch']);
    await expect(services.terminateSession(mallory, 'desk', 'alice@example.com')).rejects.toMatchObject({ extensions: { code: 'FORBIDDEN' } });
    expect(asked).toContain('delete vdi-alice/desk');
    expect(sent).toEqual([]);
  });

  it('extendVDISession asks for patch on that session and sends nothing when refused', async () => {
    const { services, sent, asked } = servicesForAlice(['get', 'list', 'watch']);
    await expect(services.extendSession(mallory, 'desk', 'alice@example.com', '1h')).rejects.toMatchObject({ extensions: { code: 'FORBIDDEN' } });
    expect(asked).toContain('patch vdi-alice/desk');
    expect(sent).toEqual([]);
  });

  it('sends the DELETE when RBAC allows it', async () => {
    const { services, sent } = servicesForAlice(['get', 'delete']);
    await services.terminateSession(mallory, 'desk', 'alice@example.com');
    expect(sent).toEqual(['DELETE /apis/vdi.kasm.io/v1alpha1/namespaces/vdi-alice/vdisessions/desk']);
  });
});
