// A real Chromium (Debian's package, driven by playwright-core) against the service's dashboard: the service
// with browser login configured for an in-process OIDC issuer, logging in through the issuer's own pages,
// accessibility scans with axe-core injected into the page, and screenshots kept as test artifacts.
import { randomBytes } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { KubeConfig } from '@kubernetes/client-node';
import { pino } from 'pino';
import { chromium, type Browser, type Page } from 'playwright-core';
import { expect } from 'vitest';
import { parse } from 'yaml';
import { loadConfig } from '../../src/config.ts';
import { findDashboardDir } from '../../src/dashboard-static.ts';
import { KubeClient } from '../../src/kube/client.ts';
import { startService, type Service } from '../../src/service.ts';
import { freePort } from './coturn.ts';
import { startOidcIssuer, type OidcIssuer } from '../../dev/oidc-issuer.ts';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const SCREENSHOTS = path.resolve('test-results/screenshots');
export const LAPTOP = { width: 1280, height: 800 };
export const TABLET = { width: 768, height: 1024 };
const TEMPLATE_PATH = '/apis/vdi.kasm.io/v1alpha1/vditemplates/ubuntu-desktop';
const require = createRequire(import.meta.url);

/** Headless Chromium as root on a machine without outside network (see .library machine notes). */
export async function launchChromium(): Promise<Browser> {
  return await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--no-sandbox',
      '--headless',
      '--disable-gpu',
      '--disable-quic',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  });
}

/**
 * A page in a context of its own (its own cookies) that keeps a handle on its WebSockets (window.sockets, for
 * dropWebSockets) and notes whether the "reconnecting" banner was ever shown (window.sawReconnecting).
 */
export async function openPage(browser: Browser, viewport = LAPTOP): Promise<Page> {
  const context = await browser.newContext({ viewport });
  await context.addInitScript(() => {
    const w = window as unknown as { sockets: WebSocket[]; sawReconnecting: boolean };
    const Native = window.WebSocket;
    w.sockets = [];
    w.sawReconnecting = false;
    window.WebSocket = class extends Native {
      constructor(url: string | URL, protocols?: string | string[]) {
        super(url, protocols);
        w.sockets.push(this);
      }
    };
    new MutationObserver(() => {
      if (document.querySelector('[data-testid="reconnecting"]')) w.sawReconnecting = true;
    }).observe(document, { subtree: true, childList: true });
  });
  return await context.newPage();
}

/** Closes every WebSocket the page has opened, as a network drop would; returns how many it had opened. */
export async function dropWebSockets(page: Page): Promise<number> {
  return await page.evaluate(() => {
    const sockets = (window as unknown as { sockets: WebSocket[] }).sockets;
    for (const ws of sockets) ws.close();
    return sockets.length;
  });
}

/** Applies deploy/examples' Ubuntu template; true when it did not exist before (the caller then deletes it). */
export async function applyUbuntuTemplate(client: KubeClient): Promise<boolean> {
  const existed = await client.get(TEMPLATE_PATH).then(
    () => true,
    () => false,
  );
  const template = parse(await readFile('deploy/examples/ubuntu-desktop-template.yaml', 'utf8')) as Record<string, unknown>;
  await client.apply(TEMPLATE_PATH, template, 'dashboard-test');
  return !existed;
}

export async function deleteUbuntuTemplate(client: KubeClient): Promise<void> {
  await client.delete(TEMPLATE_PATH).catch(() => {});
}

export const navLink = (page: Page, name: string) => page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name });

/** The built dashboard must exist: the service serves it from dashboard/dist. */
export function requireBuiltDashboard(): void {
  if (!findDashboardDir()) throw new Error('dashboard/dist is missing: run `npm run dashboard:build` first');
}

export interface Portal {
  url: string;
  issuer: OidcIssuer;
  service: Service;
  /** The browser-session cookie's name and the keys that seal it (to make one the service no longer accepts). */
  cookieName: string;
  cookieKeys: Uint8Array[];
  stop(): Promise<void>;
}

export interface PortalOptions {
  kubeConfig: KubeConfig;
  /** Emails → groups known to the issuer (devInteractions accepts any login; groups come from here). */
  users: Record<string, string[]>;
  audience?: string;
  env?: Record<string, string>;
}

/**
 * The whole service (API, login, reconciler, dashboard) on a fixed loopback port, so that the issuer knows its
 * callback, with its own issuer; the browser's Origin is then the portal's own.
 */
