// Helpers for integration tests running against the shared control plane.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { inject } from 'vitest';
import { KubeConfig } from '@kubernetes/client-node';
import { KubeClient } from '../../src/kube/client.ts';

export function clusterInfo() {
  return inject('cluster');
}

export function adminKubeConfig(): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromFile(clusterInfo().kubeconfig);
  return kc;
}

export function adminClient(): KubeClient {
  return new KubeClient(adminKubeConfig());
}

export interface KubectlResult {
  stdout: string;
  stderr: string;
  code: number;
}

/** Runs the real kubectl against the shared cluster; `as` impersonates a user (and groups) like `--as`. */
export async function kubectl(args: string[], opts: { input?: string; as?: string; groups?: string[] } = {}): Promise<KubectlResult> {
  const info = clusterInfo();
  const full = [`--kubeconfig=${info.kubeconfig}`, ...args];
  if (opts.as) full.push(`--as=${opts.as}`, ...(opts.groups ?? []).map((g) => `--as-group=${g}`));
  return await new Promise((resolve) => {
    const p = spawn(info.kubectl, full, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (b) => (stdout += b));
    p.stderr.on('data', (b) => (stderr += b));
    p.on('close', (code) => resolve({ stdout, stderr, code: code ?? -1 }));
    p.stdin.end(opts.input ?? '');
  });
}

/** Creates a fresh namespace for one test and returns its name. */
export async function testNamespace(client: KubeClient, prefix = 't'): Promise<string> {
  const name = `${prefix}-${randomBytes(4).toString('hex')}`;
  await client.create('/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
  return name;
}

/** Polls until `probe` returns a truthy value (or throws the last error after timeoutMs). */
export async function eventually<T>(probe: () => Promise<T | undefined | false | null>, timeoutMs = 30_000, intervalMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value) return value;
      last = new Error('condition not met');
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw last;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
