// A small Kubernetes REST client on node:https, used for every call the service makes.
//
// Why not only @kubernetes/client-node's generated APIs: impersonating a user with several groups needs one
// `Impersonate-Group` header line per group, and the library's fetch path merges repeated headers into one
// comma-joined value (kubernetes-client/javascript#2474), which the apiserver reads as a single group. Watches
// also need supervision the library's informer lacks. KubeConfig loading and the object types still come from
// client-node.
import https from 'node:https';
import http from 'node:http';
import { StringDecoder } from 'node:string_decoder';
import tls from 'node:tls';
import type { KubeConfig } from '@kubernetes/client-node';

export interface Impersonation {
  username: string;
  groups: string[];
}

export interface RequestOptions {
  method?: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  path: string;
  query?: Record<string, string | number | boolean | undefined>;
  body?: unknown;
  contentType?: string;
  as?: Impersonation;
  signal?: AbortSignal;
  timeoutMs?: number;
}

/** The apiserver's `Status` for a failed call; `message` is Kubernetes' text and must not reach end users. */
export class KubeError extends Error {
  readonly status: number;
  readonly reason: string;
  readonly details: unknown;
  constructor(status: number, reason: string, message: string, details?: unknown) {
    super(message);
    this.name = 'KubeError';
    this.status = status;
    this.reason = reason;
    this.details = details;
  }
}

/** An identity that cannot be sent so that the apiserver reads exactly its characters; nothing was sent. */
export class ImpersonationEncodingError extends Error {
  constructor(reason: string) {
    super(`cannot impersonate: the name ${reason}`);
    this.name = 'ImpersonationEncodingError';
  }
}

// eslint-disable-next-line no-control-regex
const HEADER_UNSAFE = /[\u0000-\u001f\u007f]|^[ \t]|[ \t]$/;

/**
 * `text` as a header value whose bytes on the wire are its UTF-8. Node writes a header string one byte per
 * character (Latin-1), and the apiserver reads the bytes as UTF-8 (Go strings): sent as is, `josé` would
 * arrive as the invalid byte E9 and `josÃ©` as C3 A9, which is `josé`. So each UTF-8 byte becomes one
 * character. Text that would not arrive as itself (a lone surrogate has no UTF-8; HTTP trims spaces and tabs
 * at the ends; control characters end a header) is refused instead of being sent altered.
 */
export function utf8HeaderValue(text: string): string {
  if (!text.isWellFormed()) throw new ImpersonationEncodingError('is not well-formed Unicode');
  if (HEADER_UNSAFE.test(text)) throw new ImpersonationEncodingError('has control characters or whitespace at an end');
  return Buffer.from(text, 'utf8').toString('latin1');
}

