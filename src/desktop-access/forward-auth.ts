// Traefik's forwardAuth for the desktops: every request to a session's host is first sent here (as a GET with
// the original headers plus X-Forwarded-Host/Proto/Uri/Method). The owner, or someone who may `get` the
// session (an admin), gets 200 with the desktop's Basic credentials, which Traefik copies into the upstream
// request (authResponseHeaders), so the per-session password never reaches a browser. Everyone else gets the
// answer Traefik hands back to the client: a redirect to the portal's login for a browser without a session,
// 401 for other anonymous requests, 403 for the wrong user, 503 while the desktop is not Running.
// It sits on the path of every request a desktop page makes, so it reads only the informer caches; the one
// apiserver call (a SubjectAccessReview, for non-owners) is cached by the authorizer.
import type { IncomingHttpHeaders } from 'node:http';
import type express from 'express';
import type { Authorizer } from '../../auth/authorizer.ts';
import type { Identity } from '../../auth/identity.ts';
import type { TokenVerifier } from '../../auth/token-verifier.ts';
import type { Caches } from '../../operator/caches.ts';
import { SECRET_KEY_PASSWORD } from '../../operator/builders.ts';
import type { ReconcilerConfig } from '../../operator/config.ts';
import { objectKey } from '../../operator/informer.ts';
import { childName, sessionHost } from '../../operator/naming.ts';
import { GROUP, SESSION_PLURAL, type VDISession } from '../../operator/v1alpha1.ts';
import type { Logger } from '../log.ts';
import type { BrowserSessions } from '../login/browser-session.ts';
import { exactRouter } from '../routing.ts';

export interface Decision {
  status: number;
  headers: Record<string, string>;
  body: string;
  /** For logs and metrics: why. */
  outcome: 'allowed' | 'login' | 'unauthenticated' | 'forbidden' | 'not-found' | 'not-running';
}

export interface ForwardAuthOptions {
  caches: Pick<Caches, 'sessions' | 'secrets'>;
  reconcilerConfig: ReconcilerConfig;
  sessions: BrowserSessions;
  verifier: TokenVerifier;
  authorizer: Authorizer;
  publicUrl: string;
  log: Logger;
}

const RETRY_AFTER_SECONDS = 5;

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** The host without a port, lower-case; the first value when a proxy chain appended several. */
function hostOnly(value: string | undefined): string {
  const first = (value ?? '').split(',')[0]!.trim().toLowerCase();
  return first.startsWith('[') ? first.slice(0, first.indexOf(']') + 1) : first.replace(/:\d+$/, '');
}

