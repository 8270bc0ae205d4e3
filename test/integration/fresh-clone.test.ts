// The product as a newcomer meets it: the repository cloned into an empty folder (nothing beside it, so nothing
// can lean on a sibling checkout), the README's first command run as written, then every command and query of
// the README run verbatim against what it started, a person's login in Chromium, and Ctrl-C.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { request } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collect } from '../support/api.ts';
import { eventually } from '../support/cluster.ts';
import { completeLogin, launchChromium, openPage, screenshot } from '../support/browser-dashboard.ts';
import { alive, commandLine, descendants } from '../support/processes.ts';
import { readmeBlocks, sectionBlocks } from '../support/readme.ts';

const repoRoot = path.resolve(import.meta.dirname, '../..');
const assetsCache = process.env.VDI_ASSETS_CACHE ?? path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'vdi-operator');
const npmCache = process.env.npm_config_cache ?? path.join(os.homedir(), '.npm');
// The README's examples name this port, so the product runs on its default.
const API = 'http://127.0.0.1:8080';
const PORTAL = 'http://vdi.localhost:8080';

interface LogLine {
  msg?: string;
  [key: string]: unknown;
}

let clone: string;
let env: Record<string, string>;
let proc: ChildProcess;
const lines: LogLine[] = [];
let output = '';

function run(cmd: string, args: string[], opts: { cwd?: string } = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { cwd: opts.cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    p.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    p.once('error', reject);
    p.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

async function waitForLine(pred: (l: LogLine) => boolean, timeoutMs: number): Promise<LogLine> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const hit = lines.find(pred);
    if (hit) return hit;
    if (proc.exitCode !== null) throw new Error(`npm start exited ${proc.exitCode}:\n${output.slice(-6000)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`no matching log line in ${timeoutMs} ms:\n${output.slice(-6000)}`);
}

async function graphql(
  token: string,
  query: string,
): Promise<{ data?: Record<string, unknown> | null; errors?: { message: string; extensions?: { code?: string } }[] }> {
  const res = await fetch(`${API}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ query }),
  });
  return (await res.json()) as never;
}

/** A GET naming the portal's host, as a browser at http://vdi.localhost:8080 sends it (Node's resolver may not know *.localhost). */
function portalGet(pathname: string): Promise<{ status: number | undefined; location: string | undefined; body: string }> {
  return new Promise((resolve, reject) => {
    request(`${API}${pathname}`, { headers: { host: 'vdi.localhost:8080', accept: 'text/html' } }, (res) => {
      let body = '';
      res.on('data', (b: Buffer) => (body += b.toString()));
      res.on('end', () => resolve({ status: res.statusCode, location: res.headers.location, body }));
    })
      .on('error', reject)
      .end();
  });
}

const token = (user: string) => readFileSync(path.join(clone, '.vdi/local', `${user}.token`), 'utf8').trim();

beforeAll(async () => {
  const empty = await mkdtemp(path.join(os.tmpdir(), 'vdi-empty-'));
  clone = path.join(empty, 'vdi-operator');
  const home = await mkdtemp(path.join(os.tmpdir(), 'vdi-home-'));
  // A machine with no cluster configured (no KUBECONFIG, an empty home), sharing only the caches a first run
  // fills (the built binaries, npm's package cache) so the test does not rebuild Kubernetes.
  env = Object.fromEntries(
    Object.entries(process.env).filter(
      (e): e is [string, string] =>
        e[1] !== undefined &&
        !['KUBECONFIG', 'KUBERNETES_SERVICE_HOST', 'PORT', 'LOG_FORMAT'].includes(e[0]) &&
        !e[0].startsWith('npm_') &&
        !e[0].startsWith('VITEST'),
    ),
  );
  env = { ...env, HOME: home, VDI_ASSETS_CACHE: assetsCache, npm_config_cache: npmCache, npm_config_prefer_offline: 'true', NODE_ENV: '' };
  const cloned = await run('git', ['clone', '--quiet', repoRoot, clone]);
  expect(cloned.code, cloned.stderr).toBe(0);
  expect(readdirSync(empty)).toEqual(['vdi-operator']);

  const first = readmeBlocks()
    .find((b) => b.lang === 'sh')!
    .text.split('\n')[0]!;
  expect(first).toMatch(/^npm ci && npm start\b/);
  proc = spawn('bash', ['-c', first], { cwd: clone, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let buffer = '';
  proc.stdout!.on('data', (b: Buffer) => {
    output += b.toString();
    buffer += b.toString();
    let nl: number;
    while ((nl = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + 1);
      try {
        lines.push(JSON.parse(line) as LogLine);
      } catch {
        // npm's own output
      }
    }
  });
  proc.stderr!.on('data', (b: Buffer) => (output += b.toString()));
  await waitForLine((l) => l.msg === 'ready', 600_000);
}, 660_000);

afterAll(async () => {
  if (proc?.pid && proc.exitCode === null && proc.signalCode === null) {
    for (const pid of [...descendants(proc.pid), proc.pid]) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone already
      }
    }
  }
});

