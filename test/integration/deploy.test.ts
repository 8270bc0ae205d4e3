// What ships: the image (Dockerfile, linted, and what it would run, run outside a container), the Helm chart
// (linted, rendered, and accepted by the real apiserver), and the cluster manifests of deploy/manifests.
// No container engine or registry exists here, so the image is proven by executing its stages: the build stage's
// COPY lines (through .dockerignore) and RUN lines in a scratch directory, the runtime stage's COPY lines against
// that build and a production-only `npm ci`, and then its CMD and HEALTHCHECK as its USER.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { chmod, cp, mkdir, mkdtemp, readFile, readdir, rm, stat, symlink, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureHadolint, ensureHelm, parseYamlDocuments } from '../../dev/control-plane.ts';
import { buildNetworkPolicy, buildPvc } from '../../operator/builders.ts';
import type { VDISession } from '../../operator/v1alpha1.ts';
import { loadConfig, reconcilerConfigFrom } from '../../src/config.ts';

import { chartEnvironment, type ChartObject } from '../support/chart.ts';
import { adminClient, clusterInfo, eventually, kubectl, testNamespace } from '../support/cluster.ts';

const execFileP = promisify(execFile);
const repoRoot = path.resolve(import.meta.dirname, '../..');
const chartDir = path.join(repoRoot, 'deploy/charts/vdi-operator');
const fullValues = path.join(repoRoot, 'test/fixtures/values-full.yaml');
const client = adminClient();

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** `timeout` (ms): the process is killed after it, and the run then fails (code -1). */
async function run(
  cmd: string,
  args: string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv; uid?: number; gid?: number; timeout?: number } = {},
): Promise<Run> {
  try {
    const { stdout, stderr } = await execFileP(cmd, args, { ...opts, maxBuffer: 64 * 1024 * 1024 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Doc = any;

/** `kubectl apply --server-side --dry-run=server`: the apiserver validates, defaults and admits, and stores nothing. */
async function dryRun(yaml: string): Promise<Run> {
  // --force-conflicts: the shared cluster already holds deploy/rbac and the CRDs under the harness's field manager.
  return await kubectl(['apply', '--server-side', '--force-conflicts', '--dry-run=server', '--field-manager=deploy-test', '-f', '-'], {
    input: yaml,
  });
}

function toYaml(docs: Doc[]): string {
  return docs.map((d) => JSON.stringify(d)).join('\n---\n');
}

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

// ---- the Dockerfile, read the way docker reads it (enough for ours: FROM, WORKDIR, COPY, ENV, USER, CMD, HEALTHCHECK) ----

interface Instruction {
  op: string;
  rest: string;
}
interface Stage {
  from: string;
  name: string | undefined;
  instructions: Instruction[];
}

function parseDockerfile(text: string): { args: Record<string, string>; stages: Stage[] } {
  const lines = text
    .replace(/\\\n\s*/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  const args: Record<string, string> = {};
  const stages: Stage[] = [];
  for (const line of lines) {
    const [, op = '', rest = ''] = /^(\S+)\s*(.*)$/.exec(line) ?? [];
    const upper = op.toUpperCase();
    if (upper === 'FROM') {
      const [image = '', , name] = rest.split(/\s+/);
      stages.push({ from: image.replace(/\$\{(\w+)\}/g, (_m, v: string) => args[v] ?? ''), name, instructions: [] });
    } else if (upper === 'ARG' && stages.length === 0) {
      const [k = '', v = ''] = rest.split('=');
      args[k] = v;
    } else {
      stages.at(-1)?.instructions.push({ op: upper, rest });
    }
  }
  return { args, stages };
}

const dockerfile = parseDockerfile(await readFile(path.join(repoRoot, 'Dockerfile'), 'utf8'));
const runtime = dockerfile.stages.at(-1)!;
const runtimeOp = (op: string) => runtime.instructions.filter((i) => i.op === op);
const buildStage = dockerfile.stages.find((s) => s.name === 'build')!;

// ---- .dockerignore, read the way docker reads it: the last pattern that matches a path (or one of its parent
// directories) decides, `!` lets it back in; `**` spans directories, `*` and `?` stay within one ----

interface IgnorePattern {
  exception: boolean;
  glob: string;
  re: RegExp;
}

function globRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*' && glob[i + 1] === '*') {
      const slash = glob[i + 2] === '/';
      re += slash ? '(?:.*/)?' : '.*';
      i += slash ? 2 : 1;
    } else if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

function parseDockerignore(text: string): IgnorePattern[] {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => {
      const exception = l.startsWith('!');
      const glob = path.posix.normalize((exception ? l.slice(1) : l).trim()).replace(/^\/+|\/+$/g, '');
      return { exception, glob, re: globRegExp(glob) };
    });
}

const ignorePatterns = parseDockerignore(await readFile(path.join(repoRoot, '.dockerignore'), 'utf8'));

/** Whether `rel` (a path in the build context) is left out of it. */
function ignored(rel: string): boolean {
  const selfAndParents = rel.split('/').map((_, i, parts) => parts.slice(0, i + 1).join('/'));
  let out = false;
  for (const p of ignorePatterns) if (selfAndParents.some((q) => p.re.test(q))) out = !p.exception;
  return out;
}

/** A directory is walked unless it is left out and no `!` pattern could let something below it back in. */
function walked(rel: string): boolean {
  return !ignored(rel) || ignorePatterns.some((p) => p.exception && (p.glob.startsWith(`${rel}/`) || p.glob.startsWith('**')));
}

// ---- the stages, run here ----

/** Where a COPY takes its files from: the build context, or an earlier stage (its root on this machine). */
interface CopySource {
  /** The stage's directory that `root` stands for ('' for the build context). */
  prefix: string;
  root: string;
}

/** One COPY line into `targetRoot`, the stage's WORKDIR `workdir` on this machine. */
async function performCopy(rest: string, sources: Record<string, CopySource>, workdir: string, targetRoot: string): Promise<void> {
  const words = rest.split(/\s+/);
  const from = words.find((w) => w.startsWith('--from='))?.slice('--from='.length) ?? '';
  const paths = words.filter((w) => !w.startsWith('--'));
  const dest = paths.pop()!;
  const source = sources[from];
  if (!source) throw new Error(`COPY ${rest}: no stage ${from} is emulated`);
  const context = from === '';
  for (const src of paths) {
    const rel = path.relative(source.prefix || '/', path.resolve(source.prefix || '/', src));
    if (rel.startsWith('..')) throw new Error(`COPY ${rest}: ${src} is outside what is emulated of ${from || 'the context'}`);
    const origin = path.join(source.root, rel);
    const isDir = (await stat(origin)).isDirectory();
    if (context && (isDir ? !walked(rel) : ignored(rel))) throw new Error(`COPY ${rest}: ${src} is not in the build context (.dockerignore)`);
    let target = path.join(targetRoot, path.relative(workdir, path.resolve(workdir, dest)));
    // `COPY file dir/` and `COPY a b dir/` put the files into the directory; a directory's contents go to dest.
    if (!isDir && (dest.endsWith('/') || paths.length > 1)) target = path.join(target, path.basename(src));
    await mkdir(path.dirname(target), { recursive: true });
    await cp(origin, target, {
      recursive: true,
      filter: async (file) => {
        if (!context) return true;
        const r = path.relative(repoRoot, file);
        return (await stat(file)).isDirectory() ? walked(r) : !ignored(r);
      },
    });
  }
}

/**
 * The build stage in `dir`: its COPY lines take what .dockerignore lets into the context, and its RUN lines run
 * there with sh, so a file the build needs that the Dockerfile or .dockerignore leaves out fails it. Its `npm ci`
 * is the repository's own install of the same lockfile, linked in.
 */
async function runBuildStage(dir: string): Promise<void> {
  let workdir = '/';
  for (const { op, rest } of buildStage.instructions) {
    if (op === 'WORKDIR') workdir = rest;
    else if (op === 'COPY') await performCopy(rest, { '': { prefix: '', root: repoRoot } }, workdir, dir);
    else if (op === 'RUN' && /^npm ci\b/.test(rest)) await symlink(path.join(repoRoot, 'node_modules'), path.join(dir, 'node_modules'), 'dir');
    else if (op === 'RUN') {
      // The environment of a docker build, not this test's (vitest sets NODE_ENV=test, which vite would build
      // for); node_modules/.bin first, for the `node` devDependency (Node 24), as npm run would.
      const started = Date.now();
      const env = { PATH: `${path.join(dir, 'node_modules/.bin')}:${process.env.PATH}`, HOME: process.env.HOME };
      const res = await run('sh', ['-c', rest], { cwd: dir, env });
      expect(res.code, `RUN ${rest}\n${res.stdout}\n${res.stderr}`).toBe(0);
      console.log(`[image] build stage: RUN ${rest} took ${((Date.now() - started) / 1000).toFixed(1)} s`);
    } else throw new Error(`the build stage's ${op} is not emulated: teach runBuildStage`);
  }
  expect(workdir).toBe('/src');
}

/** The image's filesystem below its WORKDIR, assembled from the runtime stage's COPY lines. */
async function assembleImage(dir: string, build: string): Promise<void> {
  const workdir = runtimeOp('WORKDIR').at(-1)!.rest;
  // `prod-deps` is a production-only `npm ci` of the same lockfile.
  const prodDeps = path.join(dir, '..', 'prod-deps');
  await mkdir(prodDeps, { recursive: true });
  for (const f of ['package.json', 'package-lock.json']) await cp(path.join(repoRoot, f), path.join(prodDeps, f));
  const npmCli = process.env.npm_execpath;
  const npm = npmCli
    ? await run(process.execPath, [npmCli, 'ci', '--omit=dev', '--prefer-offline', '--no-audit', '--no-fund'], { cwd: prodDeps })
    : await run('npm', ['ci', '--omit=dev', '--prefer-offline', '--no-audit', '--no-fund'], { cwd: prodDeps });
  expect(npm.code, npm.stderr).toBe(0);
  const sources = { build: { prefix: '/src', root: build }, 'prod-deps': { prefix: '/app', root: prodDeps }, '': { prefix: '', root: repoRoot } };
  for (const { rest } of runtimeOp('COPY')) await performCopy(rest, sources, workdir, dir);
}

function jsonArray(rest: string): string[] {
  return JSON.parse(rest.slice(rest.indexOf('['))) as string[];
}

describe('the image', () => {
  let hadolint: string;
  const user = runtimeOp('USER').at(-1)?.rest ?? '';
  const [uid, gid] = user.split(':').map(Number) as [number, number];
  const asRoot = process.getuid?.() === 0;
  let imageDir: string;
  let buildDir: string;
  let scratch: string;

  beforeAll(async () => {
    hadolint = await ensureHadolint();
    scratch = await mkdtemp(path.join(os.tmpdir(), 'vdi-image-'));
    imageDir = path.join(scratch, 'app');
    buildDir = path.join(scratch, 'src');
    await mkdir(imageDir);
    await mkdir(buildDir);
    await runBuildStage(buildDir);
    await assembleImage(imageDir, buildDir);
    // World-readable, owned by root, writable by nobody else: what the image's USER sees.
    await chmod(scratch, 0o755);
  }, 300_000);

  afterAll(async () => {
    if (scratch) await rm(scratch, { recursive: true, force: true });
  });

  it('passes hadolint with no findings at any level', async () => {
    const lint = await run(hadolint, ['--failure-threshold', 'style', 'Dockerfile'], { cwd: repoRoot });
    expect(lint.stdout + lint.stderr).toBe('');
    expect(lint.code).toBe(0);
  });

  it('is linted for real: hadolint rejects a careless Dockerfile', async () => {
    const bad = path.join(scratch, 'Dockerfile.bad');
    await writeFile(bad, 'FROM node:latest\nRUN apt-get update && apt-get install -y curl\nUSER node\nCMD node main.js\n');
    const lint = await run(hadolint, ['--failure-threshold', 'style', bad]);
    expect(lint.code).not.toBe(0);
    expect(lint.stdout).toMatch(/DL3007/); // latest tag
    expect(lint.stdout).toMatch(/DL3008/); // unpinned apt packages
    expect(lint.stdout).toMatch(/DL3025/); // shell-form CMD
  });

  it('builds on the Node.js the project runs on, in every stage, and runs as a numeric non-root user', async () => {
    const nodePackage = JSON.parse(await readFile(path.join(repoRoot, 'node_modules/node/package.json'), 'utf8')) as { version: string };
    expect(dockerfile.args.NODE_VERSION).toBe(nodePackage.version);
    expect(dockerfile.args.NODE_VERSION).toMatch(/^24\.\d+\.\d+$/);
    for (const stage of dockerfile.stages) expect(stage.from).toBe(`node:${nodePackage.version}-bookworm-slim`);
    expect(user).toMatch(/^\d+:\d+$/);
    expect(uid).toBeGreaterThan(0);
    expect(runtimeOp('ENV').map((i) => i.rest)).toContain('NODE_ENV=production');
    expect(jsonArray(runtimeOp('CMD')[0]!.rest)).toEqual(['node', '--enable-source-maps', 'dist/src/main.js']);
  });

  it('holds production dependencies only, and no test code', async () => {
    const pkg = JSON.parse(await readFile(path.join(repoRoot, 'package.json'), 'utf8')) as {
      dependencies: Record<string, string>;
      devDependencies: Record<string, string>;
    };
    const installed = new Set((await readdir(path.join(imageDir, 'node_modules'))).flatMap((d) => (d.startsWith('@') ? [] : [d])));
    for (const dep of Object.keys(pkg.dependencies)) if (!dep.startsWith('@')) expect(installed.has(dep), dep).toBe(true);
    for (const dev of ['typescript', 'vitest', 'eslint', 'yaml', 'oidc-provider', 'node']) expect(installed.has(dev), dev).toBe(false);
    expect((await readdir(path.join(imageDir, 'dist'))).sort()).toEqual(['auth', 'dashboard', 'formats', 'operator', 'resolvers', 'schema', 'src']);
    expect((await readdir(path.join(imageDir, 'dist/src'))).some((f) => f === 'local')).toBe(false);
  });

  it('builds the dashboard in the build stage from its sources without their tests, and ships only what vite built', async () => {
    for (const dir of ['src', 'auth', 'operator', 'resolvers', 'dashboard/src']) {
      const copied = (await readdir(path.join(buildDir, dir), { recursive: true })).map(String);
      expect(
        copied.filter((f) => /\.test\.tsx?$/.test(f) || f.startsWith('local')),
        dir,
      ).toEqual([]);
    }
    expect((await readdir(path.join(buildDir, 'dashboard/src'), { recursive: true })).map(String)).toContain('main.tsx');

    const dashboard = path.join(imageDir, 'dist/dashboard');
    const html = await readFile(path.join(dashboard, 'index.html'), 'utf8');
    expect(html).not.toContain('/src/main.tsx');
    const loads = [...html.matchAll(/(?:src|href)="\/(assets\/[^"]+)"/g)].map((m) => m[1]!);
    expect(loads.filter((a) => a.endsWith('.js'))).toHaveLength(1);
    expect(loads.filter((a) => a.endsWith('.css'))).toHaveLength(1);
    const shipped = (await readdir(dashboard, { recursive: true })).map(String);
    for (const asset of loads) expect(shipped).toContain(asset);
    expect(shipped.filter((f) => f !== 'index.html' && f !== 'assets' && !f.startsWith('assets/'))).toEqual([]);
  });

  it('refuses to start in production without an OIDC issuer, saying why, as its USER', async () => {
    // It refuses and exits: a process still running after 30 s (waiting on a cluster, say) is killed and fails.
    const res = await run(process.execPath, jsonArray(runtimeOp('CMD')[0]!.rest).slice(1), {
      cwd: imageDir,
      env: { PATH: process.env.PATH, NODE_ENV: 'production', KUBECONFIG: '/nonexistent' },
      timeout: 30_000,
      ...(asRoot && { uid, gid }),
    });
    expect(res.code).toBe(1);
    expect(res.stderr).toContain('OIDC_ISSUER_URL is required in production');
    // --enable-source-maps: the stack points into the TypeScript sources.
    expect(res.stderr).toMatch(/src\/config\.ts:\d+/);
  });

  it('refuses to boot the development control plane in production', async () => {
    const res = await run(process.execPath, jsonArray(runtimeOp('CMD')[0]!.rest).slice(1), {
      cwd: imageDir,
      env: { PATH: process.env.PATH, NODE_ENV: 'production', OIDC_ISSUER_URL: 'https://issuer.example.com', HOME: '/nonexistent' },
      ...(asRoot && { uid, gid }),
    });
    expect(res.code).toBe(1);
    expect(res.stderr).toContain('no cluster configured');
  });

  describe('serving the test cluster with the chart ServiceAccount', () => {
    const release = 'vdi-deploytest';
    let ns: string;
    let service: ChildProcess | undefined;
    let logs = '';
    let clusterScoped: Doc[] = [];
    let serviceAccount = '';
    let port = 0;

    beforeAll(async () => {
      ns = await testNamespace(client, 'vdi-image');
      const helm = await ensureHelm();
      const rendered = await run(helm, ['template', release, chartDir, '-n', ns], { cwd: repoRoot });
      expect(rendered.code, rendered.stderr).toBe(0);
      const rbac = parseYamlDocuments(rendered.stdout).filter(
        (d: Doc) =>
          ['ServiceAccount', 'Role', 'RoleBinding'].includes(d.kind) ||
          (['ClusterRole', 'ClusterRoleBinding'].includes(d.kind) && d.metadata.name.startsWith(release)),
      );
      clusterScoped = rbac.filter((d: Doc) => d.kind.startsWith('Cluster'));
      serviceAccount = rbac.find((d: Doc) => d.kind === 'ServiceAccount').metadata.name;
      const applied = await kubectl(['apply', '--server-side', '--field-manager=deploy-test', '-f', '-'], { input: toYaml(rbac) });
      expect(applied.code, applied.stderr).toBe(0);
    });

    afterAll(async () => {
      service?.kill('SIGKILL');
      for (const d of clusterScoped) await kubectl(['delete', d.kind, d.metadata.name, '--ignore-not-found']);
      await client.delete(`/api/v1/namespaces/${ns}`).catch(() => {});
    });

    it('becomes ready (every informer lists and watches), leads and passes its HEALTHCHECK', { timeout: 120_000 }, async () => {
      const info = clusterInfo();
      const token = await kubectl(['create', 'token', serviceAccount, '-n', ns, '--duration=10m']);
      expect(token.code, token.stderr).toBe(0);
      const ca = path.join(path.dirname(imageDir), 'ca.crt');
      await cp(info.caFile, ca);
      await chmod(ca, 0o644);
      const kubeconfig = path.join(path.dirname(imageDir), 'kubeconfig');
      await writeFile(
        kubeconfig,
        `apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: ${info.apiserverUrl}, certificate-authority: ${ca}}}]\n` +
          `users: [{name: sa, user: {token: ${token.stdout.trim()}}}]\ncontexts: [{name: c, context: {cluster: c, user: sa}}]\ncurrent-context: c\n`,
        { mode: 0o644 },
      );

      port = await freePort();
      const env = {
        PATH: process.env.PATH,
        NODE_ENV: 'production',
        KUBECONFIG: kubeconfig,
        HOST: '127.0.0.1',
        PORT: String(port),
        POD_NAMESPACE: ns,
        POD_NAME: 'vdi-image-test',
        OIDC_ISSUER_URL: 'https://issuer.example.com',
        // Only this test's namespace holds sessions it could act on; no other session is touched in these seconds.
        VDI_MODE: 'all',
      };
      const [, ...args] = jsonArray(runtimeOp('CMD')[0]!.rest);
      const proc = spawn(process.execPath, args, { cwd: imageDir, env, stdio: ['ignore', 'pipe', 'pipe'], ...(asRoot && { uid, gid }) });
      service = proc;
      proc.stdout.on('data', (b) => (logs += b));
      proc.stderr.on('data', (b) => (logs += b));

      await eventually(async () => (await fetch(`http://127.0.0.1:${port}/readyz`)).ok, 30_000, 200);
      await eventually(async () => logs.includes('became leader'), 20_000, 200);

      const healthcheck = jsonArray(runtimeOp('HEALTHCHECK')[0]!.rest.replace(/^.*?CMD\s+/, ''));
      expect(healthcheck[0]).toBe('node');
      const check = await run(process.execPath, healthcheck.slice(1), {
        cwd: imageDir,
        env: { PATH: process.env.PATH, PORT: String(port) },
        ...(asRoot && { uid, gid }),
      });
      expect(check.code).toBe(0);

      // No call the service made at start-up was refused by the chart's RBAC.
      expect(logs).not.toMatch(/forbidden|\b403\b|watch failed|lease update failed/i);
    });

    it('serves the dashboard at `/`: its index.html for the app’s routes, and the assets it loads', async () => {
      const dashboard = path.join(imageDir, 'dist/dashboard');
      const built = await readFile(path.join(dashboard, 'index.html'), 'utf8');
      for (const route of ['/', '/sessions', '/admin']) {
        const res = await fetch(`http://127.0.0.1:${port}${route}`, { headers: { accept: 'text/html' } });
        expect(res.status, route).toBe(200);
        expect(res.headers.get('content-type'), route).toMatch(/^text\/html/);
        expect(await res.text(), route).toBe(built);
      }
      const loads = [...built.matchAll(/(?:src|href)="(\/assets\/[^"]+)"/g)].map((m) => m[1]!);
      expect(loads.length).toBeGreaterThanOrEqual(2);
      for (const asset of loads) {
        const res = await fetch(`http://127.0.0.1:${port}${asset}`);
        expect(res.status, asset).toBe(200);
        expect(res.headers.get('content-type'), asset).toMatch(asset.endsWith('.js') ? /^(text|application)\/javascript/ : /^text\/css/);
        expect(res.headers.get('cache-control'), asset).toBe('public, max-age=31536000, immutable');
        expect(Buffer.from(await res.arrayBuffer()).equals(await readFile(path.join(dashboard, asset))), asset).toBe(true);
      }
    });

    // Apollo's own termination handler once raced main.ts's shutdown and hung it: the process must exit.
    it('exits 0 within the grace period on SIGTERM, and its HEALTHCHECK then fails', { timeout: 60_000 }, async () => {
      const proc = service!;
      const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
      const signalled = Date.now();
      proc.kill('SIGTERM');
      const timeout = new Promise<string>((resolve) => setTimeout(() => resolve('still running 30 s after SIGTERM'), 30_000).unref());
      expect(await Promise.race([exited, timeout])).toBe(0);
      console.log(`[image] exited ${Date.now() - signalled} ms after SIGTERM`);
      service = undefined;
      const healthcheck = jsonArray(runtimeOp('HEALTHCHECK')[0]!.rest.replace(/^.*?CMD\s+/, ''));
      const healthAfter = await run(process.execPath, healthcheck.slice(1), { cwd: imageDir, env: { PATH: process.env.PATH, PORT: String(port) } });
      expect(healthAfter.code).toBe(1);
    });
  });
});

describe('the Helm chart', () => {
  let helm: string;
  let ns: string;
  const renderRelease = async (release: string, args: string[]) =>
    await run(helm, ['template', release, chartDir, '-n', ns, ...args], { cwd: repoRoot });
  const render = async (args: string[]) => await renderRelease('vdi-operator', args);

  beforeAll(async () => {
    const started = Date.now();
    helm = await ensureHelm((line) => console.log(`[helm] ${line}`));
    console.log(`[helm] ready after ${((Date.now() - started) / 1000).toFixed(1)} s`);
    ns = await testNamespace(client, 'vdi-chart');
  }, 600_000);

  afterAll(async () => {
    await client.delete(`/api/v1/namespaces/${ns}`).catch(() => {});
  });

  it('ships CRDs byte-identical to deploy/crds', async () => {
    const ours = (await readdir(path.join(repoRoot, 'deploy/crds'))).sort();
    expect((await readdir(path.join(chartDir, 'crds'))).sort()).toEqual(ours);
    for (const f of ours) {
      expect(await readFile(path.join(chartDir, 'crds', f), 'utf8'), f).toBe(await readFile(path.join(repoRoot, 'deploy/crds', f), 'utf8'));
    }
  });

  it('passes helm lint with the default and with the full values', async () => {
    for (const extra of [[], ['-f', fullValues]]) {
      const lint = await run(helm, ['lint', '--strict', chartDir, ...extra]);
      expect(lint.code, lint.stdout + lint.stderr).toBe(0);
      expect(lint.stdout).toContain('0 chart(s) failed');
    }
  });

  for (const [label, args, expectedKinds] of [
    // The home volumes' Retain StorageClass is one of them (desktops.homeStorageClass).
    ['the default values', [], 18],
    ['the full values', ['-f', fullValues], 20],
    [
      'ingress mode',
      [
        '--set',
        'desktops.ingress.mode=ingress',
        '--set',
        'portal.ingressRoute.enabled=false',
        '--set',
        'portal.ingress.enabled=true',
        '--set',
        'mode=api',
      ],
      16,
    ],
  ] as const) {
    it(`renders ${label} into objects the apiserver accepts (server-side dry-run, CRDs included)`, async () => {
      const out = await render(['--include-crds', ...args]);
      expect(out.code, out.stderr).toBe(0);
      const docs = parseYamlDocuments(out.stdout);
      const crds = docs.filter((d: Doc) => d.kind === 'CustomResourceDefinition');
      expect(crds.map((d: Doc) => d.metadata.name).sort()).toEqual(['vdisessions.vdi.kasm.io', 'vditemplates.vdi.kasm.io']);
      // The Prometheus operator's CRDs are not in the test cluster: the ServiceMonitor is checked by shape only.
      const monitors = docs.filter((d: Doc) => d.kind === 'ServiceMonitor');
      for (const m of monitors) expect(m.spec.endpoints).toEqual([{ port: 'http', path: '/metrics', interval: '15s' }]);
      const objects = docs.filter((d: Doc) => d.kind !== 'CustomResourceDefinition' && d.kind !== 'ServiceMonitor');
      expect(objects.length + monitors.length).toBe(expectedKinds);
      for (const d of objects)
        if (
          ![
            'ClusterRole',
            'ClusterRoleBinding',
            'StorageClass',
            'VDITemplate',
            'ValidatingAdmissionPolicy',
            'ValidatingAdmissionPolicyBinding',
          ].includes(d.kind)
        )
          expect(d.metadata.namespace, `${d.kind} ${d.metadata.name}`).toBe(ns);
      const applied = await dryRun(toYaml([...crds, ...objects]));
      expect(applied.code, applied.stderr).toBe(0);
      const lines = applied.stdout.trim().split('\n');
      expect(lines).toHaveLength(crds.length + objects.length);
      for (const line of lines) expect(line).toMatch(/serverside-applied \(server dry run\)$/);
      console.log(
        `[helm] ${label}: ${objects.length + monitors.length} objects + ${crds.length} CRDs rendered, ${lines.length} accepted by the apiserver`,
      );
    });
  }

  it('rejects values that break the schema, naming the field', async () => {
    for (const [set, field] of [
      ['replicas=two', '/replicas'],
      ['desktops.ingress.mode=nginx', '/desktops/ingress/mode'],
      ['oidc.prefixes.username=', '/oidc/prefixes/username'],
      ['desktops.hostPattern=one-host-for-all', '/desktops/hostPattern'],
      ['portal.ingress.enabled=yes', '/portal/ingress/enabled'],
      ['portal.ingress.className=Public_Nginx', '/portal/ingress/className'],
      // The apiserver would refuse the Ingress; the schema says so before anything is applied.
      ['portal.ingress.annotations.nginx\\.ingress\\.kubernetes\\.io/proxy-read-timeout=3600', '/portal/ingress/annotations'],
    ] as const) {
      for (const cmd of [
        ['template', 'x', chartDir],
        ['lint', chartDir],
      ]) {
        const out = await run(helm, [...cmd, '--set', set]);
        expect(out.code, `${cmd[0]} --set ${set}`).not.toBe(0);
        expect(out.stdout + out.stderr).toContain("values don't meet the specifications of the schema");
        expect(out.stdout + out.stderr).toContain(field);
      }
    }
  });

  it('renders the same user roles and admission policies as deploy/rbac with the default values', async () => {
    // What helm install sees on a 1.36+ cluster (helm template alone does not know the cluster's APIs).
    const out = await render(['--api-versions', 'admissionregistration.k8s.io/v1/MutatingAdmissionPolicy']);
    const chart = parseYamlDocuments(out.stdout);
    const shipped = [
      ...parseYamlDocuments(await readFile(path.join(repoRoot, 'deploy/rbac/user-roles.yaml'), 'utf8')),
      ...parseYamlDocuments(await readFile(path.join(repoRoot, 'deploy/rbac/admission-policy.yaml'), 'utf8')),
    ];
    for (const want of shipped) {
      const got = chart.find((d: Doc) => d.kind === want.kind && d.metadata.name === want.metadata.name);
      expect(got, `${want.kind} ${want.metadata.name}`).toBeDefined();
      const { metadata: _g, ...gotBody } = got;
      const { metadata: _w, ...wantBody } = want;
      expect(gotBody).toEqual(wantBody);
    }
  });

  it('leaves the finalizer policy out where the cluster does not serve MutatingAdmissionPolicy (before 1.36)', async () => {
    const kinds = parseYamlDocuments((await render([])).stdout).map((d: Doc) => d.kind);
    expect(kinds).toContain('ValidatingAdmissionPolicy');
    expect(kinds).not.toContain('MutatingAdmissionPolicy');
    expect(kinds).not.toContain('MutatingAdmissionPolicyBinding');
  });

  it('takes the admission policy and the admin binding from the OIDC prefixes and admin group', async () => {
    const docs = parseYamlDocuments((await render(['-f', fullValues])).stdout);
    const policy = docs.find((d: Doc) => d.kind === 'ValidatingAdmissionPolicy');
    expect(policy.spec.matchConditions.map((c: Doc) => c.expression)).toEqual([
      "request.userInfo.username.startsWith('keycloak:')",
      "!('keycloak-group:desktop-admins' in request.userInfo.groups)",
    ]);
    expect(policy.spec.validations[0].expression).toBe("'keycloak:' + object.spec.user == request.userInfo.username");
    expect(policy.spec.validations[0].messageExpression).toContain('substring(9)');
    const admins = docs.find((d: Doc) => d.kind === 'ClusterRoleBinding' && d.metadata.name === 'vdi-admins');
    expect(admins.subjects).toEqual([{ apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: 'keycloak-group:desktop-admins' }]);
  });

  it('runs the service hardened: two replicas, leader-election identity, probes, read-only root, no capabilities', async () => {
    const docs = parseYamlDocuments((await render([])).stdout);
    const deploy = docs.find((d: Doc) => d.kind === 'Deployment');
    const pod = deploy.spec.template.spec;
    const [c] = pod.containers;
    expect(deploy.spec.replicas).toBe(2);
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 10001, seccompProfile: { type: 'RuntimeDefault' } });
    expect(c.securityContext).toMatchObject({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } });
    expect(c.volumeMounts).toContainEqual({ name: 'tmp', mountPath: '/tmp' });
    expect(c.livenessProbe.httpGet.path).toBe('/healthz');
    expect(c.readinessProbe.httpGet.path).toBe('/readyz');
    const env = Object.fromEntries(c.env.map((e: Doc) => [e.name, e.value ?? e.valueFrom]));
    expect(env.POD_NAME).toEqual({ fieldRef: { fieldPath: 'metadata.name' } });
    expect(env.POD_NAMESPACE).toEqual({ fieldRef: { fieldPath: 'metadata.namespace' } });
    expect(env).toMatchObject({
      NODE_ENV: 'production',
      VDI_STORAGE_CLASS: 'vdi-home',
      VDI_RUNTIME_CLASS: 'nvidia',
      VDI_INTERNAL_URL: `http://vdi-operator.${ns}.svc:8080`,
    });
    expect(docs.find((d: Doc) => d.kind === 'PodDisruptionBudget').spec.minAvailable).toBe(1);
    const route = docs.find((d: Doc) => d.kind === 'IngressRoute');
    expect(route.apiVersion).toBe('traefik.io/v1alpha1');
    expect(docs.find((d: Doc) => d.kind === 'VDITemplate').metadata.name).toBe('ubuntu-desktop');
  });

  it('routes the portal host to the service: the dashboard at `/` and its assets as well as /graphql and /login, but not /metrics, forwardAuth, TURN or the probes', async () => {
    for (const [args, host] of [
      [[], 'vdi.example.com'],
      [['-f', fullValues], 'portal.desktops.example.org'],
    ] as const) {
      const docs = parseYamlDocuments((await render([...args])).stdout);
      const route = docs.find((d: Doc) => d.kind === 'IngressRoute');
      const service = docs.find((d: Doc) => d.kind === 'Service');
      const container = docs.find((d: Doc) => d.kind === 'Deployment').spec.template.spec.containers[0];
      // One rule on the host: no PathPrefix narrows it to the API, so every path the service answers is reached,
      // except what only the cluster calls (through the Service): /metrics, forwardAuth, TURN and the probes.
      expect(route.spec.routes).toEqual([
        {
          kind: 'Rule',
          match: `Host(\`${host}\`) && !PathRegexp(\`(?i)^/(metrics|auth|turn|healthz|readyz)(/|$)\`)`,
          services: [{ name: service.metadata.name, port: service.spec.ports[0].port }],
        },
      ]);
      const servicePort = service.spec.ports[0];
      expect(container.ports).toContainEqual(expect.objectContaining({ name: servicePort.targetPort }));
    }
  });

  describe('without Traefik (portal.ingress)', () => {
    const ingressMode = [
      '--set',
      'desktops.ingress.mode=ingress',
      '--set',
      'portal.ingressRoute.enabled=false',
      '--set',
      'portal.ingress.enabled=true',
    ];
    type IngressPath = { path: string; pathType: string; backend: Doc };
    /** Whether an Ingress path matches a request path, as networking.k8s.io/v1 defines it (Prefix: whole elements). */
    const matches = (paths: IngressPath[], urlPath: string) =>
      paths.some(({ path: p, pathType }) => (pathType === 'Exact' ? urlPath === p : urlPath === p || urlPath.startsWith(`${p.replace(/\/$/, '')}/`)));
    // Reached only inside the cluster, at desktops.internalUrl: the ingress controller's auth-url (forwardAuth),
    // Selkies in the desktop pod (TURN), the kubelet (probes) and Prometheus (the ServiceMonitor).
    const internalOnly = ['/auth', '/turn', '/healthz', '/readyz', '/metrics'];

    const portalIngress = async (args: string[]) => {
      const out = await render(args);
      expect(out.code, out.stderr).toBe(0);
      const docs = parseYamlDocuments(out.stdout);
      const ingresses = docs.filter((d: Doc) => d.kind === 'Ingress');
      expect(ingresses).toHaveLength(1);
      return { docs, ingress: ingresses[0], service: docs.find((d: Doc) => d.kind === 'Service') };
    };

    it("routes the dashboard's pages and assets, GraphQL and the login flow to the service, and nothing internal", async () => {
      const { docs, ingress, service } = await portalIngress(ingressMode);
      expect(docs.filter((d: Doc) => d.kind === 'IngressRoute')).toEqual([]);
      expect(ingress.apiVersion).toBe('networking.k8s.io/v1');
      expect(ingress.metadata).toMatchObject({ name: `${service.metadata.name}-portal`, namespace: ns });
      expect(ingress.spec.rules).toHaveLength(1);
      const [rule] = ingress.spec.rules;
      expect(rule.host).toBe('vdi.example.com');
      const paths: IngressPath[] = rule.http.paths;
      for (const p of paths)
        expect(p.backend, p.path).toEqual({ service: { name: service.metadata.name, port: { number: service.spec.ports[0].port } } });

      // What the sources say: the SPA's pages (dashboard/src/router.ts) and the service's own paths
      // (src/dashboard-static.ts), each of which is routed or internal, so a new one fails here until it is sorted.
      const router = await readFile(path.join(repoRoot, 'dashboard/src/router.ts'), 'utf8');
      const pages = [.../PATHS[^=]*=\s*\{([^}]*)\}/.exec(router)![1]!.matchAll(/'(\/[^']*)'/g)].map((m) => m[1]!);
      const served = await readFile(path.join(repoRoot, 'src/dashboard-static.ts'), 'utf8');
      const reserved = [.../const RESERVED = \[([^\]]*)\]/.exec(served)![1]!.matchAll(/'(\/[^']*)'/g)].map((m) => m[1]!);
      expect(pages).toContain('/');
      expect(reserved).toEqual(expect.arrayContaining(internalOnly));
      const expected = [
        { path: '/', pathType: 'Exact' },
        ...[...pages.filter((p) => p !== '/'), ...reserved.filter((p) => !internalOnly.includes(p))].map((p) => ({ path: p, pathType: 'Prefix' })),
      ];
      const byPath = (a: { path: string }, b: { path: string }) => a.path.localeCompare(b.path);
      expect(paths.map(({ path: p, pathType }) => ({ path: p, pathType })).sort(byPath)).toEqual(expected.sort(byPath));

      for (const reached of ['/', '/sessions', '/sessions/', '/admin', '/assets/index-ooDHKsal.js', '/graphql', '/login', '/callback', '/logout']) {
        expect(matches(paths, reached), reached).toBe(true);
      }
      for (const kept of ['/metrics', '/auth/forward', '/turn/vdi-alice/desk/token', '/healthz', '/readyz', '/metricsx', '/favicon.ico']) {
        expect(matches(paths, kept), kept).toBe(false);
      }
    });

    it('takes TLS from desktops.tls, the class from desktops.ingress unless its own, and the annotations; the apiserver accepts it', async () => {
      const plain = (await portalIngress(ingressMode)).ingress;
      expect(plain.spec).not.toHaveProperty('tls');
      expect(plain.spec).not.toHaveProperty('ingressClassName');
      expect(plain.metadata).not.toHaveProperty('annotations');

      const inherited = (
        await portalIngress([...ingressMode, '--set', 'desktops.tls.secretName=wildcard-tls', '--set', 'desktops.ingress.className=nginx'])
      ).ingress;
      expect(inherited.spec.tls).toEqual([{ hosts: ['vdi.example.com'], secretName: 'wildcard-tls' }]);
      expect(inherited.spec.ingressClassName).toBe('nginx');
      // A certResolver is Traefik's: the Ingress asks for TLS on the host and leaves the certificate to the controller.
      const resolver = (await portalIngress([...ingressMode, '--set', 'desktops.tls.certResolver=letsencrypt'])).ingress;
      expect(resolver.spec.tls).toEqual([{ hosts: ['vdi.example.com'] }]);

      const own = await portalIngress([
        ...ingressMode,
        '--set',
        'desktops.tls.secretName=wildcard-tls',
        '--set',
        'desktops.ingress.className=nginx',
        '--set',
        'portal.ingress.className=nginx-public',
        '--set',
        'portal.ingress.host=portal.vdi.example.com',
        '--set-string',
        'portal.ingress.annotations.nginx\\.ingress\\.kubernetes\\.io/proxy-read-timeout=3600',
      ]);
      expect(own.ingress.spec.ingressClassName).toBe('nginx-public');
      expect(own.ingress.metadata.annotations).toEqual({ 'nginx.ingress.kubernetes.io/proxy-read-timeout': '3600' });
      expect(own.ingress.spec.rules[0].host).toBe('portal.vdi.example.com');
      expect(own.ingress.spec.tls).toEqual([{ hosts: ['portal.vdi.example.com'], secretName: 'wildcard-tls' }]);
      // The login's callback lives on the host the Ingress serves.
      const env = own.docs.find((d: Doc) => d.kind === 'Deployment').spec.template.spec.containers[0].env;
      expect(env).toContainEqual({ name: 'VDI_PUBLIC_URL', value: 'https://portal.vdi.example.com' });

      for (const ingress of [plain, inherited, resolver, own.ingress]) {
        const applied = await dryRun(toYaml([ingress]));
        expect(applied.code, applied.stderr).toBe(0);
        expect(applied.stdout.trim()).toBe(`ingress.networking.k8s.io/${ingress.metadata.name} serverside-applied (server dry run)`);
      }
    });

    it('serves the one portal host beside the IngressRoute, and refuses two different hosts', async () => {
      const docs = parseYamlDocuments((await render(['-f', fullValues])).stdout);
      const route = docs.find((d: Doc) => d.kind === 'IngressRoute');
      const ingress = docs.find((d: Doc) => d.kind === 'Ingress');
      expect(route.spec.routes[0].match).toContain('Host(`portal.desktops.example.org`)');
      expect(ingress.spec.rules.map((r: Doc) => r.host)).toEqual(['portal.desktops.example.org']);
      expect(ingress.spec.rules[0].http.paths.map((p: Doc) => p.backend.service.name)).toContain(route.spec.routes[0].services[0].name);

      const out = await render([
        '--set',
        'portal.ingress.enabled=true',
        '--set',
        'portal.ingressRoute.host=a.example.com',
        '--set',
        'portal.ingress.host=b.example.com',
      ]);
      expect(out.code).not.toBe(0);
      expect(out.stderr).toContain('portal.ingressRoute.host (a.example.com) and portal.ingress.host (b.example.com) differ');
    });

    it('warns after install when nothing routes the portal', async () => {
      // helm renders NOTES.txt on install only. This one reads the cluster (its version, and objects it would adopt),
      // so it gets a release name and no cluster-wide objects that the shared cluster already holds.
      const shared = [
        '--skip-crds',
        '--set',
        'rbac.userRoles=false',
        '--set',
        'rbac.admissionPolicy=false',
        '--set',
        'defaultTemplate.enabled=false',
      ];
      const notes = async (args: string[]) => {
        const out = await run(helm, [
          'install',
          'notes-check',
          chartDir,
          '-n',
          ns,
          '--dry-run=client',
          `--kubeconfig=${clusterInfo().kubeconfig}`,
          ...shared,
          ...args,
        ]);
        expect(out.code, out.stderr).toBe(0);
        return out.stdout.slice(out.stdout.indexOf('NOTES:'));
      };
      const warning = 'WARNING: nothing routes the portal';
      expect(await notes(['--set', 'portal.ingressRoute.enabled=false'])).toContain(warning);
      expect(await notes(['--set', 'desktops.ingress.mode=ingress', '--set', 'portal.ingressRoute.enabled=false'])).toContain(warning);
      const fixed = await notes(ingressMode);
      expect(fixed).not.toContain(warning);
      expect(fixed).toContain('at the ingress controller.');
      expect(await notes([])).not.toContain(warning);
      // A reconciler-only release serves no portal, and says whose it is.
      const reconciler = await notes(['--set', 'mode=reconciler', '--set', `desktops.internalUrl=http://vdi-api-vdi-operator.${ns}.svc:8080`]);
      expect(reconciler).not.toContain(warning);
      expect(reconciler).toContain(`Portal:   the API release's, which serves forwardAuth and TURN at http://vdi-api-vdi-operator.${ns}.svc:8080`);
    });
  });

  describe('as two releases in one namespace: the API (mode api) and the reconciler (mode reconciler)', () => {
    const portalKinds = ['IngressRoute', 'Ingress'];
    const userRoles = ['vdi-user', 'vdi-template-reader', 'vdi-admin', 'vdi-template-readers', 'vdi-admins'];
    const envOf = (docs: Doc[]) =>
      Object.fromEntries(docs.find((d: Doc) => d.kind === 'Deployment').spec.template.spec.containers[0].env.map((e: Doc) => [e.name, e.value]));
    const renderDocs = async (release: string, args: string[]) => {
      const out = await renderRelease(release, args);
      expect(out.code, out.stderr).toBe(0);
      return parseYamlDocuments(out.stdout) as Doc[];
    };
    // Both portal routes asked for, as a values file shared by the two releases would: only the API's renders them.
    const bothRoutes = ['--set', 'portal.ingress.enabled=true'];
    let api: Doc[];
    let apiUrl: string;
    const reconcilerArgs = () => ['--set', 'mode=reconciler', '--set', `desktops.internalUrl=${apiUrl}`, ...bothRoutes];

    beforeAll(async () => {
      api = await renderDocs('vdi-api', ['--set', 'mode=api', ...bothRoutes]);
      const service = api.find((d: Doc) => d.kind === 'Service');
      apiUrl = `http://${service.metadata.name}.${ns}.svc:${service.spec.ports[0].port}`;
    });

    it("refuses mode reconciler without desktops.internalUrl, saying to set it to the API release's Service", async () => {
      const out = await renderRelease('vdi-reconciler', ['--set', 'mode=reconciler']);
      expect(out.code).not.toBe(0);
      expect(out.stderr).toContain(
        `desktops.internalUrl is required with mode: reconciler: set it to the API release's Service, where forwardAuth and TURN are served, e.g. http://<api-release>-vdi-operator.${ns}.svc:8080`,
      );
      // The API and mode all still default to their own Service, which serves both.
      expect(envOf(api).VDI_INTERNAL_URL).toBe(apiUrl);
    });

    it("routes the portal from the API release only, and points the reconciler's desktops at the API release", async () => {
      const reconciler = await renderDocs('vdi-reconciler', reconcilerArgs());
      expect(
        api
          .filter((d: Doc) => portalKinds.includes(d.kind))
          .map((d: Doc) => d.kind)
          .sort(),
      ).toEqual(['Ingress', 'IngressRoute']);
      expect(reconciler.filter((d: Doc) => portalKinds.includes(d.kind))).toEqual([]);
      // forwardAuth Middlewares and Selkies' TURN calls, which the reconciler writes, reach the API.
      expect(envOf(reconciler)).toMatchObject({ VDI_MODE: 'reconciler', VDI_INTERNAL_URL: apiUrl });
      // Its Service stays, for the ServiceMonitor's /metrics; nothing routes to it.
      expect(reconciler.filter((d: Doc) => d.kind === 'Service')).toHaveLength(1);
    });

    it('installs the cluster-wide objects with the API release only, unless told otherwise', async () => {
      const reconciler = await renderDocs('vdi-reconciler', reconcilerArgs());
      const fullname = reconciler.find((d: Doc) => d.kind === 'Deployment').metadata.name;
      const clusterScoped = (docs: Doc[]) =>
        docs
          .filter((d: Doc) => !d.metadata.namespace)
          .map((d: Doc) => `${d.kind}/${d.metadata.name}`)
          .sort();
      expect(clusterScoped(reconciler)).toEqual([`ClusterRole/${fullname}`, `ClusterRoleBinding/${fullname}`]);
      for (const name of [...userRoles, 'vdi-session-owner', 'ubuntu-desktop', 'vdi-home'])
        expect(
          clusterScoped(api).some((k) => k.endsWith(`/${name}`)),
          name,
        ).toBe(true);

      // Set, the values win in either mode: the reconciler may own them instead, and the API may leave them out.
      const owning = await renderDocs('vdi-reconciler', [
        ...reconcilerArgs(),
        '--set',
        'rbac.userRoles=true',
        '--set',
        'rbac.admissionPolicy=true',
        '--set',
        'defaultTemplate.enabled=true',
        '--set',
        'desktops.homeStorageClass.enabled=true',
      ]);
      expect(clusterScoped(owning)).toEqual(
        clusterScoped(api)
          .map((k) => k.replace('vdi-api-vdi-operator', fullname))
          .sort(),
      );
      const leaving = await renderDocs('vdi-api', [
        '--set',
        'mode=api',
        '--set',
        'rbac.userRoles=false',
        '--set',
        'rbac.admissionPolicy=false',
        '--set',
        'defaultTemplate.enabled=false',
        '--set',
        'desktops.homeStorageClass.enabled=false',
      ]);
      expect(clusterScoped(leaving)).toEqual(['ClusterRole/vdi-api-vdi-operator', 'ClusterRoleBinding/vdi-api-vdi-operator']);
    });

    it('renders no object twice, and the apiserver accepts both (server-side dry-run)', async () => {
      const reconciler = await renderDocs('vdi-reconciler', reconcilerArgs());
      // Helm refuses to install an object another release owns; the CRDs (crds/) are exempt: Helm skips those present.
      const key = (d: Doc) => `${d.kind} ${d.metadata.namespace ?? '(cluster)'}/${d.metadata.name}`;
      const apiKeys = new Set(api.map(key));
      expect(reconciler.map(key).filter((k) => apiKeys.has(k))).toEqual([]);
      // The harness's cluster serves the CRDs already.
      const applied = await dryRun(toYaml([...api, ...reconciler]));
      expect(applied.code, applied.stderr).toBe(0);
      const lines = applied.stdout.trim().split('\n');
      expect(lines).toHaveLength(api.length + reconciler.length);
      for (const line of lines) expect(line).toMatch(/serverside-applied \(server dry run\)$/);
    });
  });

  it('sets only environment variables the service reads (src/config.ts), and mounts secrets as files', async () => {
    const config = await readFile(path.join(repoRoot, 'src/config.ts'), 'utf8');
    const read = new Set([...config.matchAll(/'([A-Z][A-Z0-9_]+)'/g)].map((m) => m[1]!));
    // list() also reads NAME_FILE (src/config.ts); NODE_ENV is read as env.NODE_ENV.
    for (const m of config.matchAll(/list\(env, '([A-Z0-9_]+)'\)/g)) read.add(`${m[1]}_FILE`);
    read.add('NODE_ENV');
    const values = parseYamlDocuments(await readFile(fullValues, 'utf8'))[0];
    const extra = new Set(values.extraEnv.map((e: Doc) => e.name));
    for (const args of [[], ['-f', fullValues]]) {
      const deploy = parseYamlDocuments((await render(args)).stdout).find((d: Doc) => d.kind === 'Deployment');
      const container = deploy.spec.template.spec.containers[0];
      for (const { name } of container.env) if (!extra.has(name)) expect(read.has(name), name).toBe(true);
      // Secrets the service needs arrive as files, not environment variables (which leak into crash dumps and /proc).
      const fromSecrets = container.env.filter((e: Doc) => e.valueFrom?.secretKeyRef).map((e: Doc) => e.name);
      expect(fromSecrets.every((n: string) => n === 'OIDC_CLIENT_SECRET')).toBe(true);
    }
  });

  /** A session as the reconciler would see it in a user's namespace. */
  const DESK: VDISession = {
    apiVersion: 'vdi.kasm.io/v1alpha1',
    kind: 'VDISession',
    metadata: { name: 'desk', namespace: 'vdi-alice', uid: 'u1' },
    spec: { user: 'alice@example.com', template: 'ubuntu-desktop' },
  };

  /** The chart's objects, and the reconciler config the deployed service would derive from the environment it gets. */
  const deployedReconciler = async (args: string[]) => {
    const objects = parseYamlDocuments((await render(args)).stdout) as ChartObject[];
    const env = chartEnvironment(
      objects,
      { 'metadata.name': 'vdi-operator-0', 'metadata.namespace': ns },
      { NODE_ENV: '', VDI_TURN_SHARED_SECRETS_FILE: '' },
    );
    return { objects, config: reconcilerConfigFrom(loadConfig(env, [])) };
  };

  describe("the desktops' NetworkPolicy from the chart's values", () => {
    /** The policy the reconciler the chart deploys would write, from the environment the chart gives it. */
    const policyFor = async (args: string[]) => {
      const { config } = await deployedReconciler(args);
      return buildNetworkPolicy(DESK, config).spec.ingress;
    };
    const inNamespace = (name: string) => ({ matchLabels: { 'kubernetes.io/metadata.name': name } });

    it("admits K3s's Traefik by default (traefik mode) and no relay", async () => {
      expect(await policyFor([])).toEqual([
        {
          from: [{ namespaceSelector: inNamespace('kube-system'), podSelector: { matchLabels: { 'app.kubernetes.io/name': 'traefik' } } }],
          ports: [{ protocol: 'TCP', port: 8080 }],
        },
      ]);
    });

    it('admits ingress-nginx in ingress mode, named by its namespace and pod labels', async () => {
      const ingress = await policyFor([
        '--set',
        'desktops.ingress.mode=ingress',
        '--set',
        'desktops.ingress.controllerNamespace=ingress-nginx',
        '--set-json',
        'desktops.ingress.controllerPodLabels={"app.kubernetes.io/name":"ingress-nginx","app.kubernetes.io/component":"controller"}',
      ]);
      expect(ingress).toEqual([
        {
          from: [
            {
              namespaceSelector: inNamespace('ingress-nginx'),
              podSelector: { matchLabels: { 'app.kubernetes.io/name': 'ingress-nginx', 'app.kubernetes.io/component': 'controller' } },
            },
          ],
          ports: [{ protocol: 'TCP', port: 8080 }],
        },
      ]);
    });

    it('admits the TURN relay: a hostNetwork coturn by node CIDRs, coturn pods by labels and namespace', async () => {
      const ingress = await policyFor([
        '--set-json',
        'desktops.turnRelay.cidrs=["10.0.0.0/24","fd00::/64"]',
        '--set-json',
        'desktops.turnRelay.podLabels={"app":"coturn"}',
        '--set',
        'desktops.turnRelay.namespace=turn',
      ]);
      expect(ingress[1]).toEqual({
        from: [
          { podSelector: { matchLabels: { app: 'coturn' } }, namespaceSelector: inNamespace('turn') },
          { ipBlock: { cidr: '10.0.0.0/24' } },
          { ipBlock: { cidr: 'fd00::/64' } },
        ],
      });
    });

    it('refuses a TURN CIDR or a label that is not one, naming the value', async () => {
      const cidr = await render(['--set-json', 'desktops.turnRelay.cidrs=["everyone"]']);
      expect(cidr.code).not.toBe(0);
      expect(cidr.stderr).toContain('turnRelay');
      const label = await render(['--set-json', 'desktops.ingress.controllerPodLabels={"app":"two words"}']);
      expect(label.code).not.toBe(0);
      expect(label.stderr).toContain('controllerPodLabels');
    });
  });

  describe('home volumes', () => {
    const homeClassOf = async (args: string[]) => {
      const { objects, config } = await deployedReconciler(args);
      const effective = {
        gpu: 0,
        memory: '1Gi',
        cpu: '1',
        persistence: { enabled: true, size: '1Gi' },
        timeoutMs: 1,
        idle: { timeoutMs: undefined, warningMs: 300_000, maxAgeMs: undefined },
        encoder: 'x264enc' as const,
      };
      const pvc = buildPvc(DESK, effective, config);
      const classes = objects.filter((o) => o.kind === 'StorageClass') as (ChartObject & { reclaimPolicy?: string; provisioner: string })[];
      return { pvcClass: pvc.spec?.storageClassName, classes };
    };

    it("are claimed from the chart's StorageClass, which keeps the data (Retain) when a claim is deleted", async () => {
      const { pvcClass, classes } = await homeClassOf([]);
      expect(classes.map((c) => [c.metadata.name, c.reclaimPolicy, c.provisioner])).toEqual([['vdi-home', 'Retain', 'rancher.io/local-path']]);
      expect(pvcClass).toBe('vdi-home');
    });

    it('keep that class in a reconciler-only release, which installs no cluster-wide objects', async () => {
      const { pvcClass, classes } = await homeClassOf([
        '--set',
        'mode=reconciler',
        '--set',
        'desktops.internalUrl=http://vdi-api.vdi-system.svc:8080',
      ]);
      expect(classes).toEqual([]);
      expect(pvcClass).toBe('vdi-home');
    });

    it('take a class of your own when named, and no class of ours when it is turned off', async () => {
      expect((await homeClassOf(['--set', 'desktops.storageClassName=longhorn-retain'])).pvcClass).toBe('longhorn-retain');
      const off = await homeClassOf(['--set', 'desktops.homeStorageClass.enabled=false']);
      expect([off.pvcClass, off.classes]).toEqual([undefined, []]);
    });
  });

  it("gives the service's ServiceAccount no wildcards, no secrets reads by name, and no impersonation of service accounts", async () => {
    const docs = parseYamlDocuments((await render([])).stdout);
    const role = docs.find((d: Doc) => d.kind === 'ClusterRole' && d.metadata.name === 'vdi-operator');
    for (const rule of role.rules) {
      for (const field of ['apiGroups', 'resources', 'verbs']) expect(rule[field], JSON.stringify(rule)).not.toContain('*');
      if (rule.verbs.includes('impersonate')) expect(rule.resources.sort()).toEqual(['groups', 'users']);
      if (rule.resources.includes('secrets')) expect(rule.verbs).not.toContain('get');
      if (rule.verbs.includes('escalate')) throw new Error('escalate is never needed');
      if (rule.verbs.includes('bind')) expect(rule.resourceNames).toEqual(['vdi-user']);
    }
  });
});

