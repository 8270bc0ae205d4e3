// The whole product as a person meets it, in a real Chromium: `npm start`'s local default (its own network
// namespace, control plane, issuer, service, Traefik v3 and real Selkies 2.x desktops), alice signs in at the
// portal, launches a desktop, opens it through Traefik's forwardAuth and sees her desktop's terminal, types into
// it; bob opening her desktop gets 403; terminating ends the desktop's processes.
// This file starts its own local default (as `npm start` does) rather than using the suite's shared cluster.
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, readlink, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { V1Pod, V1Secret } from '@kubernetes/client-node';
import type { VDISession } from '../../operator/v1alpha1.ts';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TERMINAL_BACKGROUND } from '../../dev/desktops/desktop-processes.ts';
import { ensureDesktopTools } from '../../dev/desktops/local-access.ts';
import { localNetworkProblem } from '../../dev/local-network.ts';
import { completeLogin, LAPTOP, launchChromium, screenshot } from '../support/browser-dashboard.ts';
import { colourShare, desktopProcesses, hexColour, startLocalDefault, type LocalDefault } from '../support/local-default.ts';

const ALICE = 'alice@example.com';
const BOB = 'bob@example.com';
const TERMINAL = hexColour(TERMINAL_BACKGROUND);
const marker = `marker-${randomBytes(4).toString('hex')}`;
const markerFile = `/tmp/vdi-e2e-${marker}.txt`;

let stack: LocalDefault | undefined;
let browser: Browser | undefined;
let alice: BrowserContext | undefined;
let portal: Page;
let desktop: Page;
let desktopUrl = '';
let podName = '';

// A failure here fails every test with its message (rather than skipping them): CI runs as root, where the
// namespace works, and a machine that cannot make one cannot show what this file is about.
beforeAll(async () => {
  const problem = localNetworkProblem();
  if (problem) throw new Error(problem);
  // Built outside any namespace, where the registries are reachable (Traefik about 5 minutes cold).
  await ensureDesktopTools((line) => console.log(`[desktop-tools] ${line}`));
  stack = await startLocalDefault();
  browser = await launchChromium();
  alice = await browser.newContext({ viewport: LAPTOP });
  portal = await alice.newPage();
}, 900_000);

afterAll(async () => {
  await browser?.close();
  await stack?.stop();
  await rm(markerFile, { force: true });
}, 120_000);

const sessionCard = () => portal.locator('article.session').first();

/** Waits until the desktop page shows the terminal's colour over a good part of it: real frames, not a blank canvas. */
async function waitForTerminal(page: Page, timeoutMs = 60_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let share = 0;
  while (Date.now() < deadline) {
    share = await colourShare(page, TERMINAL);
    if (share > 0.05) return share;
    await page.waitForTimeout(500);
  }
  return share;
}

