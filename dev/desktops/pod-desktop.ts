// What a container runtime would hand Selkies for a desktop pod: the container's environment (values,
// `$(VAR)` references and secretKeyRef lookups resolved as the kubelet resolves them), its arguments and the
// address and port it listens on. The local desktops run Selkies from exactly this, so a pod the reconciler
// writes that Selkies cannot work with fails here as it would on a node.
import type { V1Container, V1EnvVar, V1Pod } from '@kubernetes/client-node';

/** Reads one key of a Secret in the pod's namespace (decoded), or undefined when either is missing. */
export type SecretLookup = (name: string, key: string) => string | undefined;

export interface DesktopLaunch {
  /** The container's environment, resolved. */
  env: Record<string, string>;
  /** The container's args (command is the image's entry point, which the local desktop replaces). */
  args: string[];
  /** The pod IP Selkies binds in place of "every interface" of the pod's network namespace. */
  address: string;
  /** The container port the Service and the route name (`http`). */
  port: number;
  /** Secret volumes the container mounts, as the kubelet would project them: file contents by path under the mount. */
  mounts: { mountPath: string; files: Record<string, string> }[];
}

/** Why a pod cannot run as a local desktop; the message names the field. */
export class PodContractError extends Error {}

const REFERENCE = /\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)|\$\$/g;

/** The kubelet's expansion: `$(VAR)` of a variable defined earlier in the list, `$$` → `$`, anything else as is. */
export function expandReferences(text: string, defined: Record<string, string>): string {
  return text.replace(REFERENCE, (match, name: string | undefined) => {
    if (name === undefined) return '$';
    return Object.hasOwn(defined, name) ? defined[name]! : match;
  });
}

function resolveEnv(container: V1Container, secret: SecretLookup): Record<string, string> {
  const env: Record<string, string> = {};
  for (const entry of container.env ?? ([] as V1EnvVar[])) {
    if (entry.valueFrom) {
      const ref = entry.valueFrom.secretKeyRef;
      if (!ref) throw new PodContractError(`env ${entry.name}: only secretKeyRef sources are supported locally`);
      const value = ref.name ? secret(ref.name, ref.key) : undefined;
      if (value === undefined) {
        if (ref.optional) continue;
        // The kubelet refuses to start the container (CreateContainerConfigError) in this case.
        throw new PodContractError(`env ${entry.name}: Secret ${ref.name} has no key ${ref.key}`);
      }
      env[entry.name] = value;
    } else {
      env[entry.name] = expandReferences(entry.value ?? '', env);
    }
  }
  return env;
}

/** The desktop container's launch settings, or a PodContractError saying what is missing. */
export function desktopLaunch(pod: V1Pod, secret: SecretLookup): DesktopLaunch {
  const container = pod.spec?.containers.find((c) => c.name === 'desktop') ?? pod.spec?.containers[0];
  if (!container) throw new PodContractError('the pod has no container');
  const address = pod.status?.podIP;
  if (!address) throw new PodContractError('the pod has no IP yet');
  const port = container.ports?.find((p) => p.name === 'http')?.containerPort ?? container.ports?.[0]?.containerPort;
  if (!port) throw new PodContractError(`container ${container.name} declares no port`);
  const env = resolveEnv(container, secret);
  const args = (container.args ?? []).map((arg) => expandReferences(arg, env));
  return { env, args, address, port, mounts: secretMounts(pod, container, secret) };
}

function secretMounts(pod: V1Pod, container: V1Container, secret: SecretLookup): DesktopLaunch['mounts'] {
  const mounts: DesktopLaunch['mounts'] = [];
  for (const mount of container.volumeMounts ?? []) {
    const source = pod.spec?.volumes?.find((v) => v.name === mount.name)?.secret;
    if (!source?.secretName) continue;
    const files: Record<string, string> = {};
    for (const item of source.items ?? []) {
      const value = secret(source.secretName, item.key);
      if (value !== undefined) files[item.path] = value;
      else if (!source.optional) throw new PodContractError(`volume ${mount.name}: Secret ${source.secretName} has no key ${item.key}`);
    }
    mounts.push({ mountPath: mount.mountPath, files });
  }
  return mounts;
}

/**
 * A local desktop has no mount namespace: its secret volumes become files under `root` (root + mount path), and
 * environment values that name a path under a mount point there instead.
 */
