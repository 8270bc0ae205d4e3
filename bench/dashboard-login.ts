// Dashboard login → desktop URL shown, as a user lives it: a fresh browser (Debian's Chromium, headless) opens
// the dashboard signed out, is sent through /login and the issuer's login and consent pages, lands back on
// the dashboard, clicks Launch on ubuntu-desktop, and waits until the live page shows the "Open desktop" link.
// On the local stack: a real control plane with kwok GPU nodes, the in-process OIDC issuer, and the whole
// service (API, login, reconciler, dashboard) in this process; browser and service share the 2 cores.
// Each run is a new user (a first login, so the namespace is provisioned inside the measurement); the desktop
// is then ended through the dashboard, outside the measurement. Also printed: the production bundle's size
// (gzip) and the first load of `/` for a signed-in user with an empty cache.
//
//   npm run dashboard:build && npm run bench:dashboard-login -- [--runs 20] [--loads 10]
import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { gzipSync } from 'node:zlib';
import { parse } from 'yaml';
import type { Browser, Page } from 'playwright-core';
import { ControlPlane } from '../dev/control-plane.ts';
import { launchChromium, loginThroughPages, requireBuiltDashboard, startPortal } from '../test/support/browser-dashboard.ts';
import { findDashboardDir } from '../src/dashboard-static.ts';
import { summarize } from './support.ts';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '20' }, loads: { type: 'string', default: '10' } } });
const RUNS = Number(values.runs);
const LOADS = Number(values.loads);

requireBuiltDashboard();
const ms = (n: number) => `${n.toFixed(0)} ms`;

// ---- bundle size ----
const dist = findDashboardDir()!;
const files = [path.join(dist, 'index.html'), ...(await readdir(path.join(dist, 'assets'))).map((f) => path.join(dist, 'assets', f))];
let raw = 0;
let gzipped = 0;
console.log('production bundle (dashboard/dist):');
for (const file of files) {
  const bytes = await readFile(file);
  const gz = gzipSync(bytes, { level: 9 }).length;
  raw += bytes.length;
  gzipped += gz;
  console.log(
    `  ${path.relative(dist, file).padEnd(34)} ${(bytes.length / 1024).toFixed(1).padStart(7)} KiB  gzip ${(gz / 1024).toFixed(1).padStart(6)} KiB`,
  );
}
console.log(`  total                              ${(raw / 1024).toFixed(1).padStart(7)} KiB  gzip ${(gzipped / 1024).toFixed(1).padStart(6)} KiB`);

// ---- the local stack ----
const started = performance.now();
const cp = await ControlPlane.start({ volumes: RUNS + 8, handleSignals: false });
await cp.applyManifests('deploy/rbac');
const template = parse(await readFile('deploy/examples/ubuntu-desktop-template.yaml', 'utf8')) as Record<string, unknown>;
await cp.client().apply('/apis/vdi.kasm.io/v1alpha1/vditemplates/ubuntu-desktop', template, 'bench');
const users: Record<string, string[]> = {};
for (let i = 0; i <= RUNS; i++) users[`user${i}@bench.example`] = ['vdi-users'];
const portal = await startPortal({ kubeConfig: cp.kubeConfig(), users });
console.log(`\nlocal stack (control plane, issuer, service) up in ${ms(performance.now() - started)}`);

let browser: Browser | undefined;
try {
  browser = await launchChromium();

  /** One user's first login to the desktop's URL on screen; the desktop is ended afterwards. */
  const run = async (user: string) => {
    const context = await browser!.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await context.newPage();
    const t0 = performance.now();
    await loginThroughPages(page, portal.url, user);
    const signedIn = performance.now();
    await page.locator('article[data-template="ubuntu-desktop"]').getByRole('button', { name: 'Launch Ubuntu Desktop' }).click();
    const card = page.locator('article.session').first();
    await card.getByRole('link', { name: /^Open desktop/ }).waitFor({ timeout: 120_000 });
    const shown = performance.now();
    await endDesktop(page);
    const state = await context.storageState();
    await context.close();
    return { total: shown - t0, login: signedIn - t0, launch: shown - signedIn, state };
  };

  const endDesktop = async (page: Page) => {
    const card = page.locator('article.session').first();
    const name = await card.getAttribute('data-session');
    await card.getByRole('button', { name: 'Terminate' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'End desktop' }).click();
    await page.locator(`article[data-session="${name}"]`).waitFor({ state: 'detached', timeout: 60_000 });
  };

  // One warm-up run (first compilation of the service's and the browser's code paths), not counted.
  const warm = await run('user0@bench.example');
  const totals: number[] = [];
  const logins: number[] = [];
  const launches: number[] = [];
  for (let i = 1; i <= RUNS; i++) {
    const r = await run(`user${i}@bench.example`);
    totals.push(r.total);
    logins.push(r.login);
    launches.push(r.launch);
  }
  const t = summarize(totals);
  const l = summarize(logins);
  const u = summarize(launches);
  console.log(`\nlogin → desktop URL shown, ${RUNS} runs (each a new user and a new browser context):`);
  console.log(`  total              median ${ms(t.p50)}  p95 ${ms(t.p95)}  min ${ms(Math.min(...totals))}  max ${ms(t.max)}`);
  console.log(`    login (/ → /login → issuer → /callback → dashboard)  median ${ms(l.p50)}  p95 ${ms(l.p95)}`);
  console.log(`    Launch click → "Open desktop" shown                 median ${ms(u.p50)}  p95 ${ms(u.p95)}`);
  console.log(`  design target: < 10 s → median is ${((t.p50 / 10_000) * 100).toFixed(0)} % of it`);

  // ---- first load of / (signed in, empty cache) ----
  const documentLoads: number[] = [];
  const rendered: number[] = [];
  for (let i = 0; i < LOADS; i++) {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, storageState: warm.state });
    const page = await context.newPage();
    const t0 = performance.now();
    await page.goto(`${portal.url}/`);
    await page.locator('article[data-template="ubuntu-desktop"]').waitFor();
    rendered.push(performance.now() - t0);
    documentLoads.push(await page.evaluate(() => (performance.getEntriesByType('navigation')[0] as PerformanceNavigationTiming).loadEventEnd));
    await context.close();
  }
  const d = summarize(documentLoads);
  const r = summarize(rendered);
  console.log(`\nfirst load of / from the local service, signed in, empty cache, ${LOADS} loads:`);
  console.log(`  load event (HTML + JS + CSS)             median ${ms(d.p50)}  p95 ${ms(d.p95)}`);
  console.log(`  templates on screen (with GraphQL data)  median ${ms(r.p50)}  p95 ${ms(r.p95)}`);
} finally {
  await browser?.close();
  await portal.stop();
  await cp.stop();
}
