// A real Traefik v3 outside the cluster, reading IngressRoutes and Middlewares through its Kubernetes CRD
// provider: one entry point for the desktops, and the insecure API on its own entry point so a caller can wait
// until a route is live. The local default (`npm start`) and the routing tests both run it this way.
import { spawn, type ChildProcess } from 'node:child_process';
import { openSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { freePort } from './control-plane.ts';

export interface TraefikOptions {
  /** The binary (ensureTraefik() in dev/control-plane.ts). */
  binary: string;
  apiserverUrl: string;
  /** A bearer token that may list and watch the traefik.io kinds, Services, EndpointSlices and Secrets. */
  token: string;
  /** The apiserver's serving certificate (its cert-dir's apiserver.crt). */
  caFile: string;
  /** Where the log file goes. */
  dir: string;
  /** The entry point's name, as the IngressRoutes list it (VDI_ENTRYPOINTS). */
  entryPoint?: string;
  /** The entry point's port on 127.0.0.1 (a free one by default). */
  webPort?: number;
  /** DEBUG for tests that read the log; INFO by default. */
  logLevel?: 'DEBUG' | 'INFO' | 'WARN' | 'ERROR';
}

/** One router of /api/http/routers (the fields a test looks at). */
export interface TraefikRouter {
  name: string;
  rule: string;
  service: string;
  status: string;
  middlewares?: string[];
  entryPoints?: string[];
}

/** One service of /api/http/services. */
export interface TraefikService {
  name: string;
  status: string;
  loadBalancer?: { servers?: { url: string }[] };
  serverStatus?: Record<string, string>;
}

export interface Traefik {
  /** Where the desktops' entry point listens, e.g. http://127.0.0.1:40123. */
  webUrl: string;
  webPort: number;
  /** Traefik's own API (routers, services, /ping). */
  apiUrl: string;
  logFile: string;
  proc: ChildProcess;
  routers(): Promise<TraefikRouter[]>;
  services(): Promise<TraefikService[]>;
  /**
   * Waits until an enabled router matches `Host(\`host\`)` and its service has `serverUrl` among its servers
   * (the EndpointSlice of the desktop pod has reached Traefik); returns both.
   */
  waitForRoute(host: string, serverUrl: string, timeoutMs?: number): Promise<{ router: TraefikRouter; service: TraefikService }>;
  logTail(lines?: number): Promise<string>;
  stop(): Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function startTraefik(opts: TraefikOptions): Promise<Traefik> {
  const [webPort, apiPort] = [opts.webPort || (await freePort()), await freePort()];
  const entryPoint = opts.entryPoint ?? 'web';
  const logFile = path.join(opts.dir, 'traefik.log');
  const fd = openSync(logFile, 'a');
  const proc = spawn(
    opts.binary,
    [
      `--entrypoints.${entryPoint}.address=127.0.0.1:${webPort}`,
      `--entrypoints.traefik.address=127.0.0.1:${apiPort}`,
      '--api.insecure=true',
      '--ping=true',
      '--providers.kubernetescrd=true',
      // Traefik applies provider changes at most every 2 s by default: a desktop just Running got its 404 for up
      // to that long. One Traefik for one laptop's desktops can apply them at once.
      '--providers.providersThrottleDuration=100ms',
      `--providers.kubernetescrd.endpoint=${opts.apiserverUrl}`,
      `--providers.kubernetescrd.token=${opts.token}`,
      `--providers.kubernetescrd.certauthfilepath=${opts.caFile}`,
      '--global.checknewversion=false',
      '--global.sendanonymoususage=false',
      `--log.level=${opts.logLevel ?? 'INFO'}`,
    ],
    { stdio: ['ignore', fd, fd] },
  );
  const killOnExit = () => proc.kill('SIGKILL');
  process.once('exit', killOnExit);
  const apiUrl = `http://127.0.0.1:${apiPort}`;

  const logTail = async (lines = 40) => {
    try {
      return (await readFile(logFile, 'utf8')).split('\n').slice(-lines).join('\n');
    } catch {
      return '(no log)';
    }
  };
  const getJson = async <T>(p: string): Promise<T> => {
    const res = await fetch(`${apiUrl}${p}`);
    if (!res.ok) throw new Error(`Traefik ${p} answered ${res.status}`);
    return (await res.json()) as T;
  };
  const exited = () => proc.exitCode !== null || proc.signalCode !== null;

  const traefik: Traefik = {
    webUrl: `http://127.0.0.1:${webPort}`,
    webPort,
    apiUrl,
    logFile,
    proc,
    routers: () => getJson<TraefikRouter[]>('/api/http/routers'),
    services: () => getJson<TraefikService[]>('/api/http/services'),
    async waitForRoute(host, serverUrl, timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs;
      let seen: string;
      for (;;) {
        if (exited()) throw new Error(`Traefik exited (code ${proc.exitCode}); last log lines:\n${await logTail()}`);
        try {
          const routers = await traefik.routers();
          const router = routers.find((r) => r.rule.includes(`Host(\`${host}\`)`) && r.status === 'enabled');
          const services = router ? await traefik.services() : [];
          // A router names its service without the provider suffix when both come from the same provider.
          const service = router && services.find((s) => s.name === router.service || s.name === `${router.service}@kubernetescrd`);
          seen = JSON.stringify({ routers: routers.map((r) => ({ name: r.name, rule: r.rule, status: r.status })), service });
          if (router && service?.loadBalancer?.servers?.some((s) => s.url === serverUrl)) return { router, service };
        } catch (err) {
          seen = String(err);
        }
        if (Date.now() > deadline) {
          throw new Error(
            `no live Traefik route for ${host} → ${serverUrl} after ${timeoutMs} ms; last seen ${seen}; last log lines:\n${await logTail()}`,
          );
        }
        await sleep(250);
      }
    },
    logTail,
    async stop() {
      process.removeListener('exit', killOnExit);
      if (exited()) return;
      const done = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), 5_000);
      await done;
      clearTimeout(timer);
    },
  };

  const deadline = Date.now() + 30_000;
  for (;;) {
    if (exited()) throw new Error(`Traefik exited at start (code ${proc.exitCode}); last log lines:\n${await logTail()}`);
    const ping = await fetch(`${apiUrl}/ping`).catch(() => undefined);
    if (ping?.ok) return traefik;
    if (Date.now() > deadline) {
      await traefik.stop();
      throw new Error(`Traefik did not answer /ping within 30 s; last log lines:\n${await logTail()}`);
    }
    await sleep(100);
  }
}