describe('the cluster manifests (deploy/manifests)', () => {
  let ns: string;
  const dir = path.join(repoRoot, 'deploy/manifests');

  let createdGpuOperatorNamespace = false;

  beforeAll(async () => {
    ns = await testNamespace(client, 'vdi-manifests');
    // The GPU operator's namespace, where the time-slicing ConfigMap belongs.
    createdGpuOperatorNamespace = (await kubectl(['create', 'namespace', 'gpu-operator'])).code === 0;
  });

  afterAll(async () => {
    await client.delete(`/api/v1/namespaces/${ns}`).catch(() => {});
    if (createdGpuOperatorNamespace) await client.delete('/api/v1/namespaces/gpu-operator').catch(() => {});
  });

  it('use current API versions only', async () => {
    for (const file of await readdir(dir)) {
      const text = await readFile(path.join(dir, file), 'utf8');
      expect(text, file).not.toContain('traefik.containo.us');
      expect(text, file).not.toMatch(/apiVersion: (extensions\/v1beta1|apps\/v1beta|policy\/v1beta1)/);
    }
  });

  it('apply on the test cluster (server-side dry-run): phase 0 and phase 1', async () => {
    const files = (await readdir(dir)).filter((f) => f.endsWith('.yaml') && f !== 'clusterpolicy-patch.yaml').sort();
    expect(files).toEqual([
      'coturn-secret.yaml',
      'coturn.yaml',
      'phase0-selkies-test-pod.yaml',
      'selkies-deployment.yaml',
      'time-slicing-config.yaml',
      'user-pvc-template.yaml',
    ]);
    for (const file of files) {
      // Objects without a namespace go where `kubectl apply -n` would put them: this test's namespace.
      const docs = parseYamlDocuments(await readFile(path.join(dir, file), 'utf8'));
      for (const d of docs) if (d.kind !== 'StorageClass') d.metadata.namespace ??= ns;
      const applied = await dryRun(toYaml(docs));
      expect(applied.code, `${file}: ${applied.stderr}`).toBe(0);
      expect(applied.stdout.trim().split('\n').length, file).toBe(docs.length);
    }
  });

  it('describe time-slicing as the GPU operator reads it: version v1, nvidia.com/gpu × 8', async () => {
    const [configMap] = parseYamlDocuments(await readFile(path.join(dir, 'time-slicing-config.yaml'), 'utf8'));
    const config = parseYamlDocuments(configMap.data.any)[0];
    expect(config.version).toBe('v1');
    expect(config.sharing.timeSlicing.resources).toEqual([{ name: 'nvidia.com/gpu', replicas: 8 }]);
    // The ClusterPolicy CRD belongs to the GPU operator and is not in the test cluster: the patch is checked as
    // data — it must point the device plugin at this ConfigMap and one of its keys.
    const [patch] = parseYamlDocuments(await readFile(path.join(dir, 'clusterpolicy-patch.yaml'), 'utf8'));
    expect(patch.spec.devicePlugin.config).toEqual({ name: configMap.metadata.name, default: 'any' });
    expect(Object.keys(configMap.data)).toContain(patch.spec.devicePlugin.config.default);
  });

  it('run coturn the way the credentials need: REST-API secret from the Secret, realm, relay ports, no CLI, Prometheus', async () => {
    const docs = parseYamlDocuments(await readFile(path.join(dir, 'coturn.yaml'), 'utf8'));
    const ds = docs.find((d: Doc) => d.kind === 'DaemonSet');
    const conf: string = docs.find((d: Doc) => d.kind === 'ConfigMap').data['turnserver.conf'];
    const pod = ds.spec.template.spec;
    expect(pod.hostNetwork).toBe(true);
    expect(pod.nodeSelector).toEqual({ 'vdi.kasm.io/turn': 'true' });
    const [c] = pod.containers;
    expect(c.args).toEqual(
      expect.arrayContaining(['--static-auth-secret=$(TURN_STATIC_AUTH_SECRET)', '--external-ip=$(TURN_EXTERNAL_IP)', '--no-cli', '--prometheus']),
    );
    expect(c.env.find((e: Doc) => e.name === 'TURN_STATIC_AUTH_SECRET').valueFrom.secretKeyRef).toEqual({
      name: 'coturn-auth',
      key: 'static-auth-secret',
    });
    for (const line of ['use-auth-secret', 'realm=', 'min-port=', 'max-port=']) expect(conf).toContain(line);
    const [secret] = parseYamlDocuments(await readFile(path.join(dir, 'coturn-secret.yaml'), 'utf8'));
    expect(secret.stringData['static-auth-secret']).toBe('');
  });

  it('give the Selkies Deployment one pod at a time and the GPU pods a slice, the nvidia runtime and a memory /dev/shm', async () => {
    const deployment = parseYamlDocuments(await readFile(path.join(dir, 'selkies-deployment.yaml'), 'utf8')).find(
      (d: Doc) => d.kind === 'Deployment',
    );
    expect(deployment.spec.strategy).toEqual({ type: 'Recreate' });
    const phase0 = parseYamlDocuments(await readFile(path.join(dir, 'phase0-selkies-test-pod.yaml'), 'utf8')).find((d: Doc) => d.kind === 'Pod');
    for (const spec of [deployment.spec.template.spec, phase0.spec]) {
      expect(spec.runtimeClassName).toBe('nvidia');
      expect(spec.containers[0].resources.limits['nvidia.com/gpu']).toBe(1);
      expect(spec.volumes).toContainEqual({ name: 'dshm', emptyDir: { medium: 'Memory', sizeLimit: '2Gi' } });
      expect(spec.containers[0].env.find((e: Doc) => e.name === 'SELKIES_BASIC_AUTH_PASSWORD').valueFrom.secretKeyRef).toBeDefined();
    }
  });

  it('give the Selkies Deployment complete TURN settings for the shared coturn (else the image starts its own)', async () => {
    const deployment = parseYamlDocuments(await readFile(path.join(dir, 'selkies-deployment.yaml'), 'utf8')).find(
      (d: Doc) => d.kind === 'Deployment',
    );
    const env = new Map<string, Doc>(deployment.spec.template.spec.containers[0].env.map((e: Doc) => [e.name, e]));
    const coturnText = await readFile(path.join(dir, 'coturn.yaml'), 'utf8');
    const coturnPort = /listening-port=(\d+)/.exec(coturnText)?.[1];
    // Selkies takes a REST URI, or a host and port with either a shared secret or a username and password.
    const restUri = env.get('SELKIES_TURN_REST_URI');
    if (restUri) {
      expect(restUri.value ?? restUri.valueFrom).toBeTruthy();
      return;
    }
    expect(env.get('SELKIES_TURN_HOST')?.value).toBeTruthy();
    expect(env.get('SELKIES_TURN_PORT')?.value).toBe(coturnPort);
    expect(['udp', 'tcp']).toContain(env.get('SELKIES_TURN_PROTOCOL')?.value);
    // coturn runs use-auth-secret: only credentials derived from its static-auth-secret work, so the desktop
    // needs that secret (the key coturn-auth holds), never a static username and password.
    expect(coturnText).toMatch(/^\s*use-auth-secret\s*$/m);
    expect(env.get('SELKIES_TURN_SHARED_SECRET')?.valueFrom?.secretKeyRef).toEqual({ name: 'selkies-desktop-turn', key: 'static-auth-secret' });
    expect(env.has('SELKIES_TURN_USERNAME') || env.has('SELKIES_TURN_PASSWORD')).toBe(false);
  });
});