export function relocateMounts(
  env: Record<string, string>,
  mounts: DesktopLaunch['mounts'],
  root: string,
): { env: Record<string, string>; files: { path: string; content: string }[] } {
  const files = mounts.flatMap((m) => Object.entries(m.files).map(([name, content]) => ({ path: `${root}${m.mountPath}/${name}`, content })));
  const relocated = Object.fromEntries(
    Object.entries(env).map(([name, value]) => {
      const mount = mounts.find((m) => value === m.mountPath || value.startsWith(`${m.mountPath}/`));
      return [name, mount ? `${root}${value}` : value];
    }),
  );
  return { env: relocated, files };
}

/** The port the desktop image's entry point gives Selkies unless SELKIES_PORT says otherwise. */
export const SELKIES_DEFAULT_PORT = 8080;

/**
 * Selkies as the maintained desktop image (ghcr.io/selkies-project/selkies/desktop) starts it: its entry point
 * (addons/base/selkies-entrypoint.sh) runs `selkies --addr=0.0.0.0 --port=${SELKIES_PORT:-8080} "$@"` with the
 * container's environment. Every interface of a pod's network namespace is its IP (and a loopback of its own,
 * which nothing outside the pod reaches), so the local desktop binds the pod IP. Throws when Selkies would listen
 * on another port than the one the pod declares (the Service and the route would find nothing there).
 */
export function selkiesInvocation(launch: DesktopLaunch): { env: Record<string, string>; args: string[] } {
  const env = { ...launch.env };
  // The image's own default (its README: "serves HTTPS by default on a certificate it mints"); the route speaks
  // plain HTTP to the pod, so a pod that leaves it on has no working desktop behind its URL.
  if (!/^(?:false|0)$/i.test((env.SELKIES_ENABLE_HTTPS ?? 'true').trim())) {
    throw new PodContractError('the desktop image serves HTTPS unless SELKIES_ENABLE_HTTPS=false, and the route speaks HTTP to the pod');
  }
  const port = Number(env.SELKIES_PORT || SELKIES_DEFAULT_PORT);
  if (port !== launch.port) throw new PodContractError(`Selkies listens on ${port} (SELKIES_PORT), the pod's container port is ${launch.port}`);
  // The entry point's --addr decides; Selkies refuses --public together with --addr.
  delete env.SELKIES_PUBLIC;
  delete env.SELKIES_ADDR;
  return { env, args: [`--addr=${launch.address}`, `--port=${port}`, ...launch.args] };
}

/** How long a container must have run for the kubelet to forget its earlier ends (its restart back-off resets). */
export const CRASH_MEMORY_MS = 10 * 60_000;

/** One end of the desktop container: its exit code and the run it ended. */
export interface ContainerEnd {
  exitCode: number;
  startedAt: Date;
  message: string;
}

/**
 * The pod status a kubelet writes when the desktop container ends under restartPolicy Always: the pod and the
 * container not ready, one more restart, the ended run as `lastState`. The first end within CRASH_MEMORY_MS is
 * restarted at once (`state.running`); a second waits in CrashLoopBackOff, which the reconciler reports as the
 * session's failure. `restart` says which.
 */
export function containerEndedStatus(
  pod: V1Pod,
  end: ContainerEnd,
  endsRemembered: number,
  now: Date,
): { status: { conditions: unknown[]; containerStatuses: unknown[] }; restart: boolean } {
  const restart = endsRemembered <= 1;
  const at = now.toISOString();
  const conditions = (pod.status?.conditions ?? []).map((c) =>
    c.type === 'Ready' || c.type === 'ContainersReady'
      ? c.status === 'False'
        ? c
        : { type: c.type, status: 'False', reason: 'ContainersNotReady', lastTransitionTime: at }
      : c,
  );
  const containerStatuses = (pod.status?.containerStatuses ?? []).map((c) => ({
    ...c,
    ready: false,
    started: restart,
    restartCount: (c.restartCount ?? 0) + 1,
    lastState: {
      terminated: {
        exitCode: end.exitCode,
        reason: end.exitCode === 0 ? 'Completed' : 'Error',
        message: end.message,
        startedAt: end.startedAt.toISOString(),
        finishedAt: at,
      },
    },
    state: restart
      ? { running: { startedAt: at } }
      : { waiting: { reason: 'CrashLoopBackOff', message: `back-off restarting failed container ${c.name} in pod ${pod.metadata?.name}` } },
  }));
  return { status: { conditions, containerStatuses }, restart };
}
