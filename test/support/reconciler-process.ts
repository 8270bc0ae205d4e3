// A reconciler replica in a child process, so a test can kill it the way a node dies (SIGKILL: no lease
// release, no cleanup). Run as a script it starts the service from its environment (KUBECONFIG plus the
// reconcilerEnv() settings) and prints `leading` on stdout once its controller runs; imported, it spawns one.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { KubeConfig } from '@kubernetes/client-node';
import { pino } from 'pino';
import { loadConfig } from '../../src/config.ts';
import { exitOnLeadershipLost, startService } from '../../src/service.ts';
import { reconcilerEnv } from './reconciler.ts';

const self = fileURLToPath(import.meta.url);

export interface ReconcilerProcess {
  child: ChildProcess;
  /** Resolves when the replica leads and its controller runs. */
  leading: Promise<void>;
  /** SIGKILL, and wait for the exit. */
  kill(): Promise<void>;
}

export function spawnReconciler(opts: { kubeconfig: string; namespace: string; identity: string }): ReconcilerProcess {
  // Inside a test process.execPath is the project's Node 24, which runs TypeScript directly.
  const child = spawn(process.execPath, [self], {
    env: { ...process.env, ...reconcilerEnv(opts.namespace, opts.identity), KUBECONFIG: opts.kubeconfig, VDI_RECONCILER_CHILD: '1' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const leading = new Promise<void>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes('leading\n')) resolve();
    });
    child.once('exit', (code, signal) => reject(new Error(`reconciler ${opts.identity} exited (code ${code}, signal ${signal}) before leading`)));
  });
  leading.catch(() => undefined);
  return {
    child,
    leading,
    async kill() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
    },
  };
}

async function runAsChild(): Promise<void> {
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(process.env.KUBECONFIG!);
  const config = loadConfig(process.env, []);
  const log = pino({ level: config.logLevel, base: { identity: config.identity } });
  // As src/main.ts runs it: a reconciler-only replica exits when it loses the lease.
  const service = await startService({ config, kubeConfig, log, onLeadershipLost: exitOnLeadershipLost(config) });
  const timer = setInterval(() => {
    if (service.isLeader() && service.controller()) {
      clearInterval(timer);
      process.stdout.write('leading\n');
    }
  }, 20);
}

if (process.env.VDI_RECONCILER_CHILD === '1' && process.argv[1] === self) await runAsChild();
