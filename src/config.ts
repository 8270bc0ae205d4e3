// The service's configuration: environment variables with defaults, read and validated once at start-up.
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { validateReconcilerConfig, type ReconcilerConfig } from '../operator/config.ts';

export type Mode = 'all' | 'api' | 'reconciler';

export interface Config {
  mode: Mode;
  production: boolean;
  host: string;
  port: number;
  logLevel: string;
  /** Namespace the service runs in (its Lease lives there). */
  namespace: string;
  identity: string;
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
  reconcileConcurrency: number;
  oidc: {
    issuerUrl: string | undefined;
    audience: string;
    clientId: string;
    clientSecret: string | undefined;
    jwksUri: string | undefined;
    algorithms: string[];
    clockToleranceSeconds: number;
    usernameClaim: string;
    groupsClaim: string;
    usernamePrefix: string;
    groupsPrefix: string;
    adminGroup: string;
    allowInsecureIssuer: boolean;
  };
  users: {
    namespacePrefix: string;
    quotaSessions: number;
    quotaGpus: number;
    userClusterRole: string;
  };
  api: {
    maxDepth: number;
    maxCost: number;
    maxAliases: number;
    maxTokens: number;
    maxSubscriptionsPerConnection: number;
    /**
     * How long an authorisation decision (a SubjectAccessReview's answer) is used: for cached reads and for
     * subscriptions, which are re-checked at this interval while events flow. A revoked user loses access
     * within about this long.
     */
    decisionTtlMs: number;
    maxConnectionsPerUser: number;
    rateLimitPerMinute: number;
    bodyLimit: string;
  };
  desktops: {
    domain: string;
    hostPattern: string;
    urlScheme: string;
    /** Port in desktop URLs, when the ingress entry point is not on the scheme's default port (the local default). */
    urlPort: number | undefined;
    tlsSecretName: string | undefined;
    tlsCertResolver: string | undefined;
    ingressMode: 'traefik' | 'ingress';
    ingressClassName: string | undefined;
    entryPoints: string[];
    /** Base URL at which desktop pods and Traefik reach this service (forwardAuth, TURN REST). */
    internalUrl: string;
    storageClassName: string | undefined;
    runtimeClassName: string;
    gpuResourceName: string;
    ingressControllerNamespace: string;
    /** Labels of the ingress controller's pods: with its namespace, the peers allowed to reach a desktop. */
    ingressControllerPodLabels: Record<string, string>;
    /** The TURN relay's pods (labels, and namespace; none: the session's own), allowed to reach desktops. */
    turnPodLabels: Record<string, string> | undefined;
    turnNamespace: string | undefined;
    /** Where a hostNetwork TURN relay (coturn) sends from: node addresses, which no pod selector matches. */
    turnCidrs: string[];
    defaultSessionTimeout: string;
  };
  /** The browser's way in: portal login, the session cookie, desktop forwardAuth. */
  access: {
    /** The portal's public origin; `/login`, `/callback` and `/logout` live under it. */
    publicUrl: string;
    cookieName: string;
    /** e.g. `.vdi.example.com`, so the cookie reaches the desktops' hosts too; unset: the portal host only. */
    cookieDomain: string | undefined;
    cookieSecure: boolean;
    /** 32-byte keys (first encrypts, all decrypt, for rotation). Empty: browser login is off. */
    cookieKeys: Uint8Array[];
    /** How long a browser session lasts before a new login, refresh or not. */
    sessionSeconds: number;
    /** Hosts `return_to` may point at: exact names or `*.suffix` (one label). */
    allowedReturnHosts: string[];
    scopes: string;
    /** RFC 8707 resource indicator asked for at login (the issuer then mints access tokens for the API). */
    resource: string | undefined;
    /** e.g. `consent`: some issuers issue refresh tokens (offline_access) only with it. */
    prompt: string | undefined;
  };
  turn: {
    /** coturn static-auth-secrets; the first signs, all are listed in coturn during a rotation. */
    sharedSecrets: string[];
    host: string | undefined;
    port: number;
    /** Adds `turns:` URLs when set. */
    tlsPort: number | undefined;
    credentialSeconds: number;
  };
}

type Env = Record<string, string | undefined>;

export class ConfigError extends Error {}

function str(env: Env, name: string, fallback: string): string {
  const v = env[name];
  return v === undefined || v === '' ? fallback : v;
}

function opt(env: Env, name: string): string | undefined {
  const v = env[name];
  return v === undefined || v === '' ? undefined : v;
}

