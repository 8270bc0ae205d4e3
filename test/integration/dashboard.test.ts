// The dashboard in a real Chromium against the real service (login, API, reconciler) on the real control plane
// with kwok GPU nodes and an in-process OIDC issuer: users log in through the issuer's pages, launch and end
// desktops, and watch them change live; another user at the same time sees none of it; with the GPU slices
// exhausted the wait is explained. Every page is scanned with axe-core and saved as a screenshot.
import { randomBytes } from 'node:crypto';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ControlPlane } from '../../dev/control-plane.ts';
import {
  applyUbuntuTemplate,
  checkPage,
  deleteUbuntuTemplate,
  dropWebSockets,
  LAPTOP,
  launchChromium,
  loginThroughPages,
  navLink,
  openPage,
  requireBuiltDashboard,
  startPortal,
  TABLET,
  type Portal,
} from '../support/browser-dashboard.ts';
import { adminClient, adminKubeConfig } from '../support/cluster.ts';
import { TEST_STAGES } from '../support/stages.ts';

const suffix = randomBytes(3).toString('hex');
const alice = `alice-${suffix}@example.com`;
const bob = `bob-${suffix}@example.com`;
const admin = `admin-${suffix}@example.com`;

let browser: Browser;
const newPage = (viewport = LAPTOP) => openPage(browser, viewport);

const sessionCards = (page: Page) => page.locator('article.session');

/** Records every distinct phase the session cards show, from inside the page, without reloading it. */
async function recordPhases(page: Page): Promise<void> {
  await page.evaluate(() => {
    const w = window as unknown as { phases: string[]; noReload: boolean };
    w.phases = [];
    w.noReload = true;
    const note = () => {
      for (const el of Array.from(document.querySelectorAll('article.session'))) {
        const phase = el.getAttribute('data-phase');
        if (phase && w.phases[w.phases.length - 1] !== phase) w.phases.push(phase);
      }
    };
    new MutationObserver(note).observe(document.body, { subtree: true, childList: true, attributes: true, attributeFilter: ['data-phase'] });
  });
}

beforeAll(async () => {
  requireBuiltDashboard();
  browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close();
});

