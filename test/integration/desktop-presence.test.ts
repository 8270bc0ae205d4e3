// Presence from a real desktop (#18): the pod the reconciler writes, run as the local default runs it (Xorg,
// openbox, xterm and Selkies 2.1 from PyPI, its env and its mounted presence token from the pod spec and Secret),
// opened in a real Chromium. Selkies' own connect and disconnect hooks report to the service: a client keeps the
// desktop running past its idle timeout, and once the browser leaves, the desktop is stopped.
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { V1Pod, V1Secret } from '@kubernetes/client-node';
import type { Browser, BrowserContext } from 'playwright-core';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ControlPlane } from '../../dev/control-plane.ts';
import { DesktopProcesses } from '../../dev/desktops/desktop-processes.ts';
import { ensureDesktopTools } from '../../dev/desktops/local-access.ts';
import { desktopLaunch, relocateMounts, selkiesInvocation } from '../../dev/desktops/pod-desktop.ts';
import { startOidcIssuer, type OidcIssuer } from '../../dev/oidc-issuer.ts';
import { SECRET_KEY_PASSWORD } from '../../operator/builders.ts';
import type { VDISession } from '../../operator/v1alpha1.ts';
import { loadConfig } from '../../src/config.ts';
import type { KubeClient } from '../../src/kube/client.ts';
import { startService, type Service } from '../../src/service.ts';
import { AUDIENCE } from '../support/api.ts';
import { launchChromium } from '../support/browser-dashboard.ts';
import { eventually } from '../support/cluster.ts';
import { createSession, createTemplate, sessionPath, sessionWhere } from '../support/reconciler.ts';
import { TEST_STAGES } from '../support/stages.ts';

const IDLE_TIMEOUT_S = 15;
const NS = 'presence-e2e';
const USER = 'alice@example.com';

let cp: ControlPlane;
let client: KubeClient;
let issuer: OidcIssuer;
let service: Service;
let browser: Browser | undefined;
let desktop: DesktopProcesses | undefined;
let dir: string;
let desktopUrl = '';
let password = '';

async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

beforeAll(async () => {
  const { selkies } = await ensureDesktopTools((line) => console.log(`[desktop-tools] ${line}`));
  cp = await ControlPlane.start({ nodes: [{ name: 'cpu-one', gpus: 0 }], extraStages: TEST_STAGES, handleSignals: false });
  client = cp.client();
  await client.create('/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } });
  issuer = await startOidcIssuer({ audience: AUDIENCE });
  // The desktop reaches the service where the pod's env says: its internal URL, here on loopback.
  const port = await freePort();
  const config = loadConfig(
    {
      PORT: String(port),
      HOST: '127.0.0.1',
      OIDC_ISSUER_URL: issuer.issuer,
      OIDC_AUDIENCE: AUDIENCE,
      OIDC_ALLOW_INSECURE_ISSUER: 'true',
      POD_NAMESPACE: NS,
      POD_NAME: `presence-e2e-${randomBytes(2).toString('hex')}`,
      VDI_INTERNAL_URL: `http://127.0.0.1:${port}`,
      VDI_URL_SCHEME: 'http',
      VDI_DOMAIN: 'vdi.test',
      LOG_LEVEL: 'silent',
    },
    [],
  );
  service = await startService({ config, kubeConfig: cp.kubeConfig(), log: pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }) });
  await service.synced;
  const template = await createTemplate(client, {
    resources: { defaultGPU: 0, maxGPU: 1, defaultMemory: '2Gi', defaultCPU: '1' },
    idle: { defaultTimeout: `${IDLE_TIMEOUT_S}s`, warning: '5s' },
  });
  await createSession(client, NS, 'desk', { template: template.metadata.name!, user: USER });
  dir = await mkdtemp(path.join(os.tmpdir(), 'vdi-presence-e2e-'));

  // The desktop of the pod the reconciler wrote, as dev/desktops/local-desktops.ts runs one: on loopback here.
  await sessionWhere(client, NS, 'desk', (s) => s.status?.phase === 'Running');
  const pod = await client.get<V1Pod>(`/api/v1/namespaces/${NS}/pods/vdi-desk`);
  const secret = await client.get<V1Secret>(`/api/v1/namespaces/${NS}/secrets/vdi-desk`);
  const lookup = (name: string, key: string) =>
    name === 'vdi-desk' && secret.data?.[key] ? Buffer.from(secret.data[key], 'base64').toString('utf8') : undefined;
  const launch = desktopLaunch(pod, lookup);
  const desktopPort = await freePort();
  const invocation = selkiesInvocation({
    ...launch,
    address: '127.0.0.1',
    port: desktopPort,
    env: { ...launch.env, SELKIES_PORT: String(desktopPort) },
  });
  const mounted = relocateMounts(invocation.env, launch.mounts, path.join(dir, 'mounts'));
  for (const file of mounted.files) {
    await mkdir(path.dirname(file.path), { recursive: true });
    await writeFile(file.path, file.content, { mode: 0o600 });
  }
  desktop = await DesktopProcesses.start({
    selkies,
    dir: path.join(dir, 'desktop'),
    ...invocation,
    env: mounted.env,
    address: '127.0.0.1',
    port: desktopPort,
  });
  await desktop.ready;
  browser = await launchChromium();
  desktopUrl = `http://127.0.0.1:${desktopPort}/`;
  password = lookup('vdi-desk', SECRET_KEY_PASSWORD)!;
}, 900_000);

afterAll(async () => {
  await browser?.close();
  await desktop?.stop();
  await service?.stop();
  await issuer?.close();
  await cp?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
}, 120_000);

describe('a real Selkies desktop reports its clients', () => {
  let viewer: BrowserContext | undefined;

  it('reports the browser connecting, and a desktop with a client is not stopped past its idle timeout', async () => {
    viewer = await browser!.newContext({ httpCredentials: { username: USER, password } });
    const page = await viewer.newPage();
    await page.goto(desktopUrl);
    const connected = await sessionWhere(client, NS, 'desk', (s) => s.status?.presence?.connected === true, 60_000);
    expect(connected.status?.conditions?.find((c) => c.type === 'ClientConnected')).toMatchObject({ status: 'True', reason: 'ClientConnected' });

    // Past the time an unwatched desktop would have been stopped.
    const wouldStop = Date.parse(connected.status!.startTime!) + (IDLE_TIMEOUT_S + 5) * 1000;
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, wouldStop - Date.now())));
    const later = await client.get<VDISession>(sessionPath(NS, 'desk'));
    expect(later.status?.phase).toBe('Running');
    expect(later.status?.presence?.connected).toBe(true);
    expect(later.spec.suspend).toBeUndefined();
  }, 120_000);

  it('reports the last client leaving, and the desktop is stopped once it has been idle for its timeout', async () => {
    await viewer!.close();
    const idle = await sessionWhere(client, NS, 'desk', (s) => s.status?.presence?.connected === false, 60_000);
    const idleSince = Date.parse(idle.status!.presence!.idleSince!);
    const stopped = await sessionWhere(client, NS, 'desk', (s) => s.status?.phase === 'Stopped', 60_000);
    expect(stopped.status?.reason).toBe('Idle');
    expect(Date.parse(stopped.status!.stoppedAt!)).toBeGreaterThanOrEqual(idleSince + IDLE_TIMEOUT_S * 1000);
    await eventually(async () => (await client.list<V1Pod>(`/api/v1/namespaces/${NS}/pods`)).items.length === 0, 30_000);
  }, 120_000);
});
