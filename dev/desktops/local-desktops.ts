// A small "kubelet for desktops" on the simulated (kwok) nodes: kwok marks desktop pods Running without running
// anything, so for every Running desktop pod this runs a real desktop (Xvfb, openbox, xterm and Selkies 2.x)
// started from the pod spec the reconciler wrote, listening on the pod's IP and container port, and stops it when
// the pod goes or stops running. A desktop that ends on its own is restarted as a kubelet restarts a container.
// See docs/adr/0007-local-desktops.md.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { V1Pod, V1Secret } from '@kubernetes/client-node';
import { Informer, objectKey } from '../../operator/informer.ts';
import { LABEL_MANAGED_BY, MANAGER } from '../../operator/v1alpha1.ts';
import { isNotFound, type KubeClient } from '../../src/kube/client.ts';
import { DesktopProcesses, type DesktopExit } from './desktop-processes.ts';
import { containerEndedStatus, CRASH_MEMORY_MS, desktopLaunch, PodContractError, relocateMounts, selkiesInvocation } from './pod-desktop.ts';

/** What the builder puts on every desktop pod (operator/builders.ts, commonLabels('desktop')). */
export const DESKTOP_POD_SELECTOR = `app.kubernetes.io/component=desktop,${LABEL_MANAGED_BY}=${MANAGER}`;

export interface DesktopLog {
  info(fields: Record<string, unknown>, message: string): void;
  warn(fields: Record<string, unknown>, message: string): void;
}

export interface LocalDesktopsOptions {
  client: KubeClient;
  /** The `selkies` executable (ensureSelkies() in dev/control-plane.ts). */
  selkies: string;
  log: DesktopLog;
  /** Parent of the desktops' directories (a fresh temporary one by default, removed on stop). */
  dir?: string;
  /**
   * Aborted when the process begins to shut down: a Ctrl-C reaches the desktops' processes at the same moment as
   * this one, and their ends are then no crashes to restart, long before stop() is called.
   */
  signal?: AbortSignal;
}

/** One running desktop, for logs and tests. */
export interface LocalDesktop {
  /** `namespace/name` of the pod. */
  pod: string;
  uid: string;
  address: string;
  port: number;
  display: number;
  /** The desktop user's home (the terminal's working directory). */
  home: string;
  logDir: string;
  startedAt: number;
  ready: Promise<void>;
  pids(): number[];
}

export interface LocalDesktops {
  list(): LocalDesktop[];
  get(pod: string): LocalDesktop | undefined;
  /** Resolves once the pod's desktop accepts connections (it may not have been started yet). */
  waitFor(pod: string, timeoutMs?: number): Promise<LocalDesktop>;
  /** Pods whose spec Selkies could not run with, and why (the contract failures). */
  failures(): Map<string, string>;
  stop(): Promise<void>;
}

interface Entry {
  desktop?: LocalDesktop;
  processes?: DesktopProcesses;
  /** Serialises the starts and stops of one pod. */
  chain: Promise<void>;
  /** Ends of the pod's (uid) desktop container that the kubelet still remembers (see containerEndedStatus). */
  ends?: { uid: string; count: number };
  /** The pod (uid) whose desktop waits in CrashLoopBackOff: not started again. */
  backOff?: string;
  /** The desktop's folder (its home, logs, mounts) and its pod (uid): kept while the pod lives, as its volumes are. */
  dir?: { path: string; uid: string };
}

function wanted(pod: V1Pod): boolean {
  return pod.status?.phase === 'Running' && !!pod.status.podIP && !pod.metadata?.deletionTimestamp;
}

