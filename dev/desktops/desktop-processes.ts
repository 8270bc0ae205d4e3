// One local desktop as a node would run the desktop image: an X server on a display of its own, a window
// manager (openbox), a terminal (xterm) and Selkies streaming the display. They stay in our process group, so a
// Ctrl-C or a kill of the whole group ends them with everything else, and they are killed when this process exits.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, openSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export interface DesktopProcessesOptions {
  /** The `selkies` executable (the venv dev/build-binaries.sh makes). */
  selkies: string;
  /** A directory of this desktop's own: home, runtime directory, logs. */
  dir: string;
  /** Selkies' environment and arguments (selkiesInvocation of the pod's). */
  env: Record<string, string>;
  args: string[];
  /** Where Selkies will answer (for `ready`). */
  address: string;
  port: number;
}

/**
 * The X server. Selkies resizes the display to the browser's window (SELKIES_ENABLE_RESIZE, which the pod sets);
 * the desktop image carries a patched Xvfb that can, Debian's Xvfb cannot (RandR refuses new modes, and Selkies
 * then never starts the video). Xorg with the dummy video driver can, and is what the local desktops use
 * (Debian's xserver-xorg-core and xserver-xorg-video-dummy); Xvfb only where those are missing.
 */
const XORG = '/usr/lib/xorg/Xorg';
const DUMMY_DRIVER = '/usr/lib/xorg/modules/drivers/dummy_drv.so';
const XORG_CONF = `Section "Device"
  Identifier "dummy"
  Driver "dummy"
  VideoRam 256000
EndSection
Section "Monitor"
  Identifier "monitor"
  HorizSync 5.0 - 1000.0
  VertRefresh 5.0 - 200.0
EndSection
Section "Screen"
  Identifier "screen"
  Device "dummy"
  Monitor "monitor"
  DefaultDepth 24
  SubSection "Display"
    Depth 24
    Virtual 3840 2160
  EndSubSection
EndSection
`;

/** Whether the local desktops get a resizable display (Xorg's dummy driver) rather than a fixed Xvfb screen. */
export function resizableDisplayAvailable(): boolean {
  return existsSync(XORG) && existsSync(DUMMY_DRIVER);
}

/** The terminal's colours: a test or a person can tell its window apart from the black root window. */
export const TERMINAL_BACKGROUND = '#1e5aa8';
export const TERMINAL_FOREGROUND = '#ffffff';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class DesktopProcesses {
  readonly display: number;
  readonly home: string;
  readonly logDir: string;
  /** Resolves once Selkies accepts connections on its address and port; rejects if it exits first. */
  readonly ready: Promise<void>;
  /**
   * Resolves when the desktop's container would have ended, as a runtime sees it: Selkies (the container's main
   * process) or the display server it draws exited without stop() asking. Never resolves otherwise.
   */
  readonly exited: Promise<DesktopExit>;
  private readonly procs: { name: string; proc: ChildProcess }[];
  private stopping: Promise<void> | undefined;

  private constructor(
    display: number,
    home: string,
    logDir: string,
    procs: { name: string; proc: ChildProcess }[],
    ready: Promise<void>,
    essential: { name: string; proc: ChildProcess }[],
  ) {
    this.display = display;
    this.home = home;
    this.logDir = logDir;
    this.procs = procs;
    this.ready = ready;
    this.ready.catch(() => undefined);
    this.exited = new Promise((resolve) => {
      for (const { name, proc } of essential) {
        const ended = () => {
          if (!this.stopping) resolve({ process: name, exitCode: exitCodeOf(proc) });
        };
        if (running(proc)) proc.once('exit', ended);
        else ended();
      }
    });
  }

  static async start(o: DesktopProcessesOptions): Promise<DesktopProcesses> {
    const home = path.join(o.dir, 'home');
    const runtime = path.join(o.dir, 'run');
    const logDir = path.join(o.dir, 'log');
    await Promise.all([home, runtime, logDir].map((d) => mkdir(d, { recursive: true, mode: 0o700 })));
    const procs: { name: string; proc: ChildProcess }[] = [];
    const run = (name: string, command: string, args: string[], env: Record<string, string>, extraFd = false) => {
      const log = openSync(path.join(logDir, `${name}.log`), 'a');
      const proc = spawn(command, args, {
        cwd: home,
        env,
        stdio: extraFd ? ['ignore', log, log, 'pipe'] : ['ignore', log, log],
      });
      proc.on('error', () => undefined);
      alive.add(proc);
      proc.once('exit', () => alive.delete(proc));
      procs.push({ name, proc });
      return proc;
    };
    // Only what a desktop image would set itself, plus PATH to find the programs: nothing of this process's
    // environment (tokens, kubeconfig) reaches the desktop.
    const base = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: home,
      XDG_RUNTIME_DIR: runtime,
      TMPDIR: runtime,
      SHELL: '/bin/bash',
      LANG: 'C.UTF-8',
    };
    try {
      // -displayfd: the server picks a free display itself and writes its number once it accepts clients.
      let server: ChildProcess;
      if (resizableDisplayAvailable()) {
        await writeFile(path.join(o.dir, 'xorg.conf'), XORG_CONF);
        // No VT of the machine's: -novtswitch -keeptty -sharevts. Only our config: -configdir on an empty folder.
        await mkdir(path.join(o.dir, 'xorg.conf.d'), { recursive: true });
        server = run(
          'xorg',
          XORG,
          [
            '-displayfd',
            '3',
            '-noreset',
            '-nolisten',
            'tcp',
            '-novtswitch',
            '-keeptty',
            '-sharevts',
            '+extension',
            'RANDR',
            '-config',
            path.join(o.dir, 'xorg.conf'),
            '-configdir',
            path.join(o.dir, 'xorg.conf.d'),
            '-logfile',
            path.join(logDir, 'xorg.server.log'),
          ],
          base,
          true,
        );
      } else {
        server = run('xvfb', 'Xvfb', ['-displayfd', '3', '-screen', '0', '1920x1080x24', '-nolisten', 'tcp', '+extension', 'RANDR'], base, true);
      }
      const display = await readDisplay(server);
      // A plain dark background, as the image's desktop has: the terminal stands out of it.
      run('xsetroot', 'xsetroot', ['-solid', '#2e3436'], { ...base, DISPLAY: `:${display}` });
      const x = { ...base, DISPLAY: `:${display}` };
      run('openbox', 'openbox', [], x);
      // The terminal gets the focus when it maps after the window manager is up.
      await sleep(300);
      run('xterm', 'xterm', ['-T', 'terminal', '-geometry', '100x30+40+40', '-bg', TERMINAL_BACKGROUND, '-fg', TERMINAL_FOREGROUND, '-fs', '12'], x);
      const selkies = run('selkies', o.selkies, o.args, { ...x, ...o.env, DISPLAY: `:${display}` });
      const ready = waitForPort(o.address, o.port, selkies, path.join(logDir, 'selkies.log'));
      const serverName = procs.find((p) => p.proc === server)!.name;
      return new DesktopProcesses(display, home, logDir, procs, ready, [
        { name: 'selkies', proc: selkies },
        { name: serverName, proc: server },
      ]);
    } catch (err) {
      await stopAll(procs);
      throw err;
    }
  }

  /** Process ids of the desktop's processes that still run. */
  pids(): number[] {
    return this.procs.filter(({ proc }) => running(proc)).map(({ proc }) => proc.pid!);
  }

  /** Ends every process: Selkies first, the X server last (the terminal's shell goes with its terminal). */
  stop(): Promise<void> {
    this.stopping ??= stopAll(this.procs);
    return this.stopping;
  }
}

