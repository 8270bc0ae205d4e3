// Entry point. With a kubeconfig (KUBECONFIG, ~/.kube/config) or in-cluster credentials it serves that
// cluster; with neither it boots the embedded local default (dev/local-stack.ts): a real control plane on
// loopback with simulated GPU nodes and an in-process OIDC issuer, so `npm start` works on a fresh machine.
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { ConfigError, loadConfig, type Config } from './config.ts';
import { findDashboardDir } from './dashboard-static.ts';
import { createLogger, type Logger } from './log.ts';
import { exitOnLeadershipLost, startService } from './service.ts';

interface LocalStackModule {
  startLocalStack(options: { env: Record<string, string | undefined>; log: Logger; signal?: AbortSignal }): Promise<{
    config: Config;
    kubeConfig: KubeConfig;
    howTo: string[];
    stop: () => Promise<void>;
  }>;
}
interface LocalNetworkModule {
  enterLocalNetworkIfWanted(options: {
    env: Record<string, string | undefined>;
    log: Logger;
    signal?: AbortSignal;
  }): Promise<{ exited: Promise<number>; stop: () => Promise<void> } | undefined>;
}
interface DashboardBuildModule {
  buildDashboard(log: Logger, signal?: AbortSignal): Promise<void>;
}

function clusterConfigured(): boolean {
  if (process.env.KUBECONFIG) return true;
  if (existsSync(path.join(os.homedir(), '.kube', 'config'))) return true;
  return Boolean(process.env.KUBERNETES_SERVICE_HOST) && existsSync('/var/run/secrets/kubernetes.io/serviceaccount/token');
}

// The local default is development code (dev/); the specifiers are variables so that the production build
// (tsconfig.build.json, the image) leaves it out. The image never takes these paths.
async function devModule<T>(specifier: string): Promise<T> {
  return (await import(specifier)) as T;
}

let stopping = false;

async function main(): Promise<void> {
  let config: Config = loadConfig();
  const log = createLogger(config.logLevel);
  const stops: (() => Promise<void>)[] = [];
  // Signals are handled from the first line on: a Ctrl-C while the binaries build or the control plane boots
  // stops every child started so far, not only those of a service that is up. Its abort also tells the local
  // desktops at once, before their turn to stop comes, that their processes' ends (the same Ctrl-C) are no crashes.
  const shuttingDown = new AbortController();
  const shutdown = async (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    shuttingDown.abort(new Error(`${signal}: shutting down`));
    for (const stop of stops) await stop().catch((err: unknown) => log.error({ error: String(err) }, 'shutdown step failed'));
    process.exit(0);
  };
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));

  let kubeConfig: KubeConfig;
  let howTo: string[] = [];
  if (clusterConfigured() || process.env.VDI_LOCAL === 'false') {
    kubeConfig = new KubeConfig();
    kubeConfig.loadFromDefault();
    log.info({ cluster: kubeConfig.getCurrentCluster()?.server }, 'using the configured cluster');
  } else {
    if (config.production) {
      throw new ConfigError(
        'no cluster configured (KUBECONFIG, ~/.kube/config or in-cluster credentials); the embedded local control plane is for development only',
      );
    }
    if (!findDashboardDir()) {
      const { buildDashboard } = await devModule<DashboardBuildModule>('../dev/dashboard-build.ts');
      await buildDashboard(log, shuttingDown.signal);
    }
    // Real desktops need a network namespace of their own: the local default then runs again inside one, and this
    // process only forwards its ports and waits (dev/local-network.ts).
    const { enterLocalNetworkIfWanted } = await devModule<LocalNetworkModule>('../dev/desktops/local-access.ts');
    const inside = await enterLocalNetworkIfWanted({ env: process.env, log, signal: shuttingDown.signal });
    if (inside) {
      stops.push(inside.stop);
      const code = await inside.exited;
      if (!stopping) process.exit(code);
      return;
    }
    const { startLocalStack } = await devModule<LocalStackModule>('../dev/local-stack.ts');
    const local = await startLocalStack({ env: process.env, log, signal: shuttingDown.signal });
    stops.push(local.stop);
    config = local.config;
    kubeConfig = local.kubeConfig;
    howTo = local.howTo;
  }
  if (stopping) return;

  const service = await startService({ config, kubeConfig, log, onLeadershipLost: exitOnLeadershipLost(config) });
  stops.unshift(service.stop);
  await service.synced;
  log.info({ graphql: `${service.url}/graphql`, health: `${service.url}/healthz`, mode: config.mode }, 'ready');
  for (const line of howTo) log.info(line);
}

main().catch((err: unknown) => {
  // A start-up that a signal cut short fails in whatever step it was in; the shutdown handler exits.
  if (stopping) return;
  console.error(err instanceof Error ? (err.stack ?? err.message) : err);
  process.exit(1);
});
