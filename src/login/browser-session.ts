// The browser's session: the issuer's access and refresh tokens in an encrypted cookie (JWE, `dir` +
// A256GCM: the authenticated encryption makes it tamper-evident as well as unreadable), so the service keeps
// no session store and any replica can read it. The identity always comes from verifying the access token
// with the same verifier the bearer path uses; the cookie is only a carrier.
import { createHash } from 'node:crypto';
import { EncryptJWT, jwtDecrypt } from 'jose';
import type { Identity } from '../../auth/identity.ts';
import type { TokenVerifier } from '../../auth/token-verifier.ts';

/** What a sealed value is for; a login-transaction cookie can never be replayed as a session cookie. */
export type CookiePurpose = 'session' | 'login';

const ENCRYPTION = { alg: 'dir', enc: 'A256GCM' } as const;

export async function sealCookie(purpose: CookiePurpose, payload: Record<string, unknown>, keys: Uint8Array[], expiresAt: number): Promise<string> {
  const [key] = keys;
  if (!key) throw new Error('no cookie key configured');
  return await new EncryptJWT({ ...payload, pur: purpose }).setProtectedHeader(ENCRYPTION).setIssuedAt().setExpirationTime(expiresAt).encrypt(key);
}

/** The payload, or undefined when the value is forged, expired, for another purpose or under no known key. */
export async function openCookie<T>(purpose: CookiePurpose, value: string, keys: Uint8Array[]): Promise<T | undefined> {
  if (value.length > 8192) return undefined;
  for (const key of keys) {
    try {
      const { payload } = await jwtDecrypt(value, key, { keyManagementAlgorithms: [ENCRYPTION.alg], contentEncryptionAlgorithms: [ENCRYPTION.enc] });
      return payload.pur === purpose ? (payload as T) : undefined;
    } catch {
      // Next key (rotation), or not ours.
    }
  }
  return undefined;
}

export function parseCookies(header: string | undefined): Map<string, string> {
  const cookies = new Map<string, string>();
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq <= 0) continue;
    const name = part.slice(0, eq).trim();
    if (!cookies.has(name)) cookies.set(name, part.slice(eq + 1).trim());
  }
  return cookies;
}

export interface CookieAttributes {
  maxAgeSeconds: number;
  domain?: string;
  secure: boolean;
  path?: string;
}

/** Always HttpOnly and SameSite=Lax: sent on top-level navigations (the IdP's redirect back), not on cross-site subrequests. */
export function serializeCookie(name: string, value: string, attrs: CookieAttributes): string {
  const parts = [
    `${name}=${value}`,
    `Path=${attrs.path ?? '/'}`,
    `Max-Age=${Math.max(0, Math.floor(attrs.maxAgeSeconds))}`,
    'HttpOnly',
    'SameSite=Lax',
  ];
  if (attrs.domain) parts.push(`Domain=${attrs.domain}`);
  if (attrs.secure) parts.push('Secure');
  return parts.join('; ');
}

/** The session cookie's payload. */
export interface SessionTokens {
  /** Access token (a JWT for the API's audience). */
  at: string;
  /** Refresh token, when the issuer gave one. */
  rt?: string;
  /** Access-token expiry, epoch seconds. */
  ate: number;
  /** End of the browser session, epoch seconds: refreshes never extend it. */
  sx: number;
}

export type Refresher = (refreshToken: string) => Promise<{ accessToken: string; refreshToken?: string }>;

export type CookieIdentity =
  | { identity: Identity; tokens: SessionTokens }
  /** The access token has expired; a refresh (when `refreshable`) would make a new one. */
  | { expired: true; refreshable: boolean; tokens: SessionTokens };

export interface BrowserSessionOptions {
  cookieName: string;
  cookieDomain?: string;
  cookieSecure: boolean;
  keys: Uint8Array[];
  sessionSeconds: number;
  verifier: TokenVerifier;
  refresher?: Refresher;
  /** Bound on the decrypted-cookie cache (default 10,000). */
  cacheMaxEntries?: number;
}

// Seconds before an access token's expiry at which it counts as expired, so it does not lapse in flight.
const EXPIRY_MARGIN = 5;
// A decrypted cookie is reused for this long (forwardAuth sees the same cookie on every request of a page).
const CACHE_MS = 30_000;
// A refresh's result is shared for this long: parallel requests carrying the same old cookie (and a rotated,
// one-time refresh token) must not each try, and fail, to use it.
const REFRESH_SHARE_MS = 60_000;

