// The embedded local default of `npm start`: a real control plane on loopback (etcd, kube-apiserver,
// controller-manager, scheduler, kwok with simulated GPU nodes) and an in-process OIDC issuer. For
// development and demos only; a production deployment always has a cluster and an issuer.
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { KubeConfig } from '@kubernetes/client-node';
import { ControlPlane } from './control-plane.ts';
import { startOidcIssuer } from './oidc-issuer.ts';
import type { Config } from '../src/config.ts';
import type { Logger } from '../src/log.ts';

export interface LocalStack {
  config: Config;
  kubeConfig: KubeConfig;
  stop(): Promise<void>;
}

const repoRoot = path.resolve(import.meta.dirname, '..');

export async function startLocalStack(config: Config, log: Logger): Promise<LocalStack> {
  log.info('no cluster configured (KUBECONFIG, ~/.kube/config, in-cluster): starting the embedded local control plane');
  const cp = await ControlPlane.start({ handleSignals: false, log: (line) => log.info(line) });
  const client = cp.client();
  await client.apply(`/api/v1/namespaces/${config.namespace}`, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: config.namespace } }, 'vdi-local');
  for (const dir of ['deploy/rbac', 'deploy/examples']) await cp.applyManifests(path.join(repoRoot, dir), ['VDISession']);
  const port = config.port || 8080;
  // oidc-provider issues audience-bound tokens only for resource indicators that are absolute URIs.
  const audience = 'urn:vdi-operator:api';
  const issuer = await startOidcIssuer({
    audience,
    users: { 'alice@example.com': { groups: ['vdi-users'] }, 'bob@example.com': { groups: ['vdi-users'] }, 'admin@example.com': { groups: ['vdi-admins'] } },
    redirectUris: [`http://127.0.0.1:${port}/callback`, `http://localhost:${port}/callback`],
  });
  // Tokens for trying the API by hand, written where only this user can read them (never logged).
  const tokenDir = path.join(repoRoot, '.vdi', 'local');
  await mkdir(tokenDir, { recursive: true, mode: 0o700 });
  for (const [user, groups] of [['alice@example.com', ['vdi-users']], ['bob@example.com', ['vdi-users']], ['admin@example.com', ['vdi-admins']]] as const) {
    const token = await issuer.tokenFor({ email: user, groups: [...groups] }, { expiresInSeconds: 12 * 3600 });
    await writeFile(path.join(tokenDir, `${user.split('@')[0]}.token`), token, { mode: 0o600 });
  }
  log.info(
    { kubeconfig: cp.kubeconfigPath, kubectl: cp.bins.kubectl, issuer: issuer.issuer, tokens: tokenDir },
    `local cluster ready: export KUBECONFIG=${cp.kubeconfigPath}; tokens for alice, bob and admin are in ${tokenDir}`,
  );
  return {
    config: {
      ...config,
      host: '127.0.0.1',
      oidc: { ...config.oidc, issuerUrl: issuer.issuer, audience, allowInsecureIssuer: true },
      desktops: { ...config.desktops, urlScheme: 'http', internalUrl: `http://127.0.0.1:${port}` },
    },
    kubeConfig: cp.kubeConfig(),
    async stop() {
      await issuer.close();
      await cp.stop();
    },
  };
}