function int(env: Env, name: string, fallback: number, min = 0): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const v = Number(raw);
  if (!Number.isInteger(v) || v < min) throw new ConfigError(`${name} must be an integer >= ${min}, got ${JSON.stringify(raw)}`);
  return v;
}

function bool(env: Env, name: string, fallback: boolean): boolean {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (['1', 'true', 'yes'].includes(raw.toLowerCase())) return true;
  if (['0', 'false', 'no'].includes(raw.toLowerCase())) return false;
  throw new ConfigError(`${name} must be true or false, got ${JSON.stringify(raw)}`);
}

/** A list from `NAME` (comma-separated) or from the file `NAME_FILE` (one per line), e.g. a mounted Secret. */
function list(env: Env, name: string): string[] {
  const file = opt(env, `${name}_FILE`);
  const raw = file ? readFileSync(file, 'utf8').split('\n') : (opt(env, name) ?? '').split(',');
  return raw.map((v) => v.trim()).filter(Boolean);
}

/** Labels from `NAME` as `key=value,key=value` (a NetworkPolicy's podSelector); undefined when unset. */
function labels(env: Env, name: string): Record<string, string> | undefined {
  const raw = opt(env, name);
  if (raw === undefined) return undefined;
  const entries = raw
    .split(',')
    .map((pair) => pair.trim())
    .filter(Boolean)
    .map((pair) => {
      const [key = '', value = '', ...rest] = pair.split('=').map((part) => part.trim());
      if (
        !pair.includes('=') ||
        !/^([a-z0-9.-]+\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/.test(key) ||
        rest.length > 0 ||
        !/^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$/.test(value)
      ) {
        throw new ConfigError(`${name} must be key=value pairs separated by commas (label syntax), got ${JSON.stringify(raw)}`);
      }
      return [key, value] as const;
    });
  return Object.fromEntries(entries);
}

/** CIDRs from `NAME` (comma-separated), e.g. the nodes' addresses a hostNetwork pod sends from. */
function cidrs(env: Env, name: string): string[] {
  const values = list(env, name);
  const bad = values.find((v) => !/^(\d{1,3}(\.\d{1,3}){3}\/\d{1,2}|[0-9a-fA-F:]+\/\d{1,3})$/.test(v));
  if (bad !== undefined) throw new ConfigError(`${name} must be CIDRs such as 10.0.0.0/24, got ${JSON.stringify(bad)}`);
  return values;
}

/** A cookie key: 32 bytes as base64, base64url or hex. */
function cookieKey(text: string): Uint8Array {
  const bytes = /^[0-9a-f]{64}$/i.test(text) ? Buffer.from(text, 'hex') : Buffer.from(text, 'base64url');
  if (bytes.length !== 32) throw new ConfigError('VDI_COOKIE_KEYS entries must be 32 bytes (64 hex or 43 base64 characters)');
  return new Uint8Array(bytes);
}

function oneOf<T extends string>(env: Env, name: string, allowed: readonly T[], fallback: T): T {
  const v = str(env, name, fallback);
  if (!allowed.includes(v as T)) throw new ConfigError(`${name} must be one of ${allowed.join(', ')}, got ${JSON.stringify(v)}`);
  return v as T;
}

export function loadConfig(env: Env = process.env, argv: string[] = process.argv.slice(2)): Config {
  const modeFlag = argv.find((a) => a.startsWith('--mode='))?.slice('--mode='.length);
  const mode = oneOf({ VDI_MODE: modeFlag ?? env.VDI_MODE }, 'VDI_MODE', ['all', 'api', 'reconciler'] as const, 'all');
  const production = env.NODE_ENV === 'production';
  const port = int(env, 'PORT', 8080);
  const namespace = str(env, 'POD_NAMESPACE', 'vdi-system');
  const algorithms = str(env, 'OIDC_ALGORITHMS', 'RS256,ES256,PS256,EdDSA')
    .split(',')
    .map((a) => a.trim());
  if (algorithms.some((a) => a === 'none' || a.startsWith('HS'))) throw new ConfigError('OIDC_ALGORITHMS may not contain none or HS* algorithms');
  const issuerUrl = opt(env, 'OIDC_ISSUER_URL');
  if (production && !issuerUrl && mode !== 'reconciler') throw new ConfigError('OIDC_ISSUER_URL is required in production');
  const domain = str(env, 'VDI_DOMAIN', 'vdi.localhost');
  const publicUrl = str(env, 'VDI_PUBLIC_URL', `http://127.0.0.1:${port}`).replace(/\/+$/, '');
  let publicHost: string;
  try {
    publicHost = new URL(publicUrl).host;
  } catch {
    throw new ConfigError(`VDI_PUBLIC_URL is not a URL: ${JSON.stringify(publicUrl)}`);
  }
  const turnSecrets = list(env, 'VDI_TURN_SHARED_SECRETS');
  if (turnSecrets.some((s) => s.length < 16)) throw new ConfigError('VDI_TURN_SHARED_SECRETS entries must be at least 16 characters');
  const tlsPort = opt(env, 'VDI_TURN_TLS_PORT');
  return {
    mode,
    production,
    host: str(env, 'HOST', '0.0.0.0'),
    port,
    logLevel: str(env, 'LOG_LEVEL', 'info'),
    namespace,
    identity: str(env, 'POD_NAME', `${os.hostname()}-${process.pid}`),
    leaseDurationMs: int(env, 'VDI_LEASE_DURATION_MS', 15_000, 1000),
    renewDeadlineMs: int(env, 'VDI_RENEW_DEADLINE_MS', 10_000, 500),
    retryPeriodMs: int(env, 'VDI_RETRY_PERIOD_MS', 2_000, 100),
    reconcileConcurrency: int(env, 'VDI_RECONCILE_CONCURRENCY', 16, 1),
    oidc: {
      issuerUrl,
      audience: str(env, 'OIDC_AUDIENCE', 'vdi-operator'),
      clientId: str(env, 'OIDC_CLIENT_ID', 'vdi-portal'),
      clientSecret: opt(env, 'OIDC_CLIENT_SECRET'),
      jwksUri: opt(env, 'OIDC_JWKS_URI'),
      algorithms,
      clockToleranceSeconds: int(env, 'OIDC_CLOCK_TOLERANCE_SECONDS', 30),
      usernameClaim: str(env, 'OIDC_USERNAME_CLAIM', 'email'),
      groupsClaim: str(env, 'OIDC_GROUPS_CLAIM', 'groups'),
      usernamePrefix: str(env, 'OIDC_USERNAME_PREFIX', 'oidc:'),
      groupsPrefix: str(env, 'OIDC_GROUPS_PREFIX', 'oidc:'),
      adminGroup: str(env, 'OIDC_ADMIN_GROUP', 'vdi-admins'),
      allowInsecureIssuer: bool(env, 'OIDC_ALLOW_INSECURE_ISSUER', false),
    },
    users: {
      namespacePrefix: str(env, 'VDI_NAMESPACE_PREFIX', 'vdi-'),
      quotaSessions: int(env, 'VDI_QUOTA_SESSIONS', 3),
      quotaGpus: int(env, 'VDI_QUOTA_GPUS', 2),
      userClusterRole: str(env, 'VDI_USER_CLUSTERROLE', 'vdi-user'),
    },
    api: {
      maxDepth: int(env, 'VDI_API_MAX_DEPTH', 8, 1),
      maxCost: int(env, 'VDI_API_MAX_COST', 5000, 1),
      maxAliases: int(env, 'VDI_API_MAX_ALIASES', 15, 1),
      maxTokens: int(env, 'VDI_API_MAX_TOKENS', 1000, 1),
      maxSubscriptionsPerConnection: int(env, 'VDI_API_MAX_SUBSCRIPTIONS_PER_CONNECTION', 20, 1),
      decisionTtlMs: int(env, 'VDI_API_DECISION_TTL_SECONDS', 10, 1) * 1000,
      maxConnectionsPerUser: int(env, 'VDI_API_MAX_CONNECTIONS_PER_USER', 10, 1),
      rateLimitPerMinute: int(env, 'VDI_API_RATE_LIMIT_PER_MINUTE', 600, 1),
      bodyLimit: str(env, 'VDI_API_BODY_LIMIT', '100kb'),
    },
    desktops: {
      domain,
      hostPattern: str(env, 'VDI_HOST_PATTERN', '{name}-{namespace}.{domain}'),
      urlScheme: oneOf(env, 'VDI_URL_SCHEME', ['https', 'http'] as const, 'https'),
      urlPort: opt(env, 'VDI_URL_PORT') === undefined ? undefined : int(env, 'VDI_URL_PORT', 443, 1),
      tlsSecretName: opt(env, 'VDI_TLS_SECRET'),
      tlsCertResolver: opt(env, 'VDI_TLS_CERT_RESOLVER'),
      ingressMode: oneOf(env, 'VDI_INGRESS_MODE', ['traefik', 'ingress'] as const, 'traefik'),
      ingressClassName: opt(env, 'VDI_INGRESS_CLASS'),
      entryPoints: str(env, 'VDI_ENTRYPOINTS', 'websecure')
        .split(',')
        .map((e) => e.trim()),
      internalUrl: str(env, 'VDI_INTERNAL_URL', `http://vdi-operator.${namespace}.svc:${port}`),
      storageClassName: opt(env, 'VDI_STORAGE_CLASS'),
      runtimeClassName: str(env, 'VDI_RUNTIME_CLASS', 'nvidia'),
      gpuResourceName: str(env, 'VDI_GPU_RESOURCE', 'nvidia.com/gpu'),
      ingressControllerNamespace: str(env, 'VDI_INGRESS_NAMESPACE', 'kube-system'),
      // K3s's bundled Traefik (and Traefik's chart) label their pods so.
      ingressControllerPodLabels: labels(env, 'VDI_INGRESS_POD_LABELS') ?? { 'app.kubernetes.io/name': 'traefik' },
      turnPodLabels: labels(env, 'VDI_TURN_POD_LABELS'),
      turnNamespace: opt(env, 'VDI_TURN_NAMESPACE'),
      turnCidrs: cidrs(env, 'VDI_TURN_CIDRS'),
      defaultSessionTimeout: str(env, 'VDI_DEFAULT_TIMEOUT', '8h'),
    },
    access: {
      publicUrl,
      cookieName: str(env, 'VDI_COOKIE_NAME', 'vdi_session'),
      cookieDomain: opt(env, 'VDI_COOKIE_DOMAIN'),
      cookieSecure: bool(env, 'VDI_COOKIE_SECURE', true),
      cookieKeys: list(env, 'VDI_COOKIE_KEYS').map(cookieKey),
      sessionSeconds: int(env, 'VDI_LOGIN_SESSION_SECONDS', 8 * 3600, 60),
      allowedReturnHosts: [publicHost, `*.${domain}`, ...list(env, 'VDI_ALLOWED_RETURN_HOSTS')],
      scopes: str(env, 'VDI_LOGIN_SCOPES', 'openid email groups offline_access'),
      resource: opt(env, 'VDI_LOGIN_RESOURCE'),
      prompt: opt(env, 'VDI_LOGIN_PROMPT'),
    },
    turn: {
      sharedSecrets: turnSecrets,
      host: opt(env, 'VDI_TURN_HOST'),
      port: int(env, 'VDI_TURN_PORT', 3478, 1),
      tlsPort: tlsPort === undefined ? undefined : int(env, 'VDI_TURN_TLS_PORT', 5349, 1),
      credentialSeconds: int(env, 'VDI_TURN_CREDENTIAL_SECONDS', 86_400, 60),
    },
  };
}

/** What the reconciler needs, from the one configuration (its endpoints are this service's internal URL). */
export function reconcilerConfigFrom(config: Config): ReconcilerConfig {
  const d = config.desktops;
  return validateReconcilerConfig({
    domain: d.domain,
    hostPattern: d.hostPattern,
    urlScheme: d.urlScheme as 'https' | 'http',
    urlPort: d.urlPort,
    tls: d.tlsSecretName || d.tlsCertResolver ? { secretName: d.tlsSecretName, certResolver: d.tlsCertResolver } : undefined,
    ingressMode: d.ingressMode,
    ingressClassName: d.ingressClassName,
    traefikEntryPoints: d.entryPoints,
    authEndpoint: `${d.internalUrl}/auth/forward`,
    turnRestBaseUrl: `${d.internalUrl}/turn`,
    presenceBaseUrl: `${d.internalUrl}/presence`,
    storageClassName: d.storageClassName,
    runtimeClassName: d.runtimeClassName,
    gpuResourceName: d.gpuResourceName,
    ingressControllerNamespace: d.ingressControllerNamespace,
    ingressControllerPodLabels: d.ingressControllerPodLabels,
    turnPodLabels: d.turnPodLabels,
    turnNamespace: d.turnNamespace,
    turnCidrs: d.turnCidrs.length > 0 ? d.turnCidrs : undefined,
    defaultSessionTimeout: d.defaultSessionTimeout,
  });
}
