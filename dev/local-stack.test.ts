import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { claimLocalDir } from './local-stack.ts';

let dir: string | undefined;
afterEach(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('claimLocalDir: one local default per checkout', () => {
  it('refuses while another live process holds the checkout, and takes over once it is gone', async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'vdi-local-'));
    const other = spawn('sleep', ['30'], { stdio: 'ignore' });
    await writeFile(path.join(dir, 'owner.pid'), String(other.pid));
    await expect(claimLocalDir(dir)).rejects.toThrow(`another local default is running from this checkout (pid ${other.pid})`);
    expect(await readFile(path.join(dir, 'owner.pid'), 'utf8')).toBe(String(other.pid));

    other.kill('SIGKILL');
    await new Promise((resolve) => other.once('exit', resolve));
    const release = await claimLocalDir(dir);
    expect(await readFile(path.join(dir, 'owner.pid'), 'utf8')).toBe(String(process.pid));
    await release();
    await expect(readFile(path.join(dir, 'owner.pid'))).rejects.toThrow();
  });

  it('claims a checkout nobody holds', async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'vdi-local-'));
    const release = await claimLocalDir(dir);
    await release();
    await (
      await claimLocalDir(dir)
    )();
  });
});
