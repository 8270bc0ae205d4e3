// The dashboard in a real Chromium against the real service on the shared control plane, continued: an
// administrator sees every user's desktops and ends one of them while its owner watches it go; a login that
// expires while a page is open, or a bookmark followed with an expired session cookie, goes through the login
// page and comes back to the same address. Every new page state is scanned with axe-core and kept as a screenshot.
import { randomBytes } from 'node:crypto';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sealCookie } from '../../src/login/browser-session.ts';
import type { VDISession } from '../../operator/v1alpha1.ts';
import {
  applyUbuntuTemplate,
  checkPage,
  completeLogin,
  deleteUbuntuTemplate,
  dropWebSockets,
  LAPTOP,
  launchChromium,
  loginThroughPages,
  openPage,
  requireBuiltDashboard,
  startPortal,
  TABLET,
  type Portal,
} from '../support/browser-dashboard.ts';
import { adminClient, adminKubeConfig } from '../support/cluster.ts';

const suffix = randomBytes(3).toString('hex');
const carol = `carol-${suffix}@example.com`;
const dave = `dave-${suffix}@example.com`;
const erin = `erin-${suffix}@example.com`;
const admin = `root-${suffix}@example.com`;

let browser: Browser;
let portal: Portal;
let createdTemplate = false;
const client = adminClient();

/** The main frame's navigations (redirect hops included), in order. */
function recordNavigations(page: Page): string[] {
  const urls: string[] = [];
  page.on('request', (r) => {
    if (r.isNavigationRequest() && r.frame() === page.mainFrame()) urls.push(r.url());
  });
  return urls;
}

/** Launches the Ubuntu desktop in one click from the templates page and waits until it runs; returns its name. */
async function launchDesktop(page: Page): Promise<string> {
  await page.locator('article[data-template="ubuntu-desktop"]').getByRole('button', { name: 'Launch Ubuntu Desktop' }).click();
  await page.waitForURL(`${portal.url}/sessions`);
  const card = page.locator('article.session').first();
  await card.getByRole('link', { name: /^Open desktop/ }).waitFor({ timeout: 90_000 });
  return (await card.getAttribute('data-session'))!;
}

beforeAll(async () => {
  requireBuiltDashboard();
  browser = await launchChromium();
  createdTemplate = await applyUbuntuTemplate(client);
  portal = await startPortal({
    kubeConfig: adminKubeConfig(),
    users: { [carol]: ['vdi-users'], [dave]: ['vdi-users'], [erin]: ['vdi-users'], [admin]: ['vdi-admins'] },
  });
});

afterAll(async () => {
  await browser?.close();
  await portal?.stop();
  const { items } = await client.list<VDISession>('/apis/vdi.kasm.io/v1alpha1/vdisessions');
  for (const s of items.filter((i) => [carol, dave].includes(i.spec.user))) {
    await client.delete(`/apis/vdi.kasm.io/v1alpha1/namespaces/${s.metadata!.namespace}/vdisessions/${s.metadata!.name}`).catch(() => {});
  }
  if (createdTemplate) await deleteUbuntuTemplate(client);
});

