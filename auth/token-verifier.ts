// Verifies OIDC bearer JWTs locally against the issuer's published keys and maps them to an Identity.
// Any standard issuer works: the keys come from the issuer's discovery document unless jwksUri is given.
import { createHash } from 'node:crypto';
import { createRemoteJWKSet, errors as joseErrors, jwtVerify } from 'jose';
import type { JWTVerifyGetKey } from 'jose';
import { defaultIdentityConfig, identityFromClaims, IdentityError } from './identity.ts';
import type { Identity, IdentityConfig } from './identity.ts';

export interface TokenVerifierOptions {
  issuer: string;
  audience: string;
  /** Asymmetric algorithms only: `none` and HS* are refused, since an HMAC "key" would be the public key. */
  algorithms?: string[];
  clockToleranceSeconds?: number;
  /** Skips discovery when given. */
  jwksUri?: string;
  identity?: Partial<IdentityConfig>;
  /** Permits http:// issuer and JWKS URLs (tests and the local dev mode). */
  allowInsecureRequests?: boolean;
  /** Minimum time between JWKS refetches triggered by an unknown `kid` (jose's default: 30). */
  jwksCooldownSeconds?: number;
  /** Bound on the verified-token cache (default 10,000). */
  cacheMaxEntries?: number;
}

export interface TokenVerifier {
  verify(token: string): Promise<Identity>;
}

/** Every way a token can fail. The message is safe to show a client; `reason` is for logs. */
export class AuthenticationError extends Error {
  readonly code = 'UNAUTHENTICATED';
  readonly reason: string;
  override name = 'AuthenticationError';

  constructor(reason: string) {
    super('invalid token');
    this.reason = reason;
  }
}

export const defaultAlgorithms = ['RS256', 'ES256', 'PS256', 'EdDSA'];
// The WebSocket and forwardAuth paths present the same token often; a result is reused for at most a minute.
const CACHE_SECONDS = 60;
// Far beyond any real JWT; refusing early keeps hashing and parsing cheap for garbage input.
const MAX_TOKEN_LENGTH = 16 * 1024;
const DISCOVERY_TIMEOUT_MS = 5000;

export function createTokenVerifier(options: TokenVerifierOptions): TokenVerifier {
  const algorithms = options.algorithms ?? defaultAlgorithms;
  const refused = algorithms.filter((alg) => alg === 'none' || alg.startsWith('HS'));
  if (algorithms.length === 0 || refused.length > 0) {
    throw new TypeError(`token algorithms must be asymmetric; refused: ${refused.join(', ') || '(empty list)'}`);
  }
  const clockTolerance = options.clockToleranceSeconds ?? 30;
  const identityConfig: IdentityConfig = { ...defaultIdentityConfig, ...options.identity };
  const insecure = options.allowInsecureRequests ?? false;
  const cacheMaxEntries = options.cacheMaxEntries ?? 10_000;
  const cache = new Map<string, { identity: Identity; until: number }>();

  checkScheme(options.issuer, insecure);
  const configuredJwksUri = options.jwksUri === undefined ? undefined : checkScheme(options.jwksUri, insecure);
  const cooldownDuration = (options.jwksCooldownSeconds ?? 30) * 1000;

  // Resolved on first use so that start-up does not depend on the issuer being reachable; a failed
  // discovery is forgotten so that the next request tries again.
  let keySet: Promise<JWTVerifyGetKey> | undefined;
  const getKeySet = () => {
    if (!keySet) {
      const jwksUri = configuredJwksUri ? Promise.resolve(configuredJwksUri) : discoverJwksUri(options.issuer, insecure);
      keySet = jwksUri.then((uri) => createRemoteJWKSet(uri, { cooldownDuration }));
      keySet.catch(() => {
        keySet = undefined;
      });
    }
    return keySet;
  };

  async function verifyUncached(token: string): Promise<Identity> {
    const { payload } = await jwtVerify(token, await getKeySet(), {
      issuer: options.issuer,
      audience: options.audience,
      algorithms,
      clockTolerance,
      requiredClaims: ['exp'],
    });
    return Object.freeze(identityFromClaims(payload, identityConfig));
  }

  return {
    async verify(token) {
      if (typeof token !== 'string' || token === '') throw new AuthenticationError('missing token');
      if (token.length > MAX_TOKEN_LENGTH) throw new AuthenticationError('token too long');

      const key = createHash('sha256').update(token).digest('base64url');
      const now = Date.now();
      const cached = cache.get(key);
      if (cached && cached.until > now) return cached.identity;
      if (cached) cache.delete(key);

      let identity: Identity;
      try {
        identity = await verifyUncached(token);
      } catch (error) {
        throw new AuthenticationError(failureReason(error));
      }

      const until = Math.min((identity.expiresAt ?? 0) * 1000, now + CACHE_SECONDS * 1000);
      if (cache.size >= cacheMaxEntries) cache.delete(cache.keys().next().value as string);
      cache.set(key, { identity, until });
      return identity;
    },
  };
}

async function discoverJwksUri(issuer: string, insecure: boolean): Promise<URL> {
  // A plain fetch: openid-client's discovery wants a client_id, and a resource server has none.
  const wellKnown = `${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`;
  const response = await fetch(wellKnown, { redirect: 'error', signal: AbortSignal.timeout(DISCOVERY_TIMEOUT_MS) });
  if (!response.ok) throw new Error(`discovery: ${wellKnown} answered ${response.status}`);
  const metadata = (await response.json()) as { issuer?: unknown; jwks_uri?: unknown };
  // OIDC Discovery 1.0 §4.3: the document names exactly the issuer we asked about (no normalisation:
  // tokens' `iss` is compared exactly too).
  if (metadata.issuer !== issuer) throw new Error(`discovery: issuer mismatch (${String(metadata.issuer)})`);
  if (typeof metadata.jwks_uri !== 'string') throw new Error('discovery: no jwks_uri');
  return checkScheme(metadata.jwks_uri, insecure);
}

function checkScheme(url: string, insecure: boolean): URL {
  const parsed = new URL(url);
  if (parsed.protocol !== 'https:' && !(insecure && parsed.protocol === 'http:')) {
    throw new Error(`${url} must use https (allowInsecureRequests permits http)`);
  }
  return parsed;
}

function failureReason(error: unknown): string {
  if (error instanceof joseErrors.JOSEError) return `${error.code}: ${error.message}`;
  if (error instanceof IdentityError) return `identity: ${error.message}`;
  return error instanceof Error ? error.message : String(error);
}