/** Which of a desktop's essential processes ended, and its exit code as a runtime reports it (128 + signal). */
export interface DesktopExit {
  process: string;
  exitCode: number;
}

function exitCodeOf(proc: ChildProcess): number {
  if (proc.exitCode !== null) return proc.exitCode;
  const signal = proc.signalCode ? os.constants.signals[proc.signalCode] : undefined;
  return signal === undefined ? 1 : 128 + signal;
}

function running(proc: ChildProcess): boolean {
  return proc.pid !== undefined && proc.exitCode === null && proc.signalCode === null;
}

/** Every desktop process this process started, killed synchronously when it exits, however it exits. */
const alive = new Set<ChildProcess>();
process.on('exit', () => {
  for (const proc of alive) proc.kill('SIGKILL');
});

async function stopAll(procs: { name: string; proc: ChildProcess }[]): Promise<void> {
  for (const { proc } of [...procs].reverse()) {
    if (!running(proc)) continue;
    const exited = new Promise((r) => proc.once('exit', r));
    proc.kill('SIGTERM');
    const timer = setTimeout(() => proc.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
  }
}

async function readDisplay(xvfb: ChildProcess): Promise<number> {
  return await new Promise((resolve, reject) => {
    let text = '';
    const timer = setTimeout(() => reject(new Error('the X server did not report a display within 15 s')), 15_000);
    xvfb.stdio[3]!.on('data', (chunk: Buffer) => {
      text += chunk.toString();
      if (text.includes('\n')) {
        clearTimeout(timer);
        resolve(Number(text.trim()));
      }
    });
    xvfb.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the X server exited (code ${code}) before it reported a display`));
    });
    xvfb.once('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`the X server could not start: ${err.message} (install xserver-xorg-core and xserver-xorg-video-dummy, or xvfb)`));
    });
  });
}

async function waitForPort(address: string, port: number, proc: ChildProcess, logFile: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!running(proc)) throw new Error(`selkies exited (code ${proc.exitCode}, signal ${proc.signalCode}); see ${logFile}`);
    const open = await new Promise<boolean>((resolve) => {
      const socket = net.connect({ host: address, port });
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (open) return;
    await sleep(200);
  }
  throw new Error(`selkies did not listen on ${address}:${port} within ${timeoutMs} ms; see ${logFile}`);
}
