// A real coturn (Debian's `coturn` package) on loopback with REST-API auth, and its own client
// (`turnutils_uclient`) to try an allocation with given credentials.
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { createSocket } from 'node:dgram';

export interface Coturn {
  port: number;
  realm: string;
  /** Runs turnutils_uclient; `allocated` is true when it completed (exit 0) with no allocation error. */
  allocate(username: string, password: string): Promise<{ allocated: boolean; code: number; output: string }>;
  stop(): Promise<void>;
}

/** A port free for both TCP and UDP on 127.0.0.1. */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const s = createServer();
      s.once('error', reject);
      s.listen(0, '127.0.0.1', () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
    const udpFree = await new Promise<boolean>((resolve) => {
      const u = createSocket('udp4');
      u.once('error', () => resolve(false));
      u.bind(port, '127.0.0.1', () => u.close(() => resolve(true)));
    });
    if (udpFree) return port;
  }
}

function run(cmd: string, args: string[], timeoutMs: number): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    p.stdout.on('data', (b) => (output += b));
    p.stderr.on('data', (b) => (output += b));
    const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, output });
    });
  });
}

export async function startCoturn(opts: { sharedSecrets: string[]; realm?: string }): Promise<Coturn> {
  const port = await freePort();
  const realm = opts.realm ?? 'vdi.test';
  const args = [
    '-n',
    '--listening-ip=127.0.0.1',
    '--relay-ip=127.0.0.1',
    `--listening-port=${port}`,
    '--use-auth-secret',
    ...opts.sharedSecrets.map((s) => `--static-auth-secret=${s}`),
    `--realm=${realm}`,
    '--no-cli',
    '--no-tls',
    '--no-dtls',
    '--allow-loopback-peers',
    '--log-file=stdout',
    `--pidfile=/tmp/turnserver-${port}.pid`,
  ];
  const proc: ChildProcess = spawn('turnserver', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  proc.stdout!.on('data', (b) => (log += b));
  proc.stderr!.on('data', (b) => (log += b));
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  // Ready when it accepts TCP on the listening port.
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`turnserver exited: ${log.slice(-2000)}`);
    const up = await new Promise<boolean>((resolve) => {
      const s = createServer();
      s.once('error', () => resolve(true));
      s.listen(port, '127.0.0.1', () => s.close(() => resolve(false)));
    });
    if (up) break;
    if (Date.now() > deadline) throw new Error(`turnserver did not listen on ${port}: ${log.slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    port,
    realm,
    async allocate(username, password) {
      const { code, output } = await run(
        'turnutils_uclient',
        ['-p', String(port), '-u', username, '-w', password, '-y', '-n', '1', '-m', '1', '127.0.0.1'],
        60_000,
      );
      return { allocated: code === 0 && !output.includes('Cannot complete Allocation'), code, output };
    },
    async stop() {
      if (proc.exitCode === null) proc.kill('SIGTERM');
      await exited;
    },
  };
}