export async function startPortal(opts: PortalOptions): Promise<Portal> {
  const audience = opts.audience ?? 'urn:vdi-operator:dashboard-test';
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const issuer = await startOidcIssuer({
    audience,
    redirectUris: [`${url}/callback`],
    users: Object.fromEntries(Object.entries(opts.users).map(([email, groups]) => [email, { groups }])),
    accessTokenTTLSeconds: 3600,
  });
  const client = new KubeClient(opts.kubeConfig);
  const leaseNamespace = `vdi-system-${randomBytes(3).toString('hex')}`;
  await client.create('/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: leaseNamespace } });
  const config = loadConfig(
    {
      PORT: String(port),
      HOST: '127.0.0.1',
      OIDC_ISSUER_URL: issuer.issuer,
      OIDC_AUDIENCE: audience,
      OIDC_ALLOW_INSECURE_ISSUER: 'true',
      OIDC_CLIENT_SECRET: issuer.portalClient.clientSecret,
      POD_NAMESPACE: leaseNamespace,
      POD_NAME: `dashboard-test-${randomBytes(2).toString('hex')}`,
      VDI_URL_SCHEME: 'http',
      VDI_DOMAIN: 'vdi.test',
      VDI_PUBLIC_URL: url,
      VDI_INTERNAL_URL: url,
      VDI_COOKIE_KEYS: randomBytes(32).toString('hex'),
      VDI_COOKIE_SECURE: 'false',
      VDI_LOGIN_RESOURCE: audience,
      LOG_LEVEL: 'silent',
      ...opts.env,
    },
    [],
  );
  const service = await startService({ config, kubeConfig: opts.kubeConfig, log: pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }) });
  await service.synced;
  return {
    url,
    issuer,
    service,
    cookieName: config.access.cookieName,
    cookieKeys: config.access.cookieKeys,
    async stop() {
      await service.stop();
      await issuer.close();
      await client.delete(`/api/v1/namespaces/${leaseNamespace}`).catch(() => {});
    },
  };
}

/**
 * Opens `path` on the portal signed out, which sends the browser to /login and the issuer; answers the
 * issuer's devInteractions pages (login, then consent) as `email`, and waits until the dashboard shows the user.
 */
export async function loginThroughPages(page: Page, portalUrl: string, email: string, pathname = '/'): Promise<void> {
  await page.goto(`${portalUrl}${pathname}`);
  await completeLogin(page, portalUrl, email);
}

/**
 * From a page that has left the dashboard for the login (or is about to, from a document without the user on
 * it): answers the issuer's pages as `email`, when it asks, and waits until the dashboard shows the user.
 */
export async function completeLogin(page: Page, portalUrl: string, email: string): Promise<void> {
  const portal = new URL(portalUrl).origin;
  const signedIn = page.getByTestId('user').filter({ hasText: email });
  const atIssuer = () => new URL(page.url()).origin !== portal;
  for (let step = 0; step < 8; step++) {
    // The dashboard signs in by sending the browser away to /login: wait for either outcome.
    await Promise.race([
      page.waitForURL((u) => u.origin !== portal, { waitUntil: 'domcontentloaded' }).catch(() => {}),
      signedIn.waitFor().catch(() => {}),
    ]);
    if (!atIssuer()) {
      if (await signedIn.isVisible()) return;
      continue;
    }
    // oidc-provider's devInteractions: a login form (any password), then a consent form.
    const login = page.locator('input[name="login"]');
    if (await login.count()) {
      await login.fill(email);
      await page.locator('input[name="password"]').fill('any password');
    }
    await Promise.all([page.waitForNavigation({ waitUntil: 'domcontentloaded' }), page.locator('button[type="submit"]').first().click()]);
  }
  await signedIn.waitFor({ timeout: 15_000 });
}

let axeSource: string | undefined;

export interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: { target: string[]; failureSummary?: string }[];
}

/** axe-core's serious and critical findings for the page as it is now. */
export async function seriousA11yViolations(page: Page): Promise<AxeViolation[]> {
  axeSource ??= await readFile(require.resolve('axe-core/axe.min.js'), 'utf8');
  if (!(await page.evaluate(() => 'axe' in window))) await page.addScriptTag({ content: axeSource });
  const violations = await page.evaluate(async () => {
    const axe = (window as unknown as { axe: { run: (ctx: Document, opts: unknown) => Promise<{ violations: AxeViolation[] }> } }).axe;
    const result = await axe.run(document, { resultTypes: ['violations'] });
    return result.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      nodes: v.nodes.map((n) => ({ target: n.target, failureSummary: n.failureSummary })),
    }));
  });
  return violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
}

export async function screenshot(page: Page, name: string): Promise<string> {
  await mkdir(SCREENSHOTS, { recursive: true });
  const file = path.join(SCREENSHOTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

/** Keeps a screenshot of the page and scans it; a failure names axe-core's serious and critical findings. */
export async function checkPage(page: Page, name: string): Promise<void> {
  await screenshot(page, name);
  const violations = await seriousA11yViolations(page);
  expect(
    violations.map((v) => `${v.impact} ${v.id}: ${v.help} at ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`),
    name,
  ).toEqual([]);
}