describe('a fresh clone in an empty folder, with the README', () => {
  it('comes up with the README’s first command, and its last lines say where to open it and how to log in', async () => {
    const ready = lines.findIndex((l) => l.msg === 'ready');
    await waitForLine((l) => typeof l.msg === 'string' && l.msg.startsWith('Ctrl-C'), 10_000);
    const after = lines.slice(ready + 1).map((l) => l.msg ?? '');
    expect(after.join('\n')).toContain(`Open ${PORTAL} in a browser`);
    expect(after.join('\n')).toContain('alice@example.com');
    expect(after.join('\n')).toContain('.vdi/local/kubeconfig');
    expect((await fetch(`${API}/readyz`)).status).toBe(200);
    // The dashboard was built on the first start and is served at the portal.
    const page = await portalGet('/');
    expect(page.status).toBe(200);
    expect(page.body).toContain('<div id="root"');
    // http://localhost:8080 sends a person to the portal's name, where login works.
    const other = await fetch(`${API}/sessions`, { headers: { accept: 'text/html' }, redirect: 'manual' });
    expect(other.status).toBe(302);
    expect(other.headers.get('location')).toBe(`${PORTAL}/sessions`);
  });

  it('lets a person sign in in Chromium with a dev account', async () => {
    const browser = await launchChromium();
    try {
      const page = await openPage(browser);
      await page.goto(`${PORTAL}/`);
      await completeLogin(page, PORTAL, 'alice@example.com');
      await expect(page.getByTestId('user').textContent()).resolves.toContain('alice@example.com');
      await screenshot(page, 'fresh-clone-signed-in');
    } finally {
      await browser.close();
    }
  });

  it('answers every GraphQL document of the README as written', async () => {
    const alice = token('alice');
    // The README's extend and terminate name this session.
    const named = await graphql(alice, 'mutation { createVDISession(input: {name: "ubuntu-desktop-1a2b3c", template: "ubuntu-desktop"}) { name } }');
    expect(named.errors).toBeUndefined();
    const [documents] = sectionBlocks('The GraphQL API', 'graphql');
    const ws = createClient({
      url: `${API.replace('http', 'ws')}/graphql`,
      webSocketImpl: WebSocket,
      connectionParams: { authorization: `Bearer ${alice}` },
      retryAttempts: 0,
    });
    try {
      let subscription: Promise<unknown[]> | undefined;
      for (const doc of documents!.split('\n').filter((l) => l.trim())) {
        if (doc.startsWith('subscription')) {
          subscription = collect(ws, doc, {}, (events) => events.length > 0, 60_000);
          continue;
        }
        const res = await graphql(alice, doc);
        expect(res.errors, doc).toBeUndefined();
        expect(res.data, doc).toBeTruthy();
        for (const [field, value] of Object.entries(res.data!)) expect(value, `${field} of ${doc}`).not.toBeNull();
      }
      // The terminate above (and the reconciler's work on the sessions) reaches the subscriber.
      expect(subscription).toBeDefined();
      const events = (await subscription) as { sessionEvents: { type: string; session: { name: string } } }[];
      expect(events[0]!.sessionEvents.session.name).toBeTruthy();
    } finally {
      await ws.dispose();
    }
    // The README's create leaves one session; the named one goes (its quota is the next example's).
    await eventually(async () => {
      const res = await graphql(alice, '{ sessions { name } }');
      expect((res.data!.sessions as { name: string }[]).map((s) => s.name)).not.toContain('ubuntu-desktop-1a2b3c');
      return true;
    }, 60_000);
  });

  it('runs the README’s shell examples as written: curl as alice, kubectl as alice and as the admin', async () => {
    const script = [...sectionBlocks('The GraphQL API', 'sh'), ...sectionBlocks('The API objects', 'sh')].join('\n');
    const res = await run('bash', ['-euo', 'pipefail', '-c', script], { cwd: clone });
    expect(res.stderr).not.toMatch(/Forbidden|error/i);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toMatch(/\{"data":\{"createVDISession":\{"name":"[a-z0-9-]+"\}\}\}/);
    // kubectl as alice lists her sessions in her namespace; as the admin, every user's, and the templates.
    expect(res.stdout).toMatch(/NAME\s+USER\s+TEMPLATE/);
    expect(res.stdout).toMatch(/alice@example\.com\s+ubuntu-desktop/);
    expect(res.stdout).toMatch(/ubuntu-desktop\s+Ubuntu Desktop/);
  });

  it('stops every process it started on Ctrl-C', async () => {
    const started = descendants(proc.pid!);
    const names = started.map(commandLine).join('\n');
    for (const component of ['etcd', 'kube-apiserver', 'kube-controller-manager', 'kube-scheduler', 'kwok']) expect(names).toContain(component);
    // A terminal's Ctrl-C: SIGINT to the foreground process group. The shell running `npm ci && npm start` ends
    // as a shell does on Ctrl-C (by the signal); the service under it shuts down cleanly.
    process.kill(-proc.pid!, 'SIGINT');
    if (proc.exitCode === null && proc.signalCode === null) await new Promise((r) => proc.once('exit', r));
    expect([proc.exitCode, proc.signalCode]).toContainEqual(expect.toSatisfy((v) => v === 0 || v === 'SIGINT'));
    expect(lines.some((l) => l.msg === 'shutting down')).toBe(true);
    await eventually(async () => {
      expect(alive(started).map(commandLine)).toEqual([]);
      return true;
    }, 20_000);
  });
});
