// Real desktops at their URLs in the local default (docs/adr/0007-local-desktops.md): Traefik v3 reading the
// IngressRoutes and Middlewares the reconciler writes, exactly as in a cluster, and a local desktop (Xvfb,
// openbox, xterm, Selkies) for every Running desktop pod. Runs inside the local default's network namespace
// (dev/local-network.ts), where the pod range is local.
import path from 'node:path';
import type { KubeConfig } from '@kubernetes/client-node';
import { KubeClient } from '../../src/kube/client.ts';
import { ensureBinaries, runBuildScript, TRAEFIK_VERSION, type ControlPlaneOptions } from '../control-plane.ts';
import {
  ADVERTISE_ADDRESS,
  exposePort,
  insideLocalNetwork,
  localNetworkProblem,
  POD_CIDR,
  runInLocalNetwork,
  setUpLocalNetwork,
  type LocalNetwork,
  type NetworkLog,
} from '../local-network.ts';
import { startTraefik, type Traefik } from '../traefik.ts';
import { startLocalDesktops, type DesktopLog, type LocalDesktops } from './local-desktops.ts';

export const SELKIES_VERSION = process.env.SELKIES_VERSION ?? '2.1.0';
/** The Traefik entry point the local routes name (VDI_ENTRYPOINTS). */
export const LOCAL_ENTRY_POINT = 'web';
/** Where the desktops' entry point listens unless VDI_LOCAL_DESKTOP_PORT says otherwise. */
export const DEFAULT_DESKTOP_PORT = 8000;
/** The kwok stage that starts desktop pods unready (local-desktops.ts marks them Ready once Selkies listens). */
const DESKTOP_STAGE = path.join(import.meta.dirname, 'kwok-desktop-stage.yaml');

/** Real desktops unless VDI_LOCAL_DESKTOPS=false (suites and benches with hundreds of sessions turn them off). */
export function localDesktopsWanted(env: Record<string, string | undefined> = process.env): boolean {
  return !/^(?:0|false|no|off)$/i.test(env.VDI_LOCAL_DESKTOPS ?? '');
}

export interface DesktopTools {
  traefik: string;
  selkies: string;
}

/**
 * Builds or finds everything the local default runs, desktops included (Traefik from the Go module proxy,
 * Selkies from PyPI, Xvfb/openbox/xterm from Debian): done outside the network namespace, which has no route
 * to a registry.
 */
export async function ensureDesktopTools(log: (line: string) => void = () => {}, signal?: AbortSignal): Promise<DesktopTools> {
  await ensureBinaries(log, signal);
  log(`checking traefik ${TRAEFIK_VERSION} and selkies ${SELKIES_VERSION}`);
  const assets = await runBuildScript(['traefik', 'selkies'], log, signal);
  return { traefik: path.join(assets, `traefik-${TRAEFIK_VERSION}`), selkies: path.join(assets, `selkies-${SELKIES_VERSION}`, 'bin', 'selkies') };
}

/**
 * Inside the namespace, before the control plane starts: the pod range on `lo`, and the control-plane options
 * and service settings that go with it.
 */
export function prepareLocalDesktops(env: Record<string, string | undefined>): {
  controlPlane: Partial<ControlPlaneOptions>;
  env: Record<string, string>;
  desktopPort: number;
} {
  setUpLocalNetwork();
  const desktopPort = Number(env.VDI_LOCAL_DESKTOP_PORT || DEFAULT_DESKTOP_PORT);
  return {
    // Desktop pods become Ready when their Selkies listens, not when kwok starts them (see the stage file).
    controlPlane: { advertiseAddress: ADVERTISE_ADDRESS, podCidr: POD_CIDR, extraStages: [DESKTOP_STAGE] },
    env: { VDI_ENTRYPOINTS: LOCAL_ENTRY_POINT, VDI_URL_PORT: String(desktopPort) },
    desktopPort,
  };
}

export interface LocalDesktopAccess {
  traefik: Traefik;
  desktops: LocalDesktops;
  stop(): Promise<void>;
}

export interface LocalDesktopAccessOptions {
  /** The control plane (dev/control-plane.ts): its URL, admin token and certificate directory. */
  controlPlane: { apiserverUrl: string; adminToken: string; dir: string; kubeConfig(): KubeConfig };
  tools: DesktopTools;
  desktopPort: number;
  log: DesktopLog;
  /** Aborted when the process begins to shut down (see startLocalDesktops). */
  signal?: AbortSignal;
}

