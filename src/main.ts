// Entry point. With a kubeconfig (KUBECONFIG, ~/.kube/config) or in-cluster credentials it serves that
// cluster; with neither it boots the embedded local default: a real control plane on loopback with
// simulated GPU nodes and an in-process OIDC issuer, so `npm start` works on a fresh machine.
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { ConfigError, loadConfig, type Config } from './config.ts';
import { createLogger, type Logger } from './log.ts';
import { startService } from './service.ts';

interface LocalStackModule {
  startLocalStack(config: Config, log: Logger): Promise<{ config: Config; kubeConfig: KubeConfig; stop: () => Promise<void> }>;
}

function clusterConfigured(): boolean {
  if (process.env.KUBECONFIG) return true;
  if (existsSync(path.join(os.homedir(), '.kube', 'config'))) return true;
  return Boolean(process.env.KUBERNETES_SERVICE_HOST) && existsSync('/var/run/secrets/kubernetes.io/serviceaccount/token');
}

async function main(): Promise<void> {
  let config: Config = loadConfig();
  const log = createLogger(config.logLevel);
  const stops: (() => Promise<void>)[] = [];
  let kubeConfig: KubeConfig;

  if (clusterConfigured() || process.env.VDI_LOCAL === 'false') {
    kubeConfig = new KubeConfig();
    kubeConfig.loadFromDefault();
    log.info({ cluster: kubeConfig.getCurrentCluster()?.server }, 'using the configured cluster');
  } else {
    if (config.production) {
      throw new ConfigError('no cluster configured (KUBECONFIG, ~/.kube/config or in-cluster credentials); the embedded local control plane is for development only');
    }
    // Test-support modules are loaded only here. The specifier is a variable so that the production build
    // (tsconfig.build.json, the image) leaves them out; the image never takes this path.
    const localStackModule = '../dev/local-stack.ts';
    const { startLocalStack } = (await import(localStackModule)) as LocalStackModule;
    const local = await startLocalStack(config, log);
    config = local.config;
    kubeConfig = local.kubeConfig;
    stops.push(local.stop);
  }

  const service = await startService({ config, kubeConfig, log });
  stops.unshift(service.stop);
  await service.synced;
  printHowToReach(config, service.url, log);

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    for (const stop of stops) await stop().catch((err: unknown) => log.error({ error: String(err) }, 'shutdown step failed'));
    process.exit(0);
  };
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
}

function printHowToReach(config: Config, url: string, log: Logger): void {
  log.info({ graphql: `${url}/graphql`, health: `${url}/healthz`, mode: config.mode }, 'ready');
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : err);
  process.exit(1);
});