export class BrowserSessions {
  readonly options: BrowserSessionOptions;
  private readonly decrypted = new Map<string, { tokens: SessionTokens; until: number }>();
  private readonly refreshes = new Map<string, { result: Promise<SessionTokens>; at: number }>();

  constructor(options: BrowserSessionOptions) {
    this.options = options;
  }

  get enabled(): boolean {
    return this.options.keys.length > 0;
  }

  cookieValue(cookieHeader: string | undefined): string | undefined {
    return cookieHeader ? parseCookies(cookieHeader).get(this.options.cookieName) : undefined;
  }

  async open(value: string): Promise<SessionTokens | undefined> {
    const now = Date.now();
    const hit = this.decrypted.get(value);
    if (hit && hit.until > now) return hit.tokens;
    const tokens = await openCookie<SessionTokens>('session', value, this.options.keys);
    if (!tokens || typeof tokens.at !== 'string' || typeof tokens.ate !== 'number' || typeof tokens.sx !== 'number') return undefined;
    if (this.decrypted.size >= (this.options.cacheMaxEntries ?? 10_000)) this.decrypted.delete(this.decrypted.keys().next().value!);
    this.decrypted.set(value, { tokens, until: Math.min(now + CACHE_MS, tokens.sx * 1000) });
    return tokens;
  }

  /** Who the cookie in `cookieHeader` belongs to, without calling the issuer. */
  async identify(cookieHeader: string | undefined): Promise<CookieIdentity | undefined> {
    if (!this.enabled) return undefined;
    const value = this.cookieValue(cookieHeader);
    const tokens = value ? await this.open(value) : undefined;
    if (!tokens) return undefined;
    const now = Date.now() / 1000;
    if (tokens.sx <= now) return undefined;
    if (tokens.ate - EXPIRY_MARGIN <= now) return { expired: true, refreshable: Boolean(tokens.rt && this.options.refresher), tokens };
    try {
      return { identity: await this.options.verifier.verify(tokens.at), tokens };
    } catch {
      return undefined;
    }
  }

  /**
   * Like identify, but renews an expired access token from the refresh token; `setCookie` then carries the
   * new cookie for the response.
   */
  async authenticate(cookieHeader: string | undefined): Promise<{ identity: Identity; setCookie?: string; sessionEndsAt: number } | undefined> {
    const found = await this.identify(cookieHeader);
    if (!found) return undefined;
    if ('identity' in found) return { identity: found.identity, sessionEndsAt: found.tokens.sx };
    if (!found.refreshable) return undefined;
    try {
      const tokens = await this.refresh(found.tokens);
      const identity = await this.options.verifier.verify(tokens.at);
      return { identity, setCookie: await this.cookieFor(tokens), sessionEndsAt: tokens.sx };
    } catch {
      return undefined;
    }
  }

  /** A new session's tokens (after the code exchange); `identity` is the verified access token's. */
  startSession(identity: Identity, accessToken: string, refreshToken: string | undefined): SessionTokens {
    const now = Math.floor(Date.now() / 1000);
    return { at: accessToken, ...(refreshToken && { rt: refreshToken }), ate: identity.expiresAt ?? now, sx: now + this.options.sessionSeconds };
  }

  async cookieFor(tokens: SessionTokens): Promise<string> {
    const value = await sealCookie('session', { ...tokens }, this.options.keys, tokens.sx);
    return serializeCookie(this.options.cookieName, value, this.attributes(tokens.sx - Date.now() / 1000));
  }

  clearCookie(): string {
    return serializeCookie(this.options.cookieName, '', this.attributes(0));
  }

  attributes(maxAgeSeconds: number): CookieAttributes {
    return { maxAgeSeconds, domain: this.options.cookieDomain, secure: this.options.cookieSecure };
  }

  private refresh(old: SessionTokens): Promise<SessionTokens> {
    const key = createHash('sha256').update(old.rt!).digest('base64url');
    const now = Date.now();
    for (const [k, v] of this.refreshes) if (now - v.at > REFRESH_SHARE_MS) this.refreshes.delete(k);
    const shared = this.refreshes.get(key);
    if (shared) return shared.result;
    const result = (async () => {
      const fresh = await this.options.refresher!(old.rt!);
      const identity = await this.options.verifier.verify(fresh.accessToken);
      return { at: fresh.accessToken, rt: fresh.refreshToken ?? old.rt, ate: identity.expiresAt ?? Math.floor(now / 1000), sx: old.sx };
    })();
    this.refreshes.set(key, { result, at: now });
    result.catch(() => this.refreshes.delete(key));
    return result;
  }
}
