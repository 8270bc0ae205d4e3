// Browser login: the authorization-code flow with PKCE, state and nonce (openid-client), ending in the
// encrypted session cookie of browser-session.ts. `/login` → the issuer → `/callback` → `return_to`;
// `/logout` clears the cookie and revokes the refresh token. `return_to` may only name the portal or the
// configured hosts, so the portal is never an open redirect.
import * as oidc from 'openid-client';
import type express from 'express';
import { AuthenticationError, type TokenVerifier } from '../../auth/token-verifier.ts';
import type { Config } from '../config.ts';
import type { Logger } from '../log.ts';
import { openCookie, parseCookies, sealCookie, serializeCookie, type BrowserSessions, type Refresher } from './browser-session.ts';
import { exactRouter } from '../routing.ts';

const LOGIN_COOKIE = 'vdi_login';
const LOGIN_SECONDS = 600;
const DISCOVERY_TIMEOUT_MS = 5000;

/**
 * `host` matches `pattern`: equal (case-insensitive), or `*.suffix` with exactly one label in front. A
 * pattern without a port matches the name on any port.
 */
export function hostAllowed(host: string, patterns: string[]): boolean {
  const withPort = host.toLowerCase();
  const withoutPort = withPort.replace(/:\d+$/, '');
  return patterns.some((p) => {
    const pattern = p.toLowerCase();
    const h = /:\d+$/.test(pattern) ? withPort : withoutPort;
    if (!pattern.startsWith('*.')) return h === pattern;
    const suffix = pattern.slice(1);
    const label = h.slice(0, -suffix.length);
    return h.endsWith(suffix) && label.length > 0 && !label.includes('.');
  });
}

/**
 * Where to send the browser after login: `value` when it is a path on the portal or an http(s) URL on an
 * allowed host, else `/`. Scheme-relative (`//evil`), backslash (`/\evil`) and userinfo tricks all resolve to
 * a foreign host and are refused by the host check.
 */
export function safeReturnTo(value: unknown, publicUrl: string, allowedHosts: string[]): string {
  if (typeof value !== 'string' || value === '' || value.length > 2048) return '/';
  let url: URL;
  try {
    url = new URL(value, `${publicUrl}/`);
  } catch {
    return '/';
  }
  const portal = new URL(publicUrl);
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && portal.protocol === 'http:')) return '/';
  if (url.username || url.password) return '/';
  if (!hostAllowed(url.host, allowedHosts)) return '/';
  return url.origin === portal.origin ? `${url.pathname}${url.search}${url.hash}` : url.href;
}

/** The issuer as a client (discovery on first use, retried after a failure). */
export class OidcClient {
  private configuration: Promise<oidc.Configuration> | undefined;
  private readonly config: Config;

  constructor(config: Config) {
    this.config = config;
  }

  get(): Promise<oidc.Configuration> {
    if (!this.configuration) {
      const { issuerUrl, clientId, clientSecret, allowInsecureIssuer } = this.config.oidc;
      if (!issuerUrl) return Promise.reject(new Error('OIDC_ISSUER_URL is not set'));
      const auth = clientSecret ? oidc.ClientSecretBasic(clientSecret) : oidc.None();
      this.configuration = oidc.discovery(new URL(issuerUrl), clientId, undefined, auth, {
        execute: allowInsecureIssuer ? [oidc.allowInsecureRequests] : [],
        timeout: DISCOVERY_TIMEOUT_MS / 1000,
      });
      this.configuration.catch(() => (this.configuration = undefined));
    }
    return this.configuration;
  }

  refresher(): Refresher {
    return async (refreshToken) => {
      const resource = this.config.access.resource;
      const tokens = await oidc.refreshTokenGrant(await this.get(), refreshToken, resource ? { resource } : undefined);
      return { accessToken: tokens.access_token, refreshToken: tokens.refresh_token };
    };
  }
}

interface LoginTransaction {
  state: string;
  nonce: string;
  verifier: string;
  returnTo: string;
}

