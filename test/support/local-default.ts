// The product as `npm start` runs it, for the end-to-end desktop test and the first-frame bench: `node
// src/main.ts` without a cluster, so it starts the local default with real desktops (a network namespace of its
// own, Traefik, Selkies), on ports picked free on this machine so it never meets a person's `npm start`.
import { spawn, type ChildProcess } from 'node:child_process';
import { readdir, readFile, readlink } from 'node:fs/promises';
import path from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import type { Page } from 'playwright-core';
import { KubeClient } from '../../src/kube/client.ts';
import { freePort } from '../../dev/control-plane.ts';

const repoRoot = path.resolve(import.meta.dirname, '../..');

export interface LocalDefault {
  /** The portal, as a person opens it: http://vdi.localhost:<port>. */
  portalUrl: string;
  desktopPort: number;
  /** An admin client of its cluster (the kubeconfig it hands out). */
  client: KubeClient;
  /** Every line it logged so far. */
  output(): string;
  proc: ChildProcess;
  stop(): Promise<void>;
}

/** Starts `node src/main.ts` as a person's `npm start` does and resolves once it logs `ready`. */
export async function startLocalDefault(opts: { env?: Record<string, string>; timeoutMs?: number } = {}): Promise<LocalDefault> {
  const [port, issuerPort, desktopPort] = [await freePort(), await freePort(), await freePort()];
  const env: Record<string, string | undefined> = {
    ...process.env,
    PORT: String(port),
    VDI_LOCAL_ISSUER_PORT: String(issuerPort),
    VDI_LOCAL_DESKTOP_PORT: String(desktopPort),
    LOG_LEVEL: 'info',
    ...opts.env,
  };
  // No cluster of the caller's (the integration suite exports one): this is the local default.
  delete env.KUBECONFIG;
  delete env.NODE_ENV;
  const proc = spawn(process.execPath, ['src/main.ts'], { cwd: repoRoot, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let output = '';
  proc.stdout!.on('data', (b: Buffer) => (output += b.toString()));
  proc.stderr!.on('data', (b: Buffer) => (output += b.toString()));
  const killGroup = () => {
    try {
      process.kill(-proc.pid!, 'SIGKILL');
    } catch {
      // gone
    }
  };
  process.once('exit', killGroup);
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  const stop = async () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGTERM');
      const timer = setTimeout(killGroup, 30_000);
      await exited;
      clearTimeout(timer);
    }
    killGroup();
    process.removeListener('exit', killGroup);
  };

  const deadline = Date.now() + (opts.timeoutMs ?? 600_000);
  const readyLine = /"msg":"ready"|\bready\b.*graphql/;
  while (!readyLine.test(output)) {
    if (proc.exitCode !== null || proc.signalCode !== null)
      throw new Error(`npm start exited (code ${proc.exitCode}) before ready:\n${output.slice(-4000)}`);
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`npm start was not ready in time:\n${output.slice(-4000)}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  if (!/Desktops are real Selkies 2.x desktops behind Traefik/.test(output)) {
    await stop();
    throw new Error(`npm start came up without real desktops:\n${output.slice(-4000)}`);
  }
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(path.join(repoRoot, '.vdi/local/kubeconfig'));
  return { portalUrl: `http://vdi.localhost:${port}`, desktopPort, client: new KubeClient(kubeConfig), output: () => output, proc, stop };
}

/**
 * Process ids of a local desktop's processes (Xvfb, openbox, xterm, Selkies and what they started): they run in
 * the desktop's home, a folder named after the pod (dev/desktops/local-desktops.ts).
 */
export async function desktopProcesses(podName: string): Promise<{ pid: number; command: string }[]> {
  const found: { pid: number; command: string }[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cwd = await readlink(`/proc/${entry}/cwd`);
      if (!/\/vdi-desktops-[^/]+\//.test(cwd) || !path.basename(path.dirname(cwd)).startsWith(`${podName.slice(0, 40)}-`)) continue;
      const command = (await readFile(`/proc/${entry}/cmdline`, 'utf8')).split('\0').filter(Boolean).slice(0, 2).join(' ');
      found.push({ pid: Number(entry), command });
    } catch {
      // gone, or not ours to read
    }
  }
  return found;
}

/** What share of the page's pixels is within `tolerance` (per channel) of `rgb`: a screenshot, decoded in the page. */
export async function colourShare(page: Page, rgb: [number, number, number], tolerance = 40): Promise<number> {
  const png = (await page.screenshot()).toString('base64');
  return await page.evaluate(
    async ({ png, rgb, tolerance }) => {
      const bytes = Uint8Array.from(atob(png), (c) => c.charCodeAt(0));
      const bitmap = await createImageBitmap(new Blob([bytes], { type: 'image/png' }));
      const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
      const ctx = canvas.getContext('2d')!;
      ctx.drawImage(bitmap, 0, 0);
      const { data } = ctx.getImageData(0, 0, bitmap.width, bitmap.height);
      let near = 0;
      for (let i = 0; i < data.length; i += 4) {
        if (Math.abs(data[i]! - rgb[0]) <= tolerance && Math.abs(data[i + 1]! - rgb[1]) <= tolerance && Math.abs(data[i + 2]! - rgb[2]) <= tolerance)
          near++;
      }
      return near / (data.length / 4);
    },
    { png, rgb, tolerance },
  );
}

/** `#rrggbb` as numbers. */
export function hexColour(hex: string): [number, number, number] {
  const n = Number.parseInt(hex.slice(1), 16);
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
}