function originHost(origin: string): string | undefined {
  try {
    return hostOnly(new URL(origin).host);
  } catch {
    return undefined;
  }
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export class ForwardAuth {
  private readonly o: ForwardAuthOptions;
  /** host → session key, kept up to date from the sessions informer. */
  private readonly byHost = new Map<string, string>();
  private readonly stopListening: () => void;

  constructor(options: ForwardAuthOptions) {
    this.o = options;
    const index = (session: VDISession) => this.byHost.set(sessionHost(session, this.o.reconcilerConfig).toLowerCase(), objectKey(session));
    this.stopListening = this.o.caches.sessions.on((type, session) => {
      if (type === 'DELETED') this.byHost.delete(sessionHost(session, this.o.reconcilerConfig).toLowerCase());
      else index(session);
    });
    for (const session of this.o.caches.sessions.list()) index(session);
  }

  stop(): void {
    this.stopListening();
  }

  sessionForHost(host: string): VDISession | undefined {
    const key = this.byHost.get(hostOnly(host));
    return key ? this.o.caches.sessions.get(key) : undefined;
  }

  async decide(headers: IncomingHttpHeaders): Promise<Decision> {
    const forwardedHost = header(headers, 'x-forwarded-host') ?? '';
    const identity = await this.identify(headers);
    if (!identity) return this.anonymous(headers, forwardedHost);

    // A desktop's own pages talk only to their own host. A request from another origin (another desktop's
    // page, same-site with this one, so the cookie rides along) must not drive this desktop as the visitor.
    const origin = header(headers, 'origin');
    if (origin !== undefined && originHost(origin) !== hostOnly(forwardedHost)) {
      return this.answer(403, 'forbidden', headers, 'Cross-origin requests to a desktop are not allowed.');
    }
    const session = this.sessionForHost(forwardedHost);
    if (!session) return this.answer(404, 'not-found', headers, 'There is no desktop at this address.');
    const { namespace, name } = session.metadata;
    const owner = identity.name === session.spec.user;
    if (!owner) {
      const allowed = await this.o.authorizer
        .can(identity, { verb: 'get', group: GROUP, resource: SESSION_PLURAL, namespace, name })
        .catch(() => false);
      if (!allowed) {
        this.o.log.info({ session: `${namespace}/${name}`, user: identity.username }, 'forwardAuth refused another user');
        return this.answer(403, 'forbidden', headers, 'This desktop belongs to someone else.');
      }
    }
    const phase = session.status?.phase ?? 'Pending';
    if (phase !== 'Running') {
      return this.answer(
        503,
        'not-running',
        headers,
        `This desktop is ${phase}, not running yet.`,
        {
          'Retry-After': String(RETRY_AFTER_SECONDS),
        },
        phase,
      );
    }
    const secret = this.o.caches.secrets.get(`${namespace}/${childName(session)}`);
    const password = secret?.data?.[SECRET_KEY_PASSWORD];
    if (!password) {
      return this.answer(503, 'not-running', headers, 'This desktop is still starting.', { 'Retry-After': String(RETRY_AFTER_SECONDS) }, phase);
    }
    const basic = Buffer.from(`${session.spec.user}:${Buffer.from(password, 'base64').toString('utf8')}`).toString('base64');
    return { status: 200, outcome: 'allowed', headers: { Authorization: `Basic ${basic}`, 'Cache-Control': 'no-store' }, body: '' };
  }

  /** A bearer token wins over the cookie; an expired cookie counts as no identity (login renews it). */
  private async identify(headers: IncomingHttpHeaders): Promise<Identity | undefined> {
    const token = /^Bearer\s+(\S+)$/i.exec(header(headers, 'authorization') ?? '')?.[1];
    if (token) return await this.o.verifier.verify(token).catch(() => undefined);
    const found = await this.o.sessions.identify(header(headers, 'cookie'));
    return found && 'identity' in found ? found.identity : undefined;
  }

  private anonymous(headers: IncomingHttpHeaders, forwardedHost: string): Decision {
    if (!isNavigation(headers)) {
      return this.answer(401, 'unauthenticated', headers, 'Sign in first.', { 'WWW-Authenticate': 'Bearer realm="vdi"' });
    }
    const proto = (header(headers, 'x-forwarded-proto') ?? 'https').split(',')[0]!.trim();
    const uri = header(headers, 'x-forwarded-uri') ?? '/';
    const original = `${proto === 'http' ? 'http' : 'https'}://${forwardedHost.split(',')[0]!.trim()}${uri.startsWith('/') ? uri : '/'}`;
    const location = `${this.o.publicUrl}/login?return_to=${encodeURIComponent(original)}`;
    return { status: 302, outcome: 'login', headers: { Location: location, 'Cache-Control': 'no-store' }, body: '' };
  }

  private answer(
    status: number,
    outcome: Decision['outcome'],
    headers: IncomingHttpHeaders,
    message: string,
    extra: Record<string, string> = {},
    phase?: string,
  ): Decision {
    const base = { 'Cache-Control': 'no-store', ...extra };
    if (isNavigation(headers)) {
      const refresh = extra['Retry-After'] ? `<meta http-equiv="refresh" content="${extra['Retry-After']}">` : '';
      const body = `<!doctype html><html><head><meta charset="utf-8"><title>Desktop</title>${refresh}</head><body><p>${escapeHtml(message)}</p></body></html>\n`;
      return { status, outcome, headers: { ...base, 'Content-Type': 'text/html; charset=utf-8' }, body };
    }
    const body = JSON.stringify({ error: outcome, message, ...(phase && { phase }) });
    return { status, outcome, headers: { ...base, 'Content-Type': 'application/json' }, body };
  }
}

/** A browser loading a page (rather than a script's subrequest): worth a redirect to the login page. */
export function isNavigation(headers: IncomingHttpHeaders): boolean {
  const method = (header(headers, 'x-forwarded-method') ?? 'GET').toUpperCase();
  if (method !== 'GET' && method !== 'HEAD') return false;
  const mode = header(headers, 'sec-fetch-mode');
  if (mode) return mode === 'navigate';
  return (header(headers, 'accept') ?? '').includes('text/html');
}

export function forwardAuthRouter(forwardAuth: ForwardAuth, log: Logger): express.Router {
  const router = exactRouter();
  router.get('/auth/forward', async (req, res) => {
    try {
      const decision = await forwardAuth.decide(req.headers);
      res.status(decision.status).set(decision.headers).send(decision.body);
    } catch (err) {
      log.error({ error: err instanceof Error ? err.message : String(err) }, 'forwardAuth failed');
      res.status(500).set('Cache-Control', 'no-store').json({ error: 'internal error' });
    }
  });
  return router;
}