describe('the administrator’s view', () => {
  it(
    'lists every user’s desktops with owner, node and age, and ends another user’s desktop behind a confirmation while its owner watches it go',
    { timeout: 300_000 },
    async () => {
      const carolPage = await openPage(browser, LAPTOP);
      const davePage = await openPage(browser, TABLET);
      await loginThroughPages(carolPage, portal.url, carol);
      await loginThroughPages(davePage, portal.url, dave);
      const [carolDesktop, daveDesktop] = await Promise.all([launchDesktop(carolPage), launchDesktop(davePage)]);

      const adminPage = await openPage(browser, LAPTOP);
      await loginThroughPages(adminPage, portal.url, admin, '/admin');
      const rows = {
        [carol]: adminPage.locator(`tr[data-session="${carolDesktop}"]`),
        [dave]: adminPage.locator(`tr[data-session="${daveDesktop}"]`),
      };
      for (const [owner, row] of Object.entries(rows)) {
        await row.waitFor();
        // Owner, phase, node, age (the desktop's name is the row's header cell).
        const [who, phase, node, age] = await row.locator('td').allInnerTexts();
        expect(who).toBe(owner);
        expect(phase).toBe('Running');
        expect(node).toMatch(/^gpu-node-\d$/);
        expect(age).toMatch(/^\d+ (s|min)$/);
      }
      await checkPage(adminPage, 'admin-all-users');

      // Dave keeps his desktops page open, as the launch left it; from here on it must not reload.
      const daveCard = davePage.locator(`article[data-session="${daveDesktop}"]`);
      const launchedNotice = davePage.getByRole('status').filter({ hasText: 'Ubuntu Desktop launched: this page follows it live.' });
      expect(await launchedNotice.count()).toBe(1);
      await davePage.evaluate(() => ((window as unknown as { noReload: boolean }).noReload = true));

      // End asks first, with the owner and the desktop named, and focus on Cancel; cancelling ends nothing.
      const end = rows[dave]!.getByRole('button', { name: `End ${daveDesktop} of ${dave}` });
      const dialog = adminPage.getByRole('dialog', { name: `End ${dave}’s desktop?` });
      await end.click();
      await dialog.waitFor();
      expect(await adminPage.evaluate(() => document.activeElement?.textContent)).toBe('Cancel');
      await dialog.getByRole('button', { name: 'Cancel' }).click();
      await dialog.waitFor({ state: 'hidden' });
      expect(
        await client
          .list<VDISession>('/apis/vdi.kasm.io/v1alpha1/vdisessions')
          .then(({ items }) => items.find((s) => s.metadata?.name === daveDesktop && s.spec.user === dave)?.metadata?.deletionTimestamp),
      ).toBeUndefined();

      await end.click();
      await dialog.waitFor();
      expect(await dialog.locator('.dialog-body').innerText()).toContain(daveDesktop);
      await checkPage(adminPage, 'admin-end-other-users-desktop-dialog');
      await dialog.getByRole('button', { name: 'End desktop' }).click();

      // Dave's own page sees it go, live; the admin's table too; carol's desktop stays.
      await daveCard.waitFor({ state: 'detached', timeout: 60_000 });
      await davePage.getByTestId('no-sessions').waitFor();
      expect(await davePage.evaluate(() => (window as unknown as { noReload?: boolean }).noReload)).toBe(true);
      // The launch's notice goes with the desktop it was about.
      expect(await launchedNotice.count()).toBe(0);
      await checkPage(davePage, 'sessions-ended-by-admin');
      await rows[dave]!.waitFor({ state: 'detached', timeout: 30_000 });
      expect(await rows[carol]!.locator('td').first().innerText()).toBe(carol);
      await checkPage(adminPage, 'admin-after-ending');
      expect(await carolPage.locator(`article[data-session="${carolDesktop}"]`).getAttribute('data-phase')).toBe('Running');
    },
  );
});

describe('an expired login', () => {
  it('sends a page that is open to the login page when its session cookie expires, and back to that page', async () => {
    const page = await openPage(browser, LAPTOP);
    await loginThroughPages(page, portal.url, erin, '/resources');
    await page.getByTestId('free-slices').waitFor();
    const navigations = recordNavigations(page);
    const loginUrl = `${portal.url}/login?return_to=${encodeURIComponent('/resources')}`;

    // The browser drops the cookie when its Max-Age runs out (the browser session's end); the issuer's own
    // session stays, as it would.
    await page.context().clearCookies({ name: portal.cookieName });
    expect(await page.getByTestId('user').innerText()).toBe(erin);
    // The live connection drops (a network blip, a replica restarting): its reconnection is refused (4401), the
    // page asks over HTTP, is told UNAUTHENTICATED, and goes to log in.
    const toLogin = page.waitForRequest((r) => r.isNavigationRequest() && r.url() === loginUrl);
    const nextDocument = page.waitForEvent('domcontentloaded');
    await dropWebSockets(page);
    await toLogin;
    await nextDocument;
    await completeLogin(page, portal.url, erin);

    expect(new URL(page.url()).pathname).toBe('/resources');
    await page.getByTestId('free-slices').waitFor();
    expect(navigations[0]).toBe(loginUrl);
    expect(navigations.some((u) => u.startsWith(`${portal.url}/callback?`))).toBe(true);
    expect(navigations.at(-1)).toBe(`${portal.url}/resources`);
    expect((await page.context().cookies(portal.url)).map((c) => c.name)).toContain(portal.cookieName);
    await checkPage(page, 'resources-after-expired-login');
  });

  it('takes a bookmark followed with an expired session cookie through the login page to that address', async () => {
    const page = await openPage(browser, LAPTOP);
    // A cookie the service sealed, whose browser session has ended.
    const ended = Math.floor(Date.now() / 1000) - 60;
    const at = await portal.issuer.tokenFor({ email: admin, groups: ['vdi-admins'] });
    const expired = await sealCookie('session', { at, ate: ended, sx: ended }, portal.cookieKeys, ended);
    await page.context().addCookies([{ name: portal.cookieName, value: expired, url: portal.url, httpOnly: true, sameSite: 'Lax' }]);
    const navigations = recordNavigations(page);

    await loginThroughPages(page, portal.url, admin, '/admin#main');

    const here = new URL(page.url());
    expect(`${here.pathname}${here.hash}`).toBe('/admin#main');
    await page.getByRole('heading', { name: 'All desktops' }).waitFor();
    expect(navigations).toContain(`${portal.url}/login?return_to=${encodeURIComponent('/admin#main')}`);
    const cookie = (await page.context().cookies(portal.url)).find((c) => c.name === portal.cookieName);
    expect(cookie?.value).toBeDefined();
    expect(cookie?.value).not.toBe(expired);
    await checkPage(page, 'admin-after-expired-bookmark');
  });
});
