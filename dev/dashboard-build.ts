// Builds the dashboard (`npm run dashboard:build`) when a checkout has none yet, so the first `npm start` serves
// it: a person opens the portal, not a 404.
import { spawn } from 'node:child_process';
import path from 'node:path';
import type { Logger } from '../src/log.ts';

const repoRoot = path.resolve(import.meta.dirname, '..');

export async function buildDashboard(log: Logger, signal?: AbortSignal): Promise<void> {
  log.info('building the dashboard (first start only, about 30 s)');
  const started = Date.now();
  // npm sets npm_execpath for the scripts it runs; `npm` itself is the fallback for a direct `node src/main.ts`.
  const npm = process.env.npm_execpath;
  const [cmd, args] = npm ? [process.execPath, [npm, 'run', '--silent', 'dashboard:build']] : ['npm', ['run', '--silent', 'dashboard:build']];
  const child = spawn(cmd, args, { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'], signal });
  let output = '';
  child.stdout.on('data', (b: Buffer) => (output += b.toString()));
  child.stderr.on('data', (b: Buffer) => (output += b.toString()));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', resolve);
  });
  if (code !== 0) throw new Error(`npm run dashboard:build failed (exit ${code}):\n${output.slice(-4000)}`);
  log.info(`dashboard built in ${((Date.now() - started) / 1000).toFixed(0)} s`);
}
