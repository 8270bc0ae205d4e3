// The service's configuration: environment variables with defaults, read and validated once at start-up.
import os from 'node:os';

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
    maxConnectionsPerUser: number;
    rateLimitPerMinute: number;
    bodyLimit: string;
  };
  desktops: {
    domain: string;
    hostPattern: string;
    urlScheme: string;
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
    defaultSessionTimeout: string;
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
  const algorithms = str(env, 'OIDC_ALGORITHMS', 'RS256,ES256,PS256,EdDSA').split(',').map((a) => a.trim());
  if (algorithms.some((a) => a === 'none' || a.startsWith('HS'))) throw new ConfigError('OIDC_ALGORITHMS may not contain none or HS* algorithms');
  const issuerUrl = opt(env, 'OIDC_ISSUER_URL');
  if (production && !issuerUrl && mode !== 'reconciler') throw new ConfigError('OIDC_ISSUER_URL is required in production');
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
      maxConnectionsPerUser: int(env, 'VDI_API_MAX_CONNECTIONS_PER_USER', 10, 1),
      rateLimitPerMinute: int(env, 'VDI_API_RATE_LIMIT_PER_MINUTE', 600, 1),
      bodyLimit: str(env, 'VDI_API_BODY_LIMIT', '100kb'),
    },
    desktops: {
      domain: str(env, 'VDI_DOMAIN', 'vdi.localhost'),
      hostPattern: str(env, 'VDI_HOST_PATTERN', '{name}-{namespace}.{domain}'),
      urlScheme: oneOf(env, 'VDI_URL_SCHEME', ['https', 'http'] as const, 'https'),
      tlsSecretName: opt(env, 'VDI_TLS_SECRET'),
      tlsCertResolver: opt(env, 'VDI_TLS_CERT_RESOLVER'),
      ingressMode: oneOf(env, 'VDI_INGRESS_MODE', ['traefik', 'ingress'] as const, 'traefik'),
      ingressClassName: opt(env, 'VDI_INGRESS_CLASS'),
      entryPoints: str(env, 'VDI_ENTRYPOINTS', 'websecure').split(',').map((e) => e.trim()),
      internalUrl: str(env, 'VDI_INTERNAL_URL', `http://vdi-operator.${namespace}.svc:${port}`),
      storageClassName: opt(env, 'VDI_STORAGE_CLASS'),
      runtimeClassName: str(env, 'VDI_RUNTIME_CLASS', 'nvidia'),
      gpuResourceName: str(env, 'VDI_GPU_RESOURCE', 'nvidia.com/gpu'),
      ingressControllerNamespace: str(env, 'VDI_INGRESS_NAMESPACE', 'kube-system'),
      defaultSessionTimeout: str(env, 'VDI_DEFAULT_TIMEOUT', '8h'),
    },
  };
}