describe('dashboard on the shared control plane', () => {
  let portal: Portal;
  let createdTemplate = false;
  const client = adminClient();

  beforeAll(async () => {
    createdTemplate = await applyUbuntuTemplate(client);
    portal = await startPortal({
      kubeConfig: adminKubeConfig(),
      users: { [alice]: ['vdi-users'], [bob]: ['vdi-users'], [admin]: ['vdi-admins'] },
    });
  });

  afterAll(async () => {
    await portal?.stop();
    if (createdTemplate) await deleteUbuntuTemplate(client);
  });

  it('takes alice from login to a running desktop live, extends it and ends it, while bob sees none of it', async () => {
    const alicePage = await newPage(LAPTOP);
    const bobPage = await newPage(TABLET);
    // Everything the service ever sends bob, over HTTP and over the WebSocket.
    const toBob: string[] = [];
    bobPage.on('websocket', (ws) => ws.on('framereceived', (f) => toBob.push(String(f.payload))));
    bobPage.on('response', (r) => {
      if (r.url().includes('/graphql'))
        void r.text().then(
          (t) => toBob.push(t),
          () => {},
        );
    });

    // Signed out, a page sends the browser to login and, after it, back to where it was.
    await loginThroughPages(alicePage, portal.url, alice);
    await loginThroughPages(bobPage, portal.url, bob, '/sessions');
    expect(new URL(bobPage.url()).pathname).toBe('/sessions');
    await expect.poll(() => bobPage.getByTestId('no-sessions').isVisible()).toBe(true);

    // Templates: the card with its applications, defaults and maxima.
    const card = alicePage.locator('article[data-template="ubuntu-desktop"]');
    await card.getByRole('heading', { name: 'Ubuntu Desktop' }).waitFor();
    expect(await card.getByRole('list', { name: 'Applications' }).getByRole('listitem').allTextContents()).toEqual([
      'FFirefox',
      'CChrome',
      'TTerminal',
    ]);
    const facts = await card.locator('.facts').innerText();
    expect(facts).toMatch(/GPU slices\s+1 \(max 1\)/);
    expect(facts).toMatch(/Memory\s+8Gi \(max 16Gi\)/);
    expect(facts).toMatch(/CPU\s+4 \(max 8\)/);
    await checkPage(alicePage, 'templates');

    // The options form holds values to the template's limits, with the message beside the field.
    await card.getByRole('button', { name: 'Options for Ubuntu Desktop' }).click();
    const gpu = card.getByLabel('GPU slices');
    await gpu.fill('2');
    await card.getByLabel('Time limit').fill('2 days');
    await card.getByRole('button', { name: 'Launch with these options' }).click();
    await expect
      .poll(() => card.locator('.field-error').allTextContents())
      .toEqual(['2 GPU slices exceeds this template’s maximum of 1.', 'Timeout must be a duration such as 8h, 90m or 1h30m.']);
    expect(await gpu.getAttribute('aria-invalid')).toBe('true');
    expect(await alicePage.evaluate(() => document.activeElement?.getAttribute('name'))).toBe('gpu');
    await checkPage(alicePage, 'templates-options-invalid');
    await card.getByRole('button', { name: 'Options for Ubuntu Desktop' }).click();

    // Launch with the defaults in one click; the page follows the desktop live.
    await recordPhases(alicePage);
    await card.getByRole('button', { name: 'Launch Ubuntu Desktop' }).click();
    await alicePage.waitForURL(`${portal.url}/sessions`);
    const session = sessionCards(alicePage).first();
    await session.waitFor();
    const name = (await session.getAttribute('data-session'))!;
    expect(name).toMatch(/^ubuntu-desktop-[0-9a-f]{6}$/);
    const open = session.getByRole('link', { name: /^Open desktop/ });
    await open.waitFor({ timeout: 90_000 });
    expect(await session.getAttribute('data-phase')).toBe('Running');
    const phases = await alicePage.evaluate(() => (window as unknown as { phases: string[] }).phases);
    expect(phases[phases.length - 1]).toBe('Running');
    expect(phases.length, `phases seen: ${phases.join(' → ')}`).toBeGreaterThan(1);
    expect(phases.every((p) => ['Pending', 'Starting', 'Running'].includes(p))).toBe(true);
    // Same document all along: no reload happened.
    expect(await alicePage.evaluate(() => (window as unknown as { noReload?: boolean }).noReload)).toBe(true);

    const url = (await open.getAttribute('href'))!;
    expect(url).toMatch(/^http:\/\/[a-z0-9.-]+\.vdi\.test\/?/);
    expect(await session.locator('.url').innerText()).toBe(url);
    expect(await session.getByTestId('time-left').innerText()).toMatch(/^(\d+ h )?\d+ (h|min)( \d+ min)? left$/);
    expect(await session.locator('.steps [aria-current="step"]').innerText()).toBe('Running');
    // The template's defaults, which the one-click launch asked for.
    expect(await session.locator('.facts').innerText()).toMatch(/GPU slices\s+1\s+Memory\s+8Gi\s+CPU\s+4/);
    await checkPage(alicePage, 'sessions-running');

    // Extend: the time limit grows (to the session's age plus the template's default).
    await session.getByRole('button', { name: 'Extend' }).click();
    await expect.poll(() => session.locator('.notice').textContent()).toMatch(/^Extended: the time limit is now 8 h( \d+ min)? from the start\.$/);

    // A dropped WebSocket says so, reconnects by itself and the page carries on.
    const socketsBefore = await dropWebSockets(alicePage);
    await expect.poll(() => alicePage.evaluate(() => (window as unknown as { sawReconnecting: boolean }).sawReconnecting)).toBe(true);
    await expect
      .poll(() => alicePage.evaluate(() => (window as unknown as { sockets: WebSocket[] }).sockets.at(-1)?.readyState), { timeout: 30_000 })
      .toBe(1);
    expect(await alicePage.evaluate(() => (window as unknown as { sockets: WebSocket[] }).sockets.length)).toBeGreaterThan(socketsBefore);
    await alicePage.getByTestId('reconnecting').waitFor({ state: 'detached' });
    expect(await session.getAttribute('data-phase')).toBe('Running');

    // An admin sees alice's desktop with its owner and node.
    const adminPage = await newPage(LAPTOP);
    await loginThroughPages(adminPage, portal.url, admin, '/admin');
    const row = adminPage.locator(`tr[data-session="${name}"]`);
    await row.waitFor();
    const cells = await row.locator('td').allInnerTexts();
    expect(cells[0]).toBe(alice);
    expect(cells[2]).toMatch(/^gpu-node-\d$/);
    expect(cells[3]).toMatch(/^\d+ (s|min)$/);
    await checkPage(adminPage, 'admin');

    // Bob, at the same time, on a tablet: his pages have none of it.
    await navLink(bobPage, 'Resources').click();
    await bobPage.getByTestId('free-slices').waitFor();
    await checkPage(bobPage, 'resources-tablet');
    await navLink(bobPage, 'Templates').click();
    await bobPage.locator('article[data-template="ubuntu-desktop"]').waitFor();
    await checkPage(bobPage, 'templates-tablet');
    expect(await navLink(bobPage, 'All desktops').count()).toBe(0);
    await bobPage.goto(`${portal.url}/admin`);
    await bobPage.getByRole('alert').filter({ hasText: 'This page is for administrators.' }).waitFor();
    await navLink(bobPage, 'My desktops').click();
    await bobPage.getByTestId('no-sessions').waitFor();

    // Terminate, behind a confirmation; the card goes away live, in alice's view and in the admin's.
    await session.getByRole('button', { name: 'Terminate' }).click();
    const dialog = alicePage.getByRole('dialog', { name: 'End Ubuntu Desktop?' });
    await dialog.waitFor();
    expect(await alicePage.evaluate(() => document.activeElement?.textContent)).toBe('Cancel');
    await checkPage(alicePage, 'sessions-terminate-dialog');
    await dialog.getByRole('button', { name: 'End desktop' }).click();
    await alicePage.locator(`article[data-session="${name}"]`).waitFor({ state: 'detached', timeout: 60_000 });
    await alicePage.getByTestId('no-sessions').waitFor();
    await row.waitFor({ state: 'detached', timeout: 30_000 });
    await checkPage(alicePage, 'sessions-empty');

    const bobSaw = toBob.join('\n');
    expect(bobSaw).toContain('"sessions":[]');
    expect(bobSaw).not.toContain(name);
    expect(bobSaw).not.toContain(alice);
    expect(await bobPage.content()).not.toContain(name);
  });
});