export function loginRouter(opts: {
  config: Config;
  sessions: BrowserSessions;
  client: OidcClient;
  verifier: TokenVerifier;
  log: Logger;
}): express.Router {
  const { config, sessions, client, verifier, log } = opts;
  const { publicUrl, allowedReturnHosts, scopes, resource, prompt } = config.access;
  const redirectUri = `${publicUrl}/callback`;
  const router = exactRouter();
  const returnTarget = (value: unknown) => safeReturnTo(value, publicUrl, allowedReturnHosts);
  const loginCookie = (value: string, maxAge: number) => serializeCookie(LOGIN_COOKIE, value, { ...sessions.attributes(maxAge), domain: undefined });
  const failed = (res: express.Response, status: number, message: string) => {
    res.status(status).set('Cache-Control', 'no-store').type('text/plain').send(`${message}\n`);
  };

  router.get('/login', async (req, res) => {
    res.set('Cache-Control', 'no-store');
    if (!sessions.enabled) return failed(res, 503, 'Browser login is not configured.');
    const returnTo = returnTarget(req.query.return_to);
    // Still signed in, or renewable from the refresh token: no trip to the issuer.
    const current = await sessions.authenticate(req.headers.cookie);
    if (current) {
      if (current.setCookie) res.append('Set-Cookie', current.setCookie);
      return res.redirect(303, returnTo);
    }
    let configuration: oidc.Configuration;
    try {
      configuration = await client.get();
    } catch (err) {
      log.error({ error: err instanceof Error ? err.message : String(err) }, 'OIDC discovery failed');
      return failed(res, 503, 'The identity provider is unreachable; try again shortly.');
    }
    const tx: LoginTransaction = { state: oidc.randomState(), nonce: oidc.randomNonce(), verifier: oidc.randomPKCECodeVerifier(), returnTo };
    const expires = Math.floor(Date.now() / 1000) + LOGIN_SECONDS;
    res.append('Set-Cookie', loginCookie(await sealCookie('login', { ...tx }, config.access.cookieKeys, expires), LOGIN_SECONDS));
    const url = oidc.buildAuthorizationUrl(configuration, {
      redirect_uri: redirectUri,
      scope: scopes,
      state: tx.state,
      nonce: tx.nonce,
      code_challenge: await oidc.calculatePKCECodeChallenge(tx.verifier),
      code_challenge_method: 'S256',
      ...(resource && { resource }),
      ...(prompt && { prompt }),
    });
    res.redirect(303, url.href);
  });

  router.get('/callback', async (req, res) => {
    res.set('Cache-Control', 'no-store');
    if (!sessions.enabled) return failed(res, 503, 'Browser login is not configured.');
    const raw = parseCookies(req.headers.cookie).get(LOGIN_COOKIE);
    const tx = raw ? await openCookie<LoginTransaction>('login', raw, config.access.cookieKeys) : undefined;
    // The transaction is single-use whatever happens next.
    res.append('Set-Cookie', loginCookie('', 0));
    if (!tx) return failed(res, 400, 'The login expired or was not started here. Please sign in again.');
    const query = req.originalUrl.includes('?') ? req.originalUrl.slice(req.originalUrl.indexOf('?')) : '';
    try {
      const tokens = await oidc.authorizationCodeGrant(
        await client.get(),
        new URL(`${redirectUri}${query}`),
        { pkceCodeVerifier: tx.verifier, expectedState: tx.state, expectedNonce: tx.nonce, idTokenExpected: true },
        resource ? { resource } : undefined,
      );
      const identity = await verifier.verify(tokens.access_token);
      res.append('Set-Cookie', await sessions.cookieFor(sessions.startSession(identity, tokens.access_token, tokens.refresh_token)));
      log.info({ user: identity.username }, 'browser login');
      res.redirect(303, tx.returnTo);
    } catch (err) {
      const reason =
        err instanceof AuthenticationError ? err.reason : err instanceof Error ? `${err.name}: ${(err as { code?: string }).code ?? ''}` : 'unknown';
      log.info({ reason }, 'refused a login callback');
      failed(res, 400, 'Login failed. Please sign in again.');
    }
  });

  const logout = async (req: express.Request, res: express.Response) => {
    res.set('Cache-Control', 'no-store');
    const value = sessions.cookieValue(req.headers.cookie);
    const tokens = value ? await sessions.open(value) : undefined;
    res.append('Set-Cookie', sessions.clearCookie());
    if (tokens?.rt) {
      // Best effort: the cookie is gone either way.
      await client
        .get()
        .then((c) => oidc.tokenRevocation(c, tokens.rt!, { token_type_hint: 'refresh_token' }))
        .catch((err: unknown) => log.info({ error: err instanceof Error ? err.message : String(err) }, 'refresh token revocation failed'));
    }
    res.redirect(303, returnTarget(req.query.return_to));
  };
  router.get('/logout', logout);
  router.post('/logout', logout);
  return router;
}
