// The embedded local default of `npm start`: a real control plane on loopback (etcd, kube-apiserver,
// controller-manager, scheduler, kwok with simulated GPU nodes), an in-process OIDC issuer with three dev
// accounts for browser login, and the configuration that points the service at both. For development and demos
// only; a production deployment always has a cluster and an issuer.
import { randomBytes } from 'node:crypto';
import { copyFile, mkdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { KubeConfig } from '@kubernetes/client-node';
import { ConfigError, loadConfig, type Config } from '../src/config.ts';
import type { Logger } from '../src/log.ts';
import { ControlPlane, freePort } from './control-plane.ts';
import { prepareLocalDesktops, startDesktopsInLocalStack } from './desktops/local-access.ts';
import { insideLocalNetwork } from './local-network.ts';
import { startOidcIssuer } from './oidc-issuer.ts';

export interface LocalStack {
  config: Config;
  kubeConfig: KubeConfig;
  /** What a person needs to use it, in plain words, for the last lines of the log. */
  howTo: string[];
  stop(): Promise<void>;
}

export interface LocalStackOptions {
  env: Record<string, string | undefined>;
  log: Logger;
  /** Aborted when the process begins to shut down: during the start, stop what has started and reject. */
  signal?: AbortSignal;
}

/** The dev accounts of the local issuer: devInteractions accepts any password. */
export const DEV_USERS: Record<string, string[]> = {
  'alice@example.com': ['vdi-users'],
  'bob@example.com': ['vdi-users'],
  'admin@example.com': ['vdi-admins'],
};

/** oidc-provider issues audience-bound tokens only for resource indicators that are absolute URIs. */
export const LOCAL_AUDIENCE = 'urn:vdi-operator:api';
/** The portal's host: desktops are `<name>-<namespace>.vdi.localhost`, so one cookie domain covers both. */
export const LOCAL_DOMAIN = 'vdi.localhost';

const repoRoot = path.resolve(import.meta.dirname, '..');

/** A port from the environment, or a free one when it is unset or 0 (the tests' way of asking for any). */
async function portFrom(env: LocalStackOptions['env'], name: string, fallback: number | undefined): Promise<number> {
  const raw = env[name];
  const wanted = raw === undefined || raw === '' ? fallback : Number(raw);
  return wanted ? wanted : await freePort();
}

export async function startLocalStack({ env, log, signal }: LocalStackOptions): Promise<LocalStack> {
  log.info('no cluster configured (KUBECONFIG, ~/.kube/config, in-cluster): starting the embedded local control plane');
  const port = await portFrom(env, 'PORT', 8080);
  const issuerPort = await portFrom(env, 'VDI_LOCAL_ISSUER_PORT', env.PORT === '0' ? undefined : port + 1);
  const publicUrl = `http://${LOCAL_DOMAIN}:${port}`;
  const stops: (() => Promise<void>)[] = [];
  const stopAll = async () => {
    for (const stop of stops.splice(0).reverse()) await stop().catch(() => {});
  };
  const tokenDir = path.join(repoRoot, '.vdi', 'local');
  await mkdir(tokenDir, { recursive: true, mode: 0o700 });
  stops.push(await claimLocalDir(tokenDir));

  // Inside the network namespace npm start made for real desktops (dev/local-network.ts): the pod range is local.
  const desktops = insideLocalNetwork(env) ? prepareLocalDesktops(env) : undefined;

  try {
    const cp = await ControlPlane.start({ handleSignals: false, signal, log: (line) => log.info(line), ...desktops?.controlPlane });
    stops.push(() => cp.stop());
    signal?.throwIfAborted();
    const namespace = env.POD_NAMESPACE || 'vdi-system';
    const client = cp.client();
    await client.apply(`/api/v1/namespaces/${namespace}`, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } }, 'vdi-local');
    for (const dir of ['deploy/rbac', 'deploy/examples']) await cp.applyManifests(path.join(repoRoot, dir), ['VDISession']);

    const issuer = await startOidcIssuer({
      port: issuerPort,
      audience: LOCAL_AUDIENCE,
      users: Object.fromEntries(Object.entries(DEV_USERS).map(([email, groups]) => [email, { groups }])),
      redirectUris: [`${publicUrl}/callback`],
      accessTokenTTLSeconds: 3600,
    });
    stops.push(() => issuer.close());
    signal?.throwIfAborted();

    // Tokens for trying the API by hand, written where only this user can read them (never logged).
    for (const [email, groups] of Object.entries(DEV_USERS)) {
      const token = await issuer.tokenFor({ email, groups }, { expiresInSeconds: 12 * 3600 });
      await writeFile(path.join(tokenDir, `${email.split('@')[0]}.token`), token, { mode: 0o600 });
    }

    // The local defaults, under whatever the person set themselves. One config module still validates it all.
    const defaults: Record<string, string> = {
      PORT: String(port),
      HOST: '127.0.0.1',
      POD_NAMESPACE: namespace,
      OIDC_ISSUER_URL: issuer.issuer,
      OIDC_AUDIENCE: LOCAL_AUDIENCE,
      OIDC_ALLOW_INSECURE_ISSUER: 'true',
      OIDC_CLIENT_SECRET: issuer.portalClient.clientSecret,
      VDI_LOGIN_RESOURCE: LOCAL_AUDIENCE,
      VDI_DOMAIN: LOCAL_DOMAIN,
      VDI_URL_SCHEME: 'http',
      VDI_PUBLIC_URL: publicUrl,
      VDI_INTERNAL_URL: `http://127.0.0.1:${port}`,
      VDI_COOKIE_DOMAIN: LOCAL_DOMAIN,
      VDI_COOKIE_SECURE: 'false',
      // A fresh key each start: a restart signs everybody out, which is fine on a laptop.
      VDI_COOKIE_KEYS: randomBytes(32).toString('hex'),
      ...desktops?.env,
    };
    const set = Object.fromEntries(Object.entries(env).filter(([k, v]) => v !== undefined && v !== '' && !(k === 'PORT' && v === '0')));
    const config = loadConfig({ ...defaults, ...set });
    const desktopAccess = desktops
      ? await startDesktopsInLocalStack({ controlPlane: cp, desktopPort: desktops.desktopPort, ports: [port, issuerPort], log, signal })
      : undefined;
    if (desktopAccess) stops.push(() => desktopAccess.stop());

    // Stable names for the cluster's kubeconfig and kubectl, so the README's commands work as written.
    const kubeconfig = path.join(tokenDir, 'kubeconfig');
    await copyFile(cp.kubeconfigPath, kubeconfig);
    const binDir = path.join(tokenDir, 'bin');
    await mkdir(binDir, { recursive: true });
    await rm(path.join(binDir, 'kubectl'), { force: true });
    await symlink(cp.bins.kubectl!, path.join(binDir, 'kubectl'));
    stops.push(() => rm(kubeconfig, { force: true }));
    const rel = (p: string) => path.relative(process.cwd(), p) || '.';
    const howTo = [
      `Open ${publicUrl} in a browser (Chromium, Chrome, Firefox) and sign in as alice@example.com, bob@example.com or admin@example.com, with any password.`,
      `kubectl: export KUBECONFIG=$PWD/${rel(kubeconfig)} PATH=$PWD/${rel(binDir)}:$PATH`,
      `GraphQL: http://localhost:${port}/graphql with "authorization: Bearer $(cat ${rel(tokenDir)}/alice.token)" (also bob.token and admin.token)`,
      ...(desktopAccess ? [desktopAccess.howTo] : []),
      'Ctrl-C stops everything.',
    ];
    log.info(
      { kubeconfig, kubectl: path.join(binDir, 'kubectl'), issuer: issuer.issuer, tokens: tokenDir },
      `local cluster ready: export KUBECONFIG=${kubeconfig}; tokens for alice, bob and admin are in ${tokenDir}`,
    );
    return { config, kubeConfig: cp.kubeConfig(), howTo, stop: stopAll };
  } catch (err) {
    await stopAll();
    throw err;
  }
}

/**
 * One local default per checkout: the kubeconfig, kubectl and tokens in `dir` are its own, and a second one would
 * overwrite them, then delete the kubeconfig when it stops. A claim whose process is gone (killed) is taken over.
 * Returns the release.
 */
export async function claimLocalDir(dir: string): Promise<() => Promise<void>> {
  const file = path.join(dir, 'owner.pid');
  for (let attempt = 0; ; attempt++) {
    try {
      await writeFile(file, String(process.pid), { flag: 'wx', mode: 0o600 });
      return () => rm(file, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const pid = Number((await readFile(file, 'utf8').catch(() => '')).trim());
      if (attempt > 0 || (pid && pid !== process.pid && alive(pid))) {
        throw new ConfigError(
          `another local default is running from this checkout${pid ? ` (pid ${pid})` : ''}: stop it first (Ctrl-C), or start one from a clone of its own`,
          { cause: err },
        );
      }
      await rm(file, { force: true });
    }
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists, as another user's.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
