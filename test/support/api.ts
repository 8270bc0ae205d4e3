// Runs the whole service (API + reconciler) in-process against the shared test cluster, with a real
// in-process OIDC issuer, and talks to it over real HTTP and a real graphql-ws client.
import { randomBytes } from 'node:crypto';
import { createClient, type Client } from 'graphql-ws';
import { pino } from 'pino';
import WebSocket from 'ws';
import { loadConfig } from '../../src/config.ts';
import { startService, type Service } from '../../src/service.ts';
import { startOidcIssuer, type OidcIssuer, type TestUser } from '../../dev/oidc-issuer.ts';
import { adminClient, adminKubeConfig } from './cluster.ts';

export const AUDIENCE = 'urn:vdi-operator:test';

export const USERS = {
  alice: { email: 'alice@example.com', groups: ['vdi-users'] },
  bob: { email: 'bob@example.com', groups: ['vdi-users'] },
  admin: { email: 'admin@example.com', groups: ['vdi-admins'] },
} satisfies Record<string, TestUser>;

export interface GraphQLResponse<T = Record<string, unknown>> {
  status: number;
  data?: T | null;
  errors?: { message: string; extensions?: { code?: string } }[];
}

export interface ApiStack {
  issuer: OidcIssuer;
  service: Service;
  url: string;
  leaseNamespace: string;
  token(user: TestUser, opts?: { expiresInSeconds?: number }): Promise<string>;
  gql<T = Record<string, unknown>>(token: string | undefined, query: string, variables?: Record<string, unknown>): Promise<GraphQLResponse<T>>;
  ws(token: string | undefined, onClose?: (code: number, reason: string) => void): Client;
  stop(): Promise<void>;
}

export async function startApiStack(env: Record<string, string> = {}, shared?: { issuer: OidcIssuer }): Promise<ApiStack> {
  const issuer = shared?.issuer ?? (await startOidcIssuer({ audience: AUDIENCE }));
  const leaseNamespace = `vdi-system-${randomBytes(3).toString('hex')}`;
  await adminClient().create('/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: leaseNamespace } });
  const config = loadConfig(
    {
      PORT: '0',
      HOST: '127.0.0.1',
      OIDC_ISSUER_URL: issuer.issuer,
      OIDC_AUDIENCE: AUDIENCE,
      OIDC_ALLOW_INSECURE_ISSUER: 'true',
      POD_NAMESPACE: leaseNamespace,
      POD_NAME: `api-test-${randomBytes(2).toString('hex')}`,
      VDI_URL_SCHEME: 'http',
      VDI_DOMAIN: 'vdi.test',
      LOG_LEVEL: 'silent',
      ...env,
    },
    [],
  );
  const service = await startService({ config, kubeConfig: adminKubeConfig(), log: pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }) });
  // Ready as a Kubernetes readiness probe would let traffic in: answers come from synced caches.
  await service.synced;
  const url = service.url;
  const sockets: Client[] = [];
  return {
    issuer,
    service,
    url,
    leaseNamespace,
    token: (user, opts) => issuer.tokenFor(user, opts),
    async gql(token, query, variables) {
      const res = await fetch(`${url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
        body: JSON.stringify({ query, variables }),
      });
      const body = (await res.json()) as Omit<GraphQLResponse, 'status'>;
      return { status: res.status, ...body } as GraphQLResponse<never>;
    },
    ws(token, onClose) {
      const client = createClient({
        url: `${url.replace('http', 'ws')}/graphql`,
        webSocketImpl: WebSocket,
        connectionParams: token ? { authorization: `Bearer ${token}` } : {},
        retryAttempts: 0,
        lazy: false,
        on: { closed: (e) => onClose?.((e as { code: number }).code, (e as { reason: string }).reason) },
        onNonLazyError: () => {},
      });
      sockets.push(client);
      return client;
    },
    async stop() {
      for (const s of sockets) await s.dispose();
      await service.stop();
      if (!shared) await issuer.close();
      await adminClient()
        .delete(`/api/v1/namespaces/${leaseNamespace}`)
        .catch(() => {});
    },
  };
}

/** Collects a subscription's events until `until` says stop (or the timeout passes). */
export function collect<T>(
  client: Client,
  query: string,
  variables: Record<string, unknown>,
  until: (events: T[]) => boolean,
  timeoutMs = 30_000,
): Promise<T[]> {
  const events: T[] = [];
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      dispose();
      reject(new Error(`subscription did not complete in time; got ${JSON.stringify(events).slice(0, 2000)}`));
    }, timeoutMs);
    const dispose = client.subscribe<T>(
      { query, variables },
      {
        next: (value) => {
          if (value.errors) {
            clearTimeout(timer);
            dispose();
            reject(Object.assign(new Error('subscription error'), { errors: value.errors }));
            return;
          }
          events.push(value.data as T);
          if (until(events)) {
            clearTimeout(timer);
            dispose();
            resolve(events);
          }
        },
        error: (err) => {
          clearTimeout(timer);
          reject(err instanceof Error ? err : Object.assign(new Error('subscription error'), { errors: err }));
        },
        complete: () => {
          clearTimeout(timer);
          resolve(events);
        },
      },
    );
  });
}