/** The apiserver could not be reached at all (connection refused, reset, timed out). */
export class KubeUnavailableError extends Error {
  constructor(cause: unknown) {
    super(`apiserver unavailable: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    this.name = 'KubeUnavailableError';
  }
}

export const APPLY_PATCH = 'application/apply-patch+yaml';
export const MERGE_PATCH = 'application/merge-patch+json';
export const JSON_PATCH = 'application/json-patch+json';

export interface WatchEvent<T> {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  object: T;
}

/** Counts requests by verb; the benchmarks report API writes per session from it. */
export interface RequestCounter {
  count(method: string, path: string, status: number): void;
}

export class KubeClient {
  readonly server: URL;
  private readonly kubeConfig: KubeConfig;
  private agent: https.Agent | http.Agent;
  private tlsOptions: https.RequestOptions | undefined;
  private tlsOptionsAt = 0;
  /** Parsed once per set of certificates (parsing them for every new connection costs about a millisecond). */
  private secureContext: tls.SecureContext | undefined;
  private secureMaterial = '';
  counter: RequestCounter | undefined;

  constructor(kubeConfig: KubeConfig) {
    const cluster = kubeConfig.getCurrentCluster();
    if (!cluster) throw new Error('kubeconfig has no current cluster');
    this.kubeConfig = kubeConfig;
    this.server = new URL(cluster.server);
    this.agent = this.newAgent();
  }

  /**
   * Connections are kept for reuse up to the limit in flight: fewer would close and reopen TLS connections to
   * the apiserver (a handshake on both sides) whenever a burst of writes ebbs and comes back.
   */
  private newAgent(): https.Agent | http.Agent {
    const agentOptions = { keepAlive: true, maxSockets: 64, maxFreeSockets: 64 };
    return this.server.protocol === 'https:' ? new https.Agent(agentOptions) : new http.Agent(agentOptions);
  }

  /** Credentials from the kubeconfig (token, client certificate, CA), refreshed every minute so rotated tokens work. */
  private async credentials(): Promise<https.RequestOptions> {
    if (!this.tlsOptions || Date.now() - this.tlsOptionsAt > 60_000) {
      const opts: https.RequestOptions = { headers: {} };
      await this.kubeConfig.applyToHTTPSOptions(opts);
      const material = [opts.ca, opts.cert, opts.key].map((m) => (m === undefined ? '' : String(m))).join('\u0000');
      if (material !== this.secureMaterial) {
        this.secureContext = opts.ca || opts.cert || opts.key ? tls.createSecureContext({ ca: opts.ca, cert: opts.cert, key: opts.key }) : undefined;
        if (this.secureMaterial) {
          // New certificates: new connections only. Idle ones made with the old close; busy ones (watches)
          // finish on their own.
          const old = this.agent;
          this.agent = this.newAgent();
          for (const sockets of Object.values(old.freeSockets)) for (const socket of sockets ?? []) socket.destroy();
          old.maxFreeSockets = 0;
        }
        this.secureMaterial = material;
      }
      this.tlsOptions = opts;
      this.tlsOptionsAt = Date.now();
    }
    return this.tlsOptions;
  }

  private async open(opts: RequestOptions, accept: string): Promise<http.IncomingMessage> {
    const creds = await this.credentials();
    // Nothing goes out under a signal that has already aborted (a leader that lost its lease writes nothing more).
    opts.signal?.throwIfAborted();
    const url = new URL(opts.path, this.server);
    for (const [k, v] of Object.entries(opts.query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
    const headers: http.OutgoingHttpHeaders = { ...(creds.headers as http.OutgoingHttpHeaders), Accept: accept };
    let payload: Buffer | undefined;
    if (opts.body !== undefined) {
      payload = Buffer.from(typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body));
      headers['Content-Type'] = opts.contentType ?? 'application/json';
      headers['Content-Length'] = payload.length;
    }
    if (opts.as) {
      headers['Impersonate-User'] = utf8HeaderValue(opts.as.username);
      // An array makes node write one header line per group: the apiserver needs them separate.
      if (opts.as.groups.length) headers['Impersonate-Group'] = opts.as.groups.map(utf8HeaderValue);
    }
    const lib = url.protocol === 'https:' ? https : http;
    // secureContext reaches tls.connect through the agent (https.RequestOptions does not declare it).
    const requestOptions: https.RequestOptions & { secureContext?: tls.SecureContext } = {
      method: opts.method ?? 'GET',
      headers,
      agent: this.agent,
      secureContext: this.secureContext,
      rejectUnauthorized: creds.rejectUnauthorized,
      signal: opts.signal,
      timeout: opts.timeoutMs ?? 30_000,
    };
    return await new Promise<http.IncomingMessage>((resolve, reject) => {
      const req = lib.request(url, requestOptions, resolve);
      req.on('timeout', () => req.destroy(new Error('request timed out')));
      req.on('error', (err) => reject(opts.signal?.aborted ? err : new KubeUnavailableError(err)));
      req.end(payload);
    });
  }

  async request<T = unknown>(opts: RequestOptions): Promise<T> {
    const res = await this.open(opts, 'application/json');
    const chunks: Buffer[] = [];
    try {
      for await (const chunk of res) chunks.push(chunk as Buffer);
    } catch (err) {
      throw new KubeUnavailableError(err);
    }
    const text = Buffer.concat(chunks).toString('utf8');
    const status = res.statusCode ?? 0;
    this.counter?.count(opts.method ?? 'GET', opts.path, status);
    if (status >= 200 && status < 300) {
      const json = String(res.headers['content-type'] ?? '').includes('json');
      return (json && text ? JSON.parse(text) : text || undefined) as T;
    }
    let parsed: { reason?: string; message?: string; details?: unknown } = {};
    try {
      parsed = JSON.parse(text);
    } catch {
      // not a Status object (a proxy in the way): keep the status code only
    }
    throw new KubeError(status, parsed.reason ?? String(status), parsed.message ?? `HTTP ${status}`, parsed.details);
  }

  /**
   * Opens a watch and calls onEvent for each event until the server ends the stream, the signal aborts, or
   * nothing (not even a bookmark) arrives for idleMs: a half-open connection then fails instead of stalling.
   */
  async watch<T>(
    path: string,
    query: Record<string, string | number | boolean | undefined>,
    onEvent: (event: WatchEvent<T>) => void,
    signal: AbortSignal,
    idleMs: number,
  ): Promise<void> {
    const res = await this.open({ path, query: { ...query, watch: true }, signal, timeoutMs: idleMs }, 'application/json');
    if (res.statusCode !== 200) {
      const chunks: Buffer[] = [];
      for await (const chunk of res) chunks.push(chunk as Buffer);
      let parsed: { reason?: string; message?: string } = {};
      try {
        parsed = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        // keep the status code only
      }
      throw new KubeError(res.statusCode ?? 0, parsed.reason ?? '', parsed.message ?? `HTTP ${res.statusCode}`);
    }
    // The request's `timeout` (idleMs) fires after idleMs without data on the socket, response included, and
    // destroys the request: a half-open connection ends the watch instead of stalling it.
    const lines = new LineDecoder();
    let callbackError: unknown;
    try {
      for await (const chunk of res) {
        for (const line of lines.push(chunk as Buffer)) {
          try {
            onEvent(JSON.parse(line) as WatchEvent<T>);
          } catch (err) {
            callbackError = err;
            throw err;
          }
        }
      }
    } catch (err) {
      if (callbackError) throw callbackError;
      if (signal.aborted) return;
      throw new KubeUnavailableError(err);
    }
  }

  /**
   * This client with `signal` on each request that names none: aborting it cancels those in flight (queued ones
   * never reach the wire) and makes later ones fail at once.
   */
  withSignal(signal: AbortSignal): this {
    const bound = Object.create(this) as this;
    bound.request = <T>(opts: RequestOptions) => this.request<T>({ ...opts, signal: opts.signal ?? signal });
    return bound;
  }

  // Convenience verbs.
  get<T>(path: string, as?: Impersonation): Promise<T> {
    return this.request<T>({ path, as });
  }
  list<T>(
    path: string,
    query?: RequestOptions['query'],
    as?: Impersonation,
  ): Promise<{ metadata: { resourceVersion: string; continue?: string }; items: T[] }> {
    return this.request({ path, query, as });
  }
  create<T>(path: string, body: unknown, as?: Impersonation, dryRun = false): Promise<T> {
    return this.request<T>({ method: 'POST', path, body, as, query: dryRun ? { dryRun: 'All' } : undefined });
  }
  delete<T>(path: string, as?: Impersonation, body?: unknown): Promise<T> {
    return this.request<T>({ method: 'DELETE', path, as, body });
  }
  mergePatch<T>(path: string, body: unknown, as?: Impersonation, fieldManager?: string): Promise<T> {
    return this.request<T>({ method: 'PATCH', path, body, as, contentType: MERGE_PATCH, query: fieldManager ? { fieldManager } : undefined });
  }
  /** A JSON patch (RFC 6902): the apiserver applies all of its operations or none (a failed `test` is a 422). */
  jsonPatch<T>(path: string, operations: unknown[], fieldManager?: string, as?: Impersonation): Promise<T> {
    return this.request<T>({
      method: 'PATCH',
      path,
      body: operations,
      as,
      contentType: JSON_PATCH,
      query: fieldManager ? { fieldManager } : undefined,
    });
  }
  /** Server-side apply under one field manager; `force` takes ownership of fields another manager set. */
  apply<T>(path: string, body: unknown, fieldManager: string, force = true): Promise<T> {
    return this.request<T>({ method: 'PATCH', path, body, contentType: APPLY_PATCH, query: { fieldManager, force } });
  }
}

export function isNotFound(err: unknown): boolean {
  return err instanceof KubeError && err.status === 404;
}

export function isConflict(err: unknown): boolean {
  return err instanceof KubeError && err.status === 409;
}

/**
 * Splits a stream of newline-delimited JSON into its non-empty lines. Bytes are decoded across chunk
 * boundaries: a multi-byte character split between two chunks (a template's display name, an event's
 * message) arrives whole.
 */
export class LineDecoder {
  private readonly decoder = new StringDecoder('utf8');
  private rest = '';

  push(chunk: Buffer): string[] {
    const text = this.rest + this.decoder.write(chunk);
    const lines: string[] = [];
    let start = 0;
    let newline: number;
    while ((newline = text.indexOf('\n', start)) >= 0) {
      const line = text.slice(start, newline);
      start = newline + 1;
      if (line.trim()) lines.push(line);
    }
    this.rest = text.slice(start);
    return lines;
  }
}