describe('dashboard with the GPU slices exhausted', () => {
  const erin = `erin-${suffix}@example.com`;
  let cp: ControlPlane;
  let portal: Portal;

  beforeAll(async () => {
    // One node with a single GPU slice: the second desktop has to wait for it.
    cp = await ControlPlane.start({ nodes: [{ name: 'gpu-small-1', gpus: 1 }], volumes: 4, extraStages: TEST_STAGES, handleSignals: false });
    await cp.applyManifests('deploy/rbac');
    await applyUbuntuTemplate(cp.client());
    portal = await startPortal({ kubeConfig: cp.kubeConfig(), users: { [erin]: ['vdi-users'] } });
  });

  afterAll(async () => {
    await portal?.stop();
    await cp?.stop();
  });

  it('shows the session waiting for a slice with the scheduler’s reason, zero free, and the quota reached', async () => {
    const page = await newPage(LAPTOP);
    await loginThroughPages(page, portal.url, erin);
    const card = page.locator('article[data-template="ubuntu-desktop"]');
    await card.getByRole('button', { name: 'Launch Ubuntu Desktop' }).click();
    await page.waitForURL(`${portal.url}/sessions`);
    await sessionCards(page)
      .first()
      .getByRole('link', { name: /^Open desktop/ })
      .waitFor({ timeout: 90_000 });

    // The only slice is taken: the template says so before launching, and the launch still goes ahead.
    await navLink(page, 'Templates').click();
    await card.locator('.warning[data-kind="capacity"]').filter({ hasText: 'No GPU slice is free in the cluster right now' }).waitFor();
    await card.getByRole('button', { name: 'Launch Ubuntu Desktop' }).click();
    await page.waitForURL(`${portal.url}/sessions`);
    const waiting = page.locator('article.session.highlight');
    await waiting.locator('.activity').filter({ hasText: 'Waiting for a free GPU slice' }).waitFor({ timeout: 60_000 });
    expect(await waiting.getAttribute('data-phase')).toBe('Pending');
    expect(await waiting.locator('.message').innerText()).toMatch(/Insufficient nvidia\.com\/gpu/);
    expect(await waiting.locator('.badge').innerText()).toBe('Pending');
    await checkPage(page, 'sessions-waiting-for-gpu');

    await navLink(page, 'Resources').click();
    await expect.poll(() => page.getByTestId('free-slices').innerText()).toBe('0');
    expect(await page.locator('tr[data-node="gpu-small-1"] [data-testid="node-free"]').innerText()).toBe('0');
    expect(await page.getByTestId('quota-gpu-slices').innerText()).toBe('2 of 2');
    await checkPage(page, 'resources-exhausted');

    // Two slices in use of the two allowed: a third launch is refused up front, in the service's words.
    await navLink(page, 'Templates').click();
    await card
      .locator('.warning[data-kind="quota"]')
      .filter({ hasText: 'This needs 1 GPU slice(s); the quota allows 2 and 2 are in use.' })
      .waitFor();
    expect(await card.getByRole('button', { name: 'Launch Ubuntu Desktop' }).isDisabled()).toBe(true);
    await checkPage(page, 'templates-quota-reached');
  });
});