export async function startLocalDesktops(o: LocalDesktopsOptions): Promise<LocalDesktops> {
  const root = o.dir ?? (await mkdtemp(path.join(os.tmpdir(), 'vdi-desktops-')));
  const ownRoot = !o.dir;
  const informer = new Informer<V1Pod>(o.client, { path: '/api/v1/pods', name: 'local-desktops', labelSelector: DESKTOP_POD_SELECTOR });
  const entries = new Map<string, Entry>();
  const failures = new Map<string, string>();
  let stopped = false;
  // Stopping cancels the requests under way: on Ctrl-C the terminal signals the whole process group, so the
  // desktops end (and a restart's status write starts) while the apiserver is going down too, and would hold the
  // exit for a request's timeout.
  const halt = new AbortController();
  const client = o.client.withSignal(halt.signal);
  const halting = () => {
    stopped = true;
    halt.abort(new Error('the local desktops are stopping'));
  };
  o.signal?.addEventListener('abort', halting, { once: true });
  /** Logs a failure of the pod's desktop, unless it is one of stop()'s cancellations. */
  const reportFailure = (key: string, what: string) => (err: unknown) => {
    if (!stopped) o.log.warn({ pod: key, error: err instanceof Error ? err.message : String(err) }, what);
  };

  const secretLookup = async (pod: V1Pod) => {
    const namespace = pod.metadata!.namespace!;
    const names = new Set<string>();
    for (const c of pod.spec?.containers ?? [])
      for (const e of c.env ?? []) if (e.valueFrom?.secretKeyRef?.name) names.add(e.valueFrom.secretKeyRef.name);
    for (const v of pod.spec?.volumes ?? []) if (v.secret?.secretName) names.add(v.secret.secretName);
    const secrets = new Map<string, V1Secret>();
    for (const name of names) {
      try {
        secrets.set(name, await client.get<V1Secret>(`/api/v1/namespaces/${namespace}/secrets/${name}`));
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
    }
    return (name: string, key: string) => {
      const encoded = secrets.get(name)?.data?.[key];
      return encoded === undefined ? undefined : Buffer.from(encoded, 'base64').toString('utf8');
    };
  };

  /** Ends the desktop's processes; its folder (the home) goes too unless the same pod's desktop starts again. */
  const stopDesktop = async (key: string, entry: Entry, why: string, keepFiles = false) => {
    const { processes, desktop, dir } = entry;
    entry.processes = undefined;
    entry.desktop = undefined;
    if (processes) {
      await processes.stop();
      o.log.info({ pod: key, display: desktop?.display }, `local desktop stopped (${why})`);
    }
    if (dir && !keepFiles) {
      entry.dir = undefined;
      await rm(dir.path, { recursive: true, force: true });
    }
  };

  const startDesktop = async (key: string, entry: Entry, pod: V1Pod) => {
    let launch;
    let invocation;
    try {
      launch = desktopLaunch(pod, await secretLookup(pod));
      invocation = selkiesInvocation(launch);
    } catch (err) {
      if (!(err instanceof PodContractError)) throw err;
      failures.set(key, err.message);
      o.log.warn({ pod: key, problem: err.message }, 'the desktop pod cannot run Selkies');
      return;
    }
    failures.delete(key);
    // A restarted container keeps its pod's volumes: the same folder, home included.
    if (entry.dir && entry.dir.uid !== pod.metadata!.uid) await stopDesktop(key, entry, 'pod replaced');
    const dir = entry.dir?.path ?? (await mkdtemp(path.join(root, `${pod.metadata!.name!.slice(0, 40)}-`)));
    entry.dir = { path: dir, uid: pod.metadata!.uid! };
    // The pod's secret volumes (the presence token) as files of this desktop's own.
    const mounted = relocateMounts(invocation.env, launch.mounts, path.join(dir, 'mounts'));
    for (const file of mounted.files) {
      await mkdir(path.dirname(file.path), { recursive: true, mode: 0o700 });
      await writeFile(file.path, file.content, { mode: 0o600 });
    }
    const processes = await DesktopProcesses.start({
      selkies: o.selkies,
      dir,
      ...invocation,
      env: mounted.env,
      address: launch.address,
      port: launch.port,
    });
    entry.processes = processes;
    entry.desktop = {
      pod: key,
      uid: pod.metadata!.uid!,
      address: launch.address,
      port: launch.port,
      display: processes.display,
      home: processes.home,
      logDir: processes.logDir,
      startedAt: Date.now(),
      ready: processes.ready,
      pids: () => processes.pids(),
    };
    o.log.info(
      { pod: key, display: processes.display, address: `${launch.address}:${launch.port}`, logs: processes.logDir },
      'local desktop started',
    );
    processes.ready.then(
      async () => {
        o.log.info({ pod: key }, 'local desktop is serving');
        await markReady(pod.metadata!.namespace!, pod.metadata!.name!, pod.metadata!.uid!).catch(
          reportFailure(key, 'could not mark the desktop pod ready'),
        );
      },
      reportFailure(key, 'local desktop failed to serve'),
    );
    void processes.exited.then((exit) => ended(key, entry, processes, pod.metadata!.uid!, exit));
  };

  /**
   * The desktop's container ended on its own (Selkies or its display server exited): what a kubelet does under
   * restartPolicy Always. The pod turns unready at once (the reconciler takes its address out of the route and
   * the session leaves Running), the ended run becomes its `lastState`, and the desktop starts again, unless it
   * ended before within CRASH_MEMORY_MS: then it waits in CrashLoopBackOff, which fails the session.
   */
  const ended = (key: string, e: Entry, processes: DesktopProcesses, uid: string, exit: DesktopExit) => {
    e.chain = e.chain
      .then(async () => {
        if (stopped || e.processes !== processes) return;
        const startedAt = new Date(e.desktop!.startedAt);
        const remembered = e.ends?.uid === uid && Date.now() - startedAt.getTime() < CRASH_MEMORY_MS ? e.ends.count : 0;
        e.ends = { uid, count: remembered + 1 };
        const message = `${exit.process} exited with code ${exit.exitCode}`;
        o.log.warn({ pod: key, ends: e.ends.count }, `local desktop ended: ${message}`);
        const pod = informer.get(key);
        const samePod = pod?.metadata?.uid === uid && wanted(pod);
        await stopDesktop(key, e, message, samePod);
        if (!pod?.metadata || !samePod) return;
        const { status, restart } = containerEndedStatus(pod, { exitCode: exit.exitCode, startedAt, message }, e.ends.count, new Date());
        if (!restart) e.backOff = uid;
        const patched = await client.mergePatch<V1Pod>(`/api/v1/namespaces/${pod.metadata.namespace}/pods/${pod.metadata.name}/status`, {
          metadata: { uid },
          status,
        });
        // Cached at once: the restarted desktop's readiness (markReady) must find the pod unready.
        informer.remember(patched);
        if (restart) await startDesktop(key, e, pod);
      })
      .catch(reportFailure(key, 'local desktop failed'));
  };

  /**
   * The readiness probe's verdict, which kwok does not give (dev/desktops/kwok-desktop-stage.yaml): the pod's Ready
   * and ContainersReady conditions and its containers' `ready`, set once the desktop accepts connections. Only
   * for the same pod (uid), and only when it is not Ready already.
   */
  const markReady = async (namespace: string, name: string, uid: string) => {
    const pod = informer.get(`${namespace}/${name}`);
    if (stopped || !pod || pod.metadata?.uid !== uid || pod.metadata.deletionTimestamp) return;
    if (pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')) return;
    const now = new Date().toISOString();
    const conditions = (pod.status?.conditions ?? []).map((c) =>
      c.type === 'Ready' || c.type === 'ContainersReady' ? { type: c.type, status: 'True', lastTransitionTime: now } : c,
    );
    const containerStatuses = (pod.status?.containerStatuses ?? []).map((c) => ({ ...c, ready: true }));
    await client.mergePatch(`/api/v1/namespaces/${namespace}/pods/${name}/status`, {
      metadata: { uid },
      status: { conditions, containerStatuses },
    });
  };

  const sync = (key: string, pod: V1Pod | undefined) => {
    let entry = entries.get(key);
    if (!entry) entries.set(key, (entry = { chain: Promise.resolve() }));
    const e = entry;
    e.chain = e.chain
      .then(async () => {
        if (stopped) return;
        const current = e.desktop;
        if (!pod || !wanted(pod)) return await stopDesktop(key, e, pod ? `pod ${pod.status?.phase ?? 'not running'}` : 'pod deleted');
        // A new pod under the same name, or the same pod with a new IP, gets a new desktop.
        if (current && (current.uid !== pod.metadata?.uid || current.address !== pod.status?.podIP)) await stopDesktop(key, e, 'pod replaced');
        if (e.backOff === pod.metadata?.uid) return;
        if (!e.desktop) await startDesktop(key, e, pod);
      })
      .catch(reportFailure(key, 'local desktop failed'));
  };

  informer.on((type, pod) => sync(objectKey(pod), type === 'DELETED' ? undefined : pod));
  informer.start();
  await informer.waitForSync();

  const list = () => [...entries.values()].flatMap((e) => (e.desktop ? [e.desktop] : []));
  return {
    list,
    get: (pod) => entries.get(pod)?.desktop,
    async waitFor(pod, timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const desktop = entries.get(pod)?.desktop;
        if (desktop) {
          await desktop.ready;
          return desktop;
        }
        const failure = failures.get(pod);
        if (failure) throw new Error(`the desktop of ${pod} cannot run: ${failure}`);
        if (Date.now() > deadline) throw new Error(`no local desktop for ${pod} after ${timeoutMs} ms`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    failures: () => new Map(failures),
    async stop() {
      halting();
      o.signal?.removeEventListener('abort', halting);
      await informer.stop();
      await Promise.all(
        [...entries.entries()].map(async ([key, e]) => {
          await e.chain;
          await stopDesktop(key, e, 'shutting down');
        }),
      );
      if (ownRoot) await rm(root, { recursive: true, force: true });
    },
  };
}