describe('a desktop in the browser, end to end', () => {
  it('alice signs in at the portal and launches a desktop that becomes Running', async () => {
    await portal.goto(stack!.portalUrl);
    await completeLogin(portal, stack!.portalUrl, ALICE);
    const card = portal.locator('article[data-template="ubuntu-desktop"]');
    await card.getByRole('button', { name: 'Launch Ubuntu Desktop' }).click();
    const open = sessionCard().getByRole('link', { name: /^Open desktop/ });
    await open.waitFor({ timeout: 90_000 });
    desktopUrl = (await open.getAttribute('href'))!;
    expect(desktopUrl).toMatch(new RegExp(`^http://[a-z0-9-]+\\.vdi\\.localhost:${stack!.desktopPort}/$`));
    await screenshot(portal, 'desktop-e2e-portal-running');
  });

  it("runs a real desktop from the reconciler's pod: Selkies on the pod IP and port, password from the Secret", async () => {
    const name = (await sessionCard().getAttribute('data-session'))!;
    const pods = await stack!.client.list<V1Pod>('/api/v1/pods', { labelSelector: `vdi.kasm.io/session=${name}` });
    const pod = pods.items[0]!;
    podName = pod.metadata!.name!;
    // The display server (Xorg with the dummy driver, which Selkies can resize), the window manager and the terminal.
    await expect
      .poll(async () => (await desktopProcesses(podName)).map((p) => p.command.split(' ')[0]!.split('/').pop()), { timeout: 60_000 })
      .toEqual(expect.arrayContaining(['Xorg', 'openbox', 'xterm']));
    const selkies = (await desktopProcesses(podName)).find((p) => p.command.includes('selkies'));
    expect(selkies?.command).toBeDefined();
    const cmdline = (await readFile(`/proc/${selkies!.pid}/cmdline`, 'utf8')).split('\0');
    expect(cmdline).toContain(`--addr=${pod.status!.podIP}`);
    expect(cmdline).toContain('--port=8080');
    // Its environment is the container's: the password and the TURN token read from the session Secret.
    const environ = new Map(
      (await readFile(`/proc/${selkies!.pid}/environ`, 'utf8'))
        .split('\0')
        .filter(Boolean)
        .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
    );
    const secretName = pod.spec!.containers[0]!.env!.find((e) => e.name === 'SELKIES_BASIC_AUTH_PASSWORD')!.valueFrom!.secretKeyRef!.name!;
    const secret = await stack!.client.get<V1Secret>(`/api/v1/namespaces/${pod.metadata!.namespace}/secrets/${secretName}`);
    const decoded = (key: string) => Buffer.from(secret.data![key]!, 'base64').toString('utf8');
    expect(environ.get('SELKIES_BASIC_AUTH_PASSWORD')).toBe(decoded('password'));
    expect(environ.get('SELKIES_BASIC_AUTH_USER')).toBe(ALICE);
    expect(environ.get('SELKIES_TURN_REST_URI')).toMatch(new RegExp(`/turn/${pod.metadata!.namespace}/${name}/${decoded('turnToken')}$`));
    expect(environ.get('SELKIES_ENABLE_HTTPS')).toBe('false');
  });

  it('opens through Traefik with forwardAuth: the Selkies client renders frames of the desktop (the terminal)', async () => {
    const [page] = await Promise.all([
      alice!.waitForEvent('page'),
      sessionCard()
        .getByRole('link', { name: /^Open desktop/ })
        .click(),
    ]);
    desktop = page;
    await desktop.waitForLoadState('domcontentloaded');
    expect(desktop.url()).toBe(desktopUrl);
    // Running comes once Selkies listens (the pod's readiness) and the route's EndpointSlice is written; Traefik
    // applies what it saw within 100 ms here (2 s by default). Should the click beat it, the page is Traefik's
    // 404, and a person reloads.
    await expect
      .poll(async () => (await desktop.title()) || (await desktop.reload(), await desktop.title()), { timeout: 30_000, interval: 500 })
      .toBe('Selkies');
    const share = await waitForTerminal(desktop);
    await screenshot(desktop, 'desktop-e2e-alice-desktop');
    expect(share, 'share of the page in the terminal colour').toBeGreaterThan(0.05);
  });

  it('takes keys typed in the browser into the terminal on the desktop', async () => {
    // The desktop is the size of the page (Selkies resized it to the window), so a click at a page point lands on
    // the same desktop point: inside the terminal window (at 40,40, about 600×400), which takes the focus.
    await desktop.mouse.click(300, 250);
    await desktop.keyboard.type(`echo ${marker} > ${markerFile}`, { delay: 30 });
    await desktop.keyboard.press('Enter');
    await expect.poll(async () => (existsSync(markerFile) ? (await readFile(markerFile, 'utf8')).trim() : ''), { timeout: 30_000 }).toBe(marker);
    await desktop.waitForTimeout(1000);
    await screenshot(desktop, 'desktop-e2e-alice-typed');
  });

  it('restarts a desktop whose Selkies dies, as a kubelet restarts its container: the session leaves Running, comes back, and the desktop opens again', async () => {
    const name = (await sessionCard().getAttribute('data-session'))!;
    const podPath = (pod: V1Pod) => `/api/v1/namespaces/${pod.metadata!.namespace}/pods/${pod.metadata!.name}`;
    const [pod] = (await stack!.client.list<V1Pod>('/api/v1/pods', { labelSelector: `vdi.kasm.io/session=${name}` })).items;
    const phases: string[] = [];
    const watching = new AbortController();
    const watched = stack!.client
      .watch<VDISession>(
        `/apis/vdi.kasm.io/v1alpha1/namespaces/${pod!.metadata!.namespace}/vdisessions`,
        { fieldSelector: `metadata.name=${name}` },
        (event) => phases.push(event.object.status?.phase ?? ''),
        watching.signal,
        120_000,
      )
      .catch((err: unknown) => phases.push(`watch failed: ${String(err)}`));
    try {
      await expect.poll(() => phases[0], { timeout: 10_000 }).toBe('Running');
      const killed = (await desktopProcesses(podName)).find((p) => p.command.includes('selkies'))!;
      // Something of alice's in her desktop's home, which a restarted container keeps (the pod's volumes stay).
      const home = await readlink(`/proc/${killed.pid}/cwd`);
      await writeFile(path.join(home, 'notes.txt'), marker);
      process.kill(killed.pid, 'SIGKILL');
      // Unready at once (its address leaves the route, the session says Starting), then Running on the new Selkies.
      await expect.poll(() => phases.includes('Starting') && phases.at(-1) === 'Running', { timeout: 90_000 }).toBe(true);
      expect(phases.slice(phases.indexOf('Starting'))).not.toContain('Failed');
      const restarted = await stack!.client.get<V1Pod>(podPath(pod!));
      expect(restarted.metadata!.uid).toBe(pod!.metadata!.uid);
      expect(restarted.status!.containerStatuses![0]).toMatchObject({
        ready: true,
        restartCount: 1,
        lastState: { terminated: { exitCode: 137, reason: 'Error' } },
      });
      const selkies = (await desktopProcesses(podName)).find((p) => p.command.includes('selkies'));
      expect(selkies?.pid).toBeDefined();
      expect(selkies!.pid).not.toBe(killed.pid);
      expect(await readlink(`/proc/${selkies!.pid}/cwd`)).toBe(home);
      expect(await readFile(path.join(home, 'notes.txt'), 'utf8')).toBe(marker);
    } finally {
      watching.abort();
      await watched;
    }
    // A person reloads the page: the desktop (a new one: the terminal, not what was typed) is there again.
    await desktop.bringToFront();
    await expect.poll(async () => (await desktop.reload(), await desktop.title()), { timeout: 30_000, interval: 1000 }).toBe('Selkies');
    expect(await waitForTerminal(desktop), 'share of the page in the terminal colour').toBeGreaterThan(0.05);
    await screenshot(desktop, 'desktop-e2e-alice-restarted');
  });

  it("gives bob a 403 for alice's desktop, and no frame", async () => {
    const bob = await browser!.newContext({ viewport: LAPTOP });
    try {
      const page = await bob.newPage();
      await page.goto(stack!.portalUrl);
      await completeLogin(page, stack!.portalUrl, BOB);
      const response = await page.goto(desktopUrl);
      expect(response?.status()).toBe(403);
      expect(await page.locator('body').innerText()).toContain('belongs to someone else');
      expect(await page.locator('canvas').count()).toBe(0);
      expect(await colourShare(page, TERMINAL)).toBeLessThan(0.01);
      await screenshot(page, 'desktop-e2e-bob-forbidden');
    } finally {
      await bob.close();
    }
  });

  it('terminating the session ends every process of the desktop', async () => {
    expect((await desktopProcesses(podName)).length).toBeGreaterThan(0);
    await portal.bringToFront();
    await sessionCard().getByRole('button', { name: 'Terminate' }).click();
    await portal.getByRole('button', { name: 'End desktop' }).click();
    await expect.poll(async () => (await desktopProcesses(podName)).map((p) => p.command), { timeout: 60_000 }).toEqual([]);
    // The route went with the session: the desktop's URL no longer leads to a desktop.
    const after = await desktop.goto(desktopUrl);
    expect(after?.status()).not.toBe(200);
  });

  it('Ctrl-C with a desktop running and the browser still on the portal ends everything, the desktop too', async () => {
    await portal.bringToFront();
    await portal.goto(stack!.portalUrl);
    await portal.locator('article[data-template="ubuntu-desktop"]').getByRole('button', { name: 'Launch Ubuntu Desktop' }).click();
    await sessionCard()
      .getByRole('link', { name: /^Open desktop/ })
      .waitFor({ timeout: 90_000 });
    const name = (await sessionCard().getAttribute('data-session'))!;
    const [pod] = (await stack!.client.list<V1Pod>('/api/v1/pods', { labelSelector: `vdi.kasm.io/session=${name}` })).items;
    await expect.poll(async () => (await desktopProcesses(pod!.metadata!.name!)).length, { timeout: 30_000 }).toBeGreaterThan(0);
    // A terminal's Ctrl-C signals the whole process group: the desktops end while the apiserver goes down too
    // (their restart's status write hung on it for a request's timeout), and the browser still holds connections
    // through the forwarded ports (whose forwarders waited for them to end: the exit never came).
    const proc = stack!.proc;
    process.kill(-proc.pid!, 'SIGINT');
    await expect.poll(() => proc.exitCode !== null || proc.signalCode !== null, { timeout: 15_000 }).toBe(true);
    expect(await desktopProcesses(pod!.metadata!.name!)).toEqual([]);
  });
});
