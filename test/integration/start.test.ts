// `npm start`'s two faces: with no cluster configured it boots the embedded local control plane and says how
// to reach it; with a kubeconfig it serves that cluster.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startOidcIssuer } from '../../dev/oidc-issuer.ts';
import { clusterInfo, eventually } from '../support/cluster.ts';
import { alive, commandLine, descendants } from '../support/processes.ts';

interface LogLine {
  msg?: string;
  graphql?: string;
  kubeconfig?: string;
  kubectl?: string;
  cluster?: string;
}

const assetsCache = process.env.VDI_ASSETS_CACHE ?? path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'vdi-operator');
let child: ChildProcess | undefined;

afterEach(async () => {
  if (child && child.exitCode === null) {
    child.kill('SIGKILL');
    await new Promise((r) => child!.once('exit', r));
  }
});

/** Starts `node src/main.ts` like `npm start` does and collects its JSON log lines. */
function start(env: Record<string, string>): { lines: LogLine[]; until: (pred: (l: LogLine) => boolean, timeoutMs?: number) => Promise<LogLine> } {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !['KUBECONFIG', 'KUBERNETES_SERVICE_HOST'].includes(k)));
  child = spawn(process.execPath, ['src/main.ts'], {
    env: { ...base, VDI_ASSETS_CACHE: assetsCache, PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: LogLine[] = [];
  const waiters: (() => void)[] = [];
  let buffer = '';
  let stderr = '';
  child.stderr!.on('data', (b) => (stderr += b));
  child.stdout!.on('data', (b: Buffer) => {
    buffer += b.toString();
    let nl: number;
    while ((nl = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + 1);
      try {
        lines.push(JSON.parse(line) as LogLine);
      } catch {
        // not a log line
      }
      waiters.splice(0).forEach((w) => w());
    }
  });
  const until = (pred: (l: LogLine) => boolean, timeoutMs = 120_000) =>
    new Promise<LogLine>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no matching log line; got ${JSON.stringify(lines)} ${stderr}`)), timeoutMs);
      const check = () => {
        const hit = lines.find(pred);
        if (hit) {
          clearTimeout(timer);
          resolve(hit);
        } else if (child!.exitCode !== null) {
          clearTimeout(timer);
          reject(new Error(`exited ${child!.exitCode}: ${stderr}`));
        } else waiters.push(check);
      };
      check();
    });
  return { lines, until };
}

describe('npm start', () => {
  it('boots the embedded local control plane when no cluster is configured, and says how to reach it', async () => {
    const home = await mkdtemp(path.join(os.tmpdir(), 'vdi-home-'));
    const { until } = start({ HOME: home });
    const local = await until((l) => typeof l.kubeconfig === 'string');
    expect(local.msg).toContain(`export KUBECONFIG=${local.kubeconfig}`);
    expect(existsSync(local.kubeconfig!)).toBe(true);
    const ready = await until((l) => l.msg === 'ready');
    const health = await fetch(ready.graphql!.replace('/graphql', '/readyz'));
    expect(health.status).toBe(200);
    const me = await fetch(ready.graphql!, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${readFileSync('.vdi/local/alice.token', 'utf8')}` },
      body: JSON.stringify({ query: '{ me { name } templates { name } capacity { totalSlices } }' }),
    });
    expect(await me.json()).toEqual({
      data: { me: { name: 'alice@example.com' }, templates: [{ name: 'ubuntu-desktop' }], capacity: { totalSlices: 16 } },
    });
    // Ctrl-C stops the service and the control plane, and removes the cluster's files.
    child!.kill('SIGINT');
    const code = await new Promise((r) => child!.once('exit', r));
    expect(code).toBe(0);
    expect(existsSync(local.kubeconfig!)).toBe(false);
  });

  it('stops every child when a signal comes before it is ready', async () => {
    const home = await mkdtemp(path.join(os.tmpdir(), 'vdi-home-'));
    start({ HOME: home });
    // Mid-boot: the apiserver is up, the rest of the local default is not.
    const started = await eventually(
      async () => {
        const pids = descendants(child!.pid!);
        return pids.map(commandLine).some((c) => c.includes('kube-apiserver')) && !child!.exitCode ? pids : undefined;
      },
      120_000,
      20,
    );
    child!.kill('SIGTERM');
    const code = await new Promise((r) => (child!.exitCode !== null ? r(child!.exitCode) : child!.once('exit', r)));
    expect(code).toBe(0);
    await eventually(async () => {
      expect(alive([...started, ...descendants(child!.pid!)]).map(commandLine)).toEqual([]);
      return true;
    }, 20_000);
  });

  it('uses the cluster of KUBECONFIG when there is one', async () => {
    const issuer = await startOidcIssuer({ audience: 'urn:vdi-operator:start' });
    try {
      const { until } = start({
        KUBECONFIG: clusterInfo().kubeconfig,
        VDI_MODE: 'api',
        OIDC_ISSUER_URL: issuer.issuer,
        OIDC_AUDIENCE: 'urn:vdi-operator:start',
        OIDC_ALLOW_INSECURE_ISSUER: 'true',
      });
      const used = await until((l) => l.msg === 'using the configured cluster');
      expect(used.cluster).toBe(clusterInfo().apiserverUrl);
      const ready = await until((l) => l.msg === 'ready');
      const token = await issuer.tokenFor({ email: 'start@example.com' });
      const res = await fetch(ready.graphql!, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: JSON.stringify({ query: '{ me { name } }' }),
      });
      expect(await res.json()).toEqual({ data: { me: { name: 'start@example.com' } } });
    } finally {
      await issuer.close();
    }
  });
});