export async function startLocalDesktopAccess(o: LocalDesktopAccessOptions): Promise<LocalDesktopAccess> {
  const cp = o.controlPlane;
  // The admin token: on a laptop Traefik's own least-privilege RBAC is not what the local default shows.
  const traefik = await startTraefik({
    binary: o.tools.traefik,
    apiserverUrl: cp.apiserverUrl,
    token: cp.adminToken,
    caFile: path.join(cp.dir, 'certs', 'apiserver.crt'),
    dir: cp.dir,
    entryPoint: LOCAL_ENTRY_POINT,
    webPort: o.desktopPort,
  });
  try {
    const desktops = await startLocalDesktops({ client: new KubeClient(cp.kubeConfig()), selkies: o.tools.selkies, log: o.log, signal: o.signal });
    o.log.info(
      { traefik: traefik.webUrl, logs: traefik.logFile },
      'Traefik serves the desktops; each Running desktop pod gets a real Selkies desktop',
    );
    return {
      traefik,
      desktops,
      async stop() {
        await desktops.stop();
        await traefik.stop();
      },
    };
  } catch (err) {
    await traefik.stop();
    throw err;
  }
}

/**
 * `npm start`, before the local stack: unless real desktops are off (VDI_LOCAL_DESKTOPS=false) or this machine
 * cannot make a network namespace (then it says why and the stack runs without desktops, as before), builds what
 * the desktops need and runs the whole local default again inside a namespace of its own, forwarding its ports.
 * Returns that run (this process then only waits for it), or undefined to go on here.
 */
export async function enterLocalNetworkIfWanted(o: {
  env: Record<string, string | undefined>;
  log: DesktopLog & NetworkLog;
  signal?: AbortSignal;
}): Promise<LocalNetwork | undefined> {
  if (insideLocalNetwork(o.env)) return undefined;
  if (!localDesktopsWanted(o.env)) {
    o.log.info({}, 'real desktops are off (VDI_LOCAL_DESKTOPS=false): sessions run on simulated nodes only');
    return undefined;
  }
  const problem = localNetworkProblem();
  if (problem) {
    o.log.warn({ problem }, `real desktops are off: ${problem}`);
    return undefined;
  }
  const log = (line: string) => o.log.info({}, line);
  await ensureBinaries(log, o.signal);
  try {
    await ensureDesktopTools(log, o.signal);
  } catch (err) {
    o.signal?.throwIfAborted();
    // The control plane does not need them: say what is missing (the build script names the packages) and go on.
    const problem = err instanceof Error ? err.message : String(err);
    o.log.warn({ problem }, 'real desktops are off: their tools could not be installed (see above)');
    return undefined;
  }
  o.signal?.throwIfAborted();
  return await runInLocalNetwork(o.log);
}

/**
 * Inside the namespace, once the control plane, the issuer and the configuration are there: Traefik and the
 * desktops, and the browser-facing ports (portal, issuer, desktops) forwarded to this machine's loopback.
 */
export async function startDesktopsInLocalStack(o: {
  controlPlane: LocalDesktopAccessOptions['controlPlane'];
  desktopPort: number;
  /** The ports a browser opens besides the desktops': the portal's and the issuer's. */
  ports: number[];
  log: DesktopLog;
  signal?: AbortSignal;
}): Promise<{ stop(): Promise<void>; howTo: string }> {
  const tools = await ensureDesktopTools(() => {}, o.signal);
  const access = await startLocalDesktopAccess({ controlPlane: o.controlPlane, tools, desktopPort: o.desktopPort, log: o.log, signal: o.signal });
  const unexpose: (() => Promise<void>)[] = [];
  try {
    // The apiserver's too: the kubeconfig and kubectl the local default hands out point at it.
    const apiserverPort = Number(new URL(o.controlPlane.apiserverUrl).port);
    for (const port of [...o.ports, apiserverPort, o.desktopPort]) unexpose.push(await exposePort(port));
  } catch (err) {
    await access.stop();
    throw err;
  }
  return {
    howTo: `Desktops are real Selkies 2.x desktops behind Traefik on port ${o.desktopPort} (the dashboard's Open desktop link); VDI_LOCAL_DESKTOPS=false turns them off.`,
    async stop() {
      for (const close of unexpose) await close().catch(() => undefined);
      await access.stop();
    },
  };
}
