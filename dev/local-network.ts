// The local default's own network namespace (docs/adr/0007-local-desktops.md). Desktop pods need addresses
// that are local but not loopback (the apiserver refuses loopback in EndpointSlices), and Traefik must reach
// them; a namespace of our own carries the pod range on its `lo` without touching the machine's network.
//
// Outside: `npm start` re-runs itself under `unshare -n` (root) or `unshare -rn` (anyone, where unprivileged
// user namespaces are enabled) and forwards the browser-facing ports: for every port the inside exposes it
// makes a Unix socket in a private directory (Unix sockets live in the file system, not in a network
// namespace), and the outside listens on the same port on 127.0.0.1 and ::1 and pipes each connection to it.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, watch, type FSWatcher } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

/** Set inside the namespace: the directory of the port sockets. */
export const LOCAL_NETWORK_ENV = 'VDI_LOCAL_NETWORK';
/** What `lo` carries inside: the apiserver advertises its first address, kwok hands pods the upper half. */
export const LOCAL_RANGE = '10.244.0.0/16';
export const ADVERTISE_ADDRESS = '10.244.0.1';
export const POD_CIDR = '10.244.128.1/17';

export interface NetworkLog {
  info(fields: Record<string, unknown>, message: string): void;
  warn(fields: Record<string, unknown>, message: string): void;
}

/** Whether this process runs inside the local default's namespace. */
export function insideLocalNetwork(env: Record<string, string | undefined> = process.env): boolean {
  return !!env[LOCAL_NETWORK_ENV];
}

function unshareArgs(): string[] {
  return process.getuid?.() === 0 ? ['-n'] : ['-rn'];
}

/** Why no namespace can be made here (missing tools, unprivileged user namespaces disabled), or undefined. */
export function localNetworkProblem(): string | undefined {
  const probe = spawnSync('unshare', [...unshareArgs(), '--', 'ip', 'link', 'set', 'lo', 'up'], { encoding: 'utf8' });
  if (probe.error) return `\`unshare\` or \`ip\` is missing (${probe.error.message}): install util-linux and iproute2`;
  if (probe.status !== 0) {
    const why = probe.stderr.trim() || `exit ${probe.status}`;
    return process.getuid?.() === 0
      ? `\`unshare -n\` failed: ${why}`
      : `unprivileged user namespaces are not available (\`unshare -rn\`: ${why}); enable them (sysctl kernel.unprivileged_userns_clone=1, or on Ubuntu kernel.apparmor_restrict_unprivileged_userns=0) or run as root`;
  }
  return undefined;
}

export interface LocalNetwork {
  /** The exit code of the process inside. */
  exited: Promise<number>;
  /** Asks the process inside to stop (SIGTERM) and waits for it. */
  stop(): Promise<void>;
}

/**
 * Runs this same command line again inside a new network namespace, forwarding the ports it exposes
 * (exposePort) from this machine's loopback, until it exits.
 */
export async function runInLocalNetwork(log: NetworkLog): Promise<LocalNetwork> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'vdi-net-'));
  const child: ChildProcess = spawn('unshare', [...unshareArgs(), '--', process.execPath, ...process.execArgv, ...process.argv.slice(1)], {
    env: { ...process.env, [LOCAL_NETWORK_ENV]: dir },
    stdio: 'inherit',
  });
  const servers = new Map<number, Forwarder[]>();
  const forward = (port: number) => {
    if (servers.has(port)) return;
    const socketPath = path.join(dir, `${port}.sock`);
    const list: Forwarder[] = [];
    servers.set(port, list);
    for (const host of ['127.0.0.1', '::1']) {
      const server = forwarder(() => net.connect(socketPath));
      server.once('error', (err: NodeJS.ErrnoException) => {
        // ::1 is missing where IPv6 is off; a port taken on 127.0.0.1 is worth saying.
        if (host === '127.0.0.1') log.warn({ port, error: err.code ?? err.message }, `cannot forward ${host}:${port} into the local network`);
      });
      server.listen(port, host);
      list.push(server);
    }
  };
  const scan = async () => {
    for (const name of await readdir(dir).catch(() => [] as string[])) {
      const port = /^(\d+)\.sock$/.exec(name)?.[1];
      if (port) forward(Number(port));
    }
  };
  const watcher: FSWatcher = watch(dir, () => void scan());
  const exited = new Promise<number>((resolve) => {
    child.once('exit', (code, signal) => resolve(code ?? (signal ? 128 + (os.constants.signals[signal] ?? 0) : 1)));
  });
  void exited.then(async () => {
    watcher.close();
    for (const list of servers.values()) for (const server of list) void server.shut();
    await rm(dir, { recursive: true, force: true });
  });
  log.info({ namespace: `unshare ${unshareArgs().join(' ')}`, range: LOCAL_RANGE }, 'running the local default in a network namespace of its own');
  return {
    exited,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

/** Inside: puts the pod range on `lo` (we are root in this namespace) and ends this process with its parent. */
export function setUpLocalNetwork(): void {
  for (const args of [
    ['link', 'set', 'lo', 'up'],
    ['addr', 'add', LOCAL_RANGE, 'dev', 'lo'],
  ]) {
    const r = spawnSync('ip', args, { encoding: 'utf8' });
    if (r.status !== 0 && !r.stderr.includes('File exists')) throw new Error(`ip ${args.join(' ')} failed: ${r.stderr.trim() || r.error?.message}`);
  }
  // unshare execs us in place, so our parent is the process outside; if it dies without stopping us, stop too.
  const parent = process.ppid;
  const timer = setInterval(() => {
    if (process.ppid !== parent) process.kill(process.pid, 'SIGTERM');
  }, 1000);
  timer.unref();
}

/** Inside: makes `port` on the namespace's 127.0.0.1 reachable at the same port on the machine's loopback. */
export async function exposePort(port: number, env: Record<string, string | undefined> = process.env): Promise<() => Promise<void>> {
  const dir = env[LOCAL_NETWORK_ENV];
  if (!dir || !existsSync(dir)) throw new Error(`${LOCAL_NETWORK_ENV} does not name the port directory`);
  const server = forwarder(() => net.connect(port, '127.0.0.1'));
  const socketPath = path.join(dir, `${port}.sock`);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, resolve);
  });
  return async () => {
    await server.shut();
    await rm(socketPath, { force: true });
  };
}

type Forwarder = net.Server & { shut(): Promise<void> };

/**
 * A server that pipes each connection to a new one from `connect`. shut() ends the connections under way too:
 * net.Server.close() alone waits for them, and a browser left open on the portal or a desktop keeps them for
 * as long as it runs (Ctrl-C of the local default then never finished).
 */
function forwarder(connect: () => net.Socket): Forwarder {
  const open = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const target = connect();
    client.pipe(target).pipe(client);
    open.add(client);
    const close = () => {
      open.delete(client);
      client.destroy();
      target.destroy();
    };
    client.once('error', close);
    target.once('error', close);
    client.once('close', close);
    target.once('close', close);
  }) as Forwarder;
  server.shut = () => {
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const client of open) client.destroy();
    return closed;
  };
  return server;
}
