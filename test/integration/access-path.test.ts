// The desktop access path on the real control plane: browser login against the in-process OIDC provider
// (a scripted browser following every redirect), Traefik's forwardAuth decisions for a session the reconciler
// runs, and TURN credentials minted by our endpoint and tried against a real coturn.
import { createHmac, randomBytes } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { userNamespace } from '../../auth/namespace.ts';
import { childName, sessionHost } from '../../operator/naming.ts';
import type { VDISession } from '../../operator/v1alpha1.ts';
import { sealCookie } from '../../src/login/browser-session.ts';
import { turnCredential } from '../../src/desktop-access/turn.ts';
import { loadConfig, reconcilerConfigFrom } from '../../src/config.ts';

import { AUDIENCE, startApiStack, type ApiStack } from '../support/api.ts';
import { ScriptedBrowser } from '../support/browser.ts';
import { createTemplate } from '../support/reconciler.ts';
import { adminClient, eventually } from '../support/cluster.ts';
import { freePort, startCoturn, type Coturn } from '../support/coturn.ts';
import { startOidcIssuer, type OidcIssuer, type TestUser } from '../../dev/oidc-issuer.ts';

const suffix = randomBytes(3).toString('hex');
const alice: TestUser = { email: `alice-${suffix}@example.com`, groups: ['vdi-users'] };
const bob: TestUser = { email: `bob-${suffix}@example.com`, groups: ['vdi-users'] };
const admin: TestUser = { email: `admin-${suffix}@example.com`, groups: ['vdi-admins'] };
const TEMPLATE = `access-desktop-${suffix}`;
// The current TURN secret signs; the previous one is still listed in coturn during a rotation.
const TURN_SECRETS = [randomBytes(24).toString('base64url'), randomBytes(24).toString('base64url')];
// Short-lived access tokens from the login flow, so that a renewal from the refresh token can be seen.
const LOGIN_TOKEN_SECONDS = 15;
const COOKIE_KEY = randomBytes(32).toString('hex');
// The same desktop hosts as the service under test (startApiStack's VDI_DOMAIN).
const hostsConfig = reconcilerConfigFrom(loadConfig({ VDI_DOMAIN: 'vdi.test', VDI_URL_SCHEME: 'http' }, []));

let issuer: OidcIssuer;
let coturn: Coturn;
let api: ApiStack;
let publicUrl: string;
let tokens: Record<'alice' | 'bob' | 'admin', string>;
const client = adminClient();

beforeAll(async () => {
  await createTemplate(
    client,
    {
      image: 'ghcr.io/selkies-project/nvidia-egl-desktop:24.04-20241222100454',
      displayName: 'Access path test desktop',
      resources: { defaultGPU: 0, maxGPU: 1, defaultMemory: '2Gi', maxMemory: '1Ti', defaultCPU: '1', maxCPU: '4' },
      defaultTimeout: '1h',
      maxTimeout: '4h',
      persistence: { defaultEnabled: false },
    },
    TEMPLATE,
  );
  const port = await freePort();
  publicUrl = `http://127.0.0.1:${port}`;
  issuer = await startOidcIssuer({
    audience: AUDIENCE,
    redirectUris: [`${publicUrl}/callback`],
    users: Object.fromEntries([alice, bob, admin].map((u) => [u.email, { groups: u.groups }])),
    accessTokenTTLSeconds: LOGIN_TOKEN_SECONDS,
  });
  coturn = await startCoturn({ sharedSecrets: TURN_SECRETS });
  api = await startApiStack(
    {
      PORT: String(port),
      VDI_PUBLIC_URL: publicUrl,
      VDI_INTERNAL_URL: publicUrl,
      OIDC_CLIENT_SECRET: issuer.portalClient.clientSecret,
      VDI_COOKIE_KEYS: COOKIE_KEY,
      VDI_COOKIE_SECURE: 'false',
      VDI_LOGIN_RESOURCE: AUDIENCE,
      VDI_LOGIN_PROMPT: 'consent',
      VDI_TURN_SHARED_SECRETS: TURN_SECRETS.join(','),
      VDI_TURN_HOST: '127.0.0.1',
      VDI_TURN_PORT: String(coturn.port),
      VDI_TURN_CREDENTIAL_SECONDS: '600',
    },
    { issuer },
  );
  const bearer = (u: TestUser) => issuer.tokenFor(u, { expiresInSeconds: 600 });
  tokens = { alice: await bearer(alice), bob: await bearer(bob), admin: await bearer(admin) };
});

afterAll(async () => {
  await api?.stop();
  await coturn?.stop();
  await issuer?.close();
});

/** Signs `user` in through /login and the issuer's devInteractions; returns the browser and the callback URL it was sent to. */
async function issuerRedirect(user: TestUser, returnTo = '/'): Promise<{ browser: ScriptedBrowser; callback: string }> {
  const browser = new ScriptedBrowser();
  const callback = await browser.completeDevInteractions(
    `${publicUrl}/login?return_to=${encodeURIComponent(returnTo)}`,
    user.email,
    `${publicUrl}/callback`,
  );
  return { browser, callback };
}

async function login(user: TestUser, returnTo = '/'): Promise<{ browser: ScriptedBrowser; location: string | undefined; setCookies: string[] }> {
  const { browser, callback } = await issuerRedirect(user, returnTo);
  const { response, hop } = await browser.request(callback);
  expect(response.status).toBe(303);
  return { browser, location: response.headers.get('location') ?? undefined, setCookies: hop.setCookies };
}

const gqlWithCookie = async (browser: ScriptedBrowser, query: string, headers: Record<string, string> = {}) => {
  const res = await fetch(`${publicUrl}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', cookie: browser.cookieHeader(`${publicUrl}/graphql`) ?? '', ...headers },
    body: JSON.stringify({ query }),
  });
  return {
    status: res.status,
    setCookies: res.headers.getSetCookie(),
    body: (await res.json().catch(() => ({}))) as { data?: { me?: { name: string } }; errors?: { extensions?: { code?: string } }[] },
  };
};

describe('browser login', () => {
  it('runs the code flow with PKCE and sets an HttpOnly, SameSite=Lax session cookie, then returns to return_to', async () => {
    const { browser, callback } = await issuerRedirect(alice, '/sessions?tab=mine');
    const authorize = new URL(callback);
    expect(authorize.searchParams.get('code')).toBeTruthy();
    const { response, hop } = await browser.request(callback);
    expect(response.status).toBe(303);
    expect(response.headers.get('location')).toBe('/sessions?tab=mine');
    const session = hop.setCookies.find((c) => c.startsWith('vdi_session='));
    expect(session).toMatch(/; HttpOnly/);
    expect(session).toMatch(/; SameSite=Lax/);
    expect(session).not.toMatch(/Secure/); // configured off for plain-http tests
    // Encrypted: neither the access token nor the user's name is readable in it.
    expect(session).not.toContain(alice.email);
    expect(session!.split(';')[0]!.split('.')).toHaveLength(5);

    const me = await gqlWithCookie(browser, '{ me { name } }', { origin: publicUrl });
    expect(me.body.data?.me?.name).toBe(alice.email);
  });

  it('sends the PKCE challenge, state and nonce to the issuer', async () => {
    const browser = new ScriptedBrowser();
    const { hop } = await browser.request(`${publicUrl}/login`);
    const authorize = new URL(hop.location!);
    expect(authorize.origin).toBe(issuer.issuer);
    expect(authorize.searchParams.get('code_challenge_method')).toBe('S256');
    for (const p of ['code_challenge', 'state', 'nonce']) expect(authorize.searchParams.get(p)?.length).toBeGreaterThanOrEqual(22);
    expect(authorize.searchParams.get('redirect_uri')).toBe(`${publicUrl}/callback`);
    expect(hop.setCookies.find((c) => c.startsWith('vdi_login='))).toMatch(/HttpOnly; SameSite=Lax/);
  });

  it('refuses a forged state', async () => {
    const { browser, callback } = await issuerRedirect(alice);
    const forged = new URL(callback);
    forged.searchParams.set('state', randomBytes(16).toString('base64url'));
    const { response, hop } = await browser.request(forged.href);
    expect(response.status).toBe(400);
    expect(hop.setCookies.some((c) => c.startsWith('vdi_session='))).toBe(false);
  });

  it('refuses a callback without the login cookie it was started with (login CSRF)', async () => {
    const { callback } = await issuerRedirect(alice);
    const victim = new ScriptedBrowser();
    const { response, hop } = await victim.request(callback);
    expect(response.status).toBe(400);
    expect(hop.setCookies.some((c) => c.startsWith('vdi_session='))).toBe(false);
  });

  it('refuses a replayed authorization code, even with the original login cookie', async () => {
    const { browser, callback } = await issuerRedirect(alice);
    const loginCookie = browser.cookie('127.0.0.1', 'vdi_login')!;
    const first = await browser.request(callback);
    expect(first.response.status).toBe(303);

    const attacker = new ScriptedBrowser();
    attacker.store(publicUrl, [`vdi_login=${loginCookie.value}; Path=/`]);
    const { response, hop } = await attacker.request(callback);
    expect(response.status).toBe(400);
    expect(hop.setCookies.some((c) => c.startsWith('vdi_session=') && !c.startsWith('vdi_session=;'))).toBe(false);
  });

  it.each([
    ['https://evil.example/steal'],
    ['//evil.example/x'],
    ['/\\evil.example'],
    [`https://${alice.email.split('@')[0]}.vdi.test@evil.example/`],
  ])('never redirects to a foreign host (return_to=%s)', async (target) => {
    const { location } = await login(alice, target);
    expect(location).toBe('/');
  });

  it('returns to a desktop host under the configured domain', async () => {
    const { location } = await login(alice, 'http://some-session-ns.vdi.test/?x=1');
    expect(location).toBe('http://some-session-ns.vdi.test/?x=1');
  });

  it('skips the issuer when already signed in, still refusing foreign targets', async () => {
    const { browser } = await login(alice);
    const again = await browser.request(`${publicUrl}/login?return_to=${encodeURIComponent('https://evil.example/')}`);
    expect(again.response.status).toBe(303);
    expect(again.hop.location).toBe(`${publicUrl}/`);
  });

  it('refuses the cookie on GraphQL from a foreign origin and on simple (CSRF-able) requests', async () => {
    const { browser } = await login(alice);
    const foreign = await gqlWithCookie(browser, '{ me { name } }', { origin: 'https://evil.example' });
    expect(foreign.status).toBe(401);
    expect(foreign.body.data?.me).toBeUndefined();
    const simple = await fetch(`${publicUrl}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain', cookie: browser.cookieHeader(`${publicUrl}/graphql`)! },
      body: JSON.stringify({ query: '{ me { name } }' }),
    });
    expect(simple.status).toBe(400);
    const get = await fetch(`${publicUrl}/graphql?query=${encodeURIComponent('{ me { name } }')}`, {
      headers: { cookie: browser.cookieHeader(`${publicUrl}/graphql`)! },
    });
    expect(get.status).toBe(400);
  });

  it('accepts the cookie on a WebSocket only from the portal origin', async () => {
    const { browser } = await login(alice);
    const cookie = browser.cookieHeader(`${publicUrl}/graphql`)!;
    const connect = (origin: string) => {
      let closed: number | undefined;
      const wsClient = createClient({
        url: `${publicUrl.replace('http', 'ws')}/graphql`,
        webSocketImpl: class extends WebSocket {
          constructor(url: string, protocols?: string | string[]) {
            super(url, protocols, { headers: { cookie, origin } });
          }
        },
        retryAttempts: 0,
        on: { closed: (e) => (closed = (e as { code: number }).code) },
      });
      const result = new Promise<unknown>((resolve, reject) => {
        wsClient.subscribe({ query: '{ me { name } }' }, { next: (v) => resolve(v.data), error: reject, complete: () => {} });
      });
      return { wsClient, result, closed: () => closed };
    };
    const portal = connect(publicUrl);
    expect(await portal.result).toEqual({ me: { name: alice.email } });
    await portal.wsClient.dispose();

    const foreign = connect('https://evil.example');
    await expect(foreign.result).rejects.toBeDefined();
    expect(foreign.closed()).toBe(4401);
    await foreign.wsClient.dispose();
  });

  it('closes a WebSocket opened with the cookie when the browser session ends, though its access token is still valid', async () => {
    const { cookieKeys, cookieName } = loadConfig({ VDI_COOKIE_KEYS: COOKIE_KEY }, []).access;
    const now = Math.floor(Date.now() / 1000);
    // A browser session in its last seconds, holding an access token good for ten more minutes.
    const at = await issuer.tokenFor(alice, { expiresInSeconds: 600 });
    const cookie = `${cookieName}=${await sealCookie('session', { at, ate: now + 600, sx: now + 3 }, cookieKeys, now + 3)}`;
    let events = 0;
    const closed = await new Promise<{ code: number; reason: string }>((resolve) => {
      const wsClient = createClient({
        url: `${publicUrl.replace('http', 'ws')}/graphql`,
        webSocketImpl: class extends WebSocket {
          constructor(url: string, protocols?: string | string[]) {
            super(url, protocols, { headers: { cookie, origin: publicUrl } });
          }
        },
        retryAttempts: 0,
        // Stays connected after its one query completes, as the dashboard's client does while it follows sessions.
        lazy: false,
        onNonLazyError: () => {}, // the close is what this test waits for, through `on.closed`
        on: { closed: (e) => resolve({ code: (e as { code: number }).code, reason: (e as { reason: string }).reason }) },
      });
      wsClient.subscribe({ query: '{ me { name } }' }, { next: () => events++, error: () => {}, complete: () => {} });
    });
    // It was open and answering as alice before the session ended.
    expect(events).toBe(1);
    expect(closed.code).toBe(4401);
  });

  it('renews an expired access token from the refresh token, keeping the user signed in', async () => {
    const { browser, setCookies } = await login(bob);
    const first = setCookies.find((c) => c.startsWith('vdi_session='))!.split(';')[0];
    // Past the access token's lifetime (less the renewal margin).
    await new Promise((r) => setTimeout(r, (LOGIN_TOKEN_SECONDS - 4) * 1000));
    const me = await gqlWithCookie(browser, '{ me { name } }', { origin: publicUrl });
    expect(me.body.data?.me?.name).toBe(bob.email);
    const renewed = me.setCookies.find((c) => c.startsWith('vdi_session='));
    expect(renewed).toMatch(/HttpOnly; SameSite=Lax/);
    expect(renewed!.split(';')[0]).not.toBe(first);
  });

  it('logs out: the cookie is cleared and no longer accepted', async () => {
    const { browser } = await login(alice);
    const out = await browser.request(`${publicUrl}/logout`, { method: 'POST' });
    expect(out.response.status).toBe(303);
    expect(out.hop.setCookies.find((c) => c.startsWith('vdi_session='))).toMatch(/Max-Age=0/);
    expect(browser.cookie('127.0.0.1', 'vdi_session')).toBeUndefined();
    expect((await gqlWithCookie(browser, '{ me { name } }', { origin: publicUrl })).status).toBe(401);
  });
});

describe('forwardAuth', () => {
  let running: VDISession;
  let starting: VDISession;
  let host: string;
  let password: string;

  const createSession = async (token: string, input: Record<string, unknown>) => {
    const res = await api.gql<{ createVDISession: { name: string; namespace: string } }>(
      token,
      'mutation($input: CreateVDISessionInput!) { createVDISession(input: $input) { name namespace } }',
      { input: { template: TEMPLATE, ...input } },
    );
    expect(res.errors).toBeUndefined();
    return res.data!.createVDISession;
  };

  beforeAll(async () => {
    const a = await createSession(tokens.alice, { name: `fa-${suffix}`, resources: { gpu: 0 } });
    // No node has this much memory: the pod stays Pending, and so does the session.
    const b = await createSession(tokens.alice, { name: `fa-wait-${suffix}`, resources: { gpu: 0, memory: '900Gi' } });
    running = await eventually(async () => {
      const s = api.service.caches.sessions.get(`${a.namespace}/${a.name}`);
      return s?.status?.phase === 'Running' && api.service.caches.secrets.get(`${a.namespace}/${childName(s)}`) ? s : undefined;
    }, 60_000);
    starting = await eventually(async () => api.service.caches.sessions.get(`${b.namespace}/${b.name}`));
    host = sessionHost(running, hostsConfig);
    const secret = await client.get<{ data: Record<string, string> }>(`/api/v1/namespaces/${a.namespace}/secrets/${childName(running)}`);
    password = Buffer.from(secret.data.password!, 'base64').toString('utf8');
  });

  // node:http rather than fetch: fetch forces `sec-fetch-mode: cors`, and Traefik passes a browser's headers as they are.
  const ask = (headers: Record<string, string>, forHost = host) =>
    new Promise<{ status: number; headers: { get(name: string): string | null }; text(): Promise<string>; json(): Promise<unknown> }>(
      (resolve, reject) => {
        const req = httpRequest(`${publicUrl}/auth/forward`, {
          headers: {
            'x-forwarded-host': forHost,
            'x-forwarded-proto': 'http',
            'x-forwarded-uri': '/index.html?x=1',
            'x-forwarded-method': 'GET',
            ...headers,
          },
        });
        req.on('error', reject);
        req.on('response', (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => (body += chunk));
          res.on('end', () =>
            resolve({
              status: res.statusCode!,
              headers: { get: (name) => (res.headers[name.toLowerCase()] as string | undefined) ?? null },
              text: async () => body,
              json: async () => JSON.parse(body) as unknown,
            }),
          );
        });
        req.end();
      },
    );
  const basicFor = (user: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

  it('gives the owner 200 with the Basic header of the desktop (spec.user and the Secret password)', async () => {
    const res = await ask({ authorization: `Bearer ${tokens.alice}` });
    expect(res.status).toBe(200);
    expect(res.headers.get('authorization')).toBe(basicFor(alice.email));
    expect(running.spec.user).toBe(alice.email);
  });

  it('accepts the portal session cookie of the owner', async () => {
    const { browser } = await login(alice);
    const res = await ask({ cookie: browser.cookieHeader(`${publicUrl}/`)!, accept: 'text/html' });
    expect(res.status).toBe(200);
    expect(res.headers.get('authorization')).toBe(basicFor(alice.email));
  });

  it('gives an admin 200 (a SubjectAccessReview allows them to get the session)', async () => {
    const res = await ask({ authorization: `Bearer ${tokens.admin}` });
    expect(res.status).toBe(200);
    expect(res.headers.get('authorization')).toBe(basicFor(alice.email));
  });

  it('refuses another user with 403 and no credentials', async () => {
    const res = await ask({ authorization: `Bearer ${tokens.bob}`, accept: 'text/html' });
    expect(res.status).toBe(403);
    expect(res.headers.get('authorization')).toBeNull();
    expect(await res.text()).not.toContain(password);
  });

  it('sends an anonymous browser to the login page with the original URL as return_to', async () => {
    // What a browser sends on a page load (fetch would say `cors`, which is not a navigation).
    const res = await ask({ accept: 'text/html,application/xhtml+xml', 'sec-fetch-mode': 'navigate' });
    expect(res.status).toBe(302);
    const location = new URL(res.headers.get('location')!);
    expect(`${location.origin}${location.pathname}`).toBe(`${publicUrl}/login`);
    expect(location.searchParams.get('return_to')).toBe(`http://${host}/index.html?x=1`);
  });

  it('answers 401 to an anonymous non-navigation request, and to a bad token', async () => {
    expect((await ask({ accept: 'application/json' })).status).toBe(401);
    expect((await ask({ authorization: 'Bearer not-a-token', accept: 'application/json' })).status).toBe(401);
  });

  it('answers 503 with Retry-After while the session is not Running', async () => {
    expect(starting.status?.phase).not.toBe('Running');
    const res = await ask({ authorization: `Bearer ${tokens.alice}`, accept: 'application/json' }, sessionHost(starting, hostsConfig));
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('5');
    expect(res.headers.get('authorization')).toBeNull();
    expect(await res.json()).toMatchObject({ error: 'not-running' });
  });

  it('refuses a request coming from another origin (another desktop page)', async () => {
    const res = await ask({ authorization: `Bearer ${tokens.alice}`, origin: 'http://other-ns.vdi.test' });
    expect(res.status).toBe(403);
  });

  it('answers 404 for a host that is no session', async () => {
    expect((await ask({ authorization: `Bearer ${tokens.alice}` }, `nothing-${suffix}.vdi.test`)).status).toBe(404);
  });

  describe('TURN credentials', () => {
    const turnUrl = async (session: VDISession) => {
      const secret = await client.get<{ data: Record<string, string> }>(
        `/api/v1/namespaces/${session.metadata.namespace}/secrets/${childName(session)}`,
      );
      const token = Buffer.from(secret.data.turnToken!, 'base64').toString('utf8');
      return { url: `${publicUrl}/turn/${session.metadata.namespace}/${session.metadata.name}/${token}`, token };
    };
    type Rtc = { lifetimeDuration: string; iceServers: { urls: string[]; username?: string; credential?: string }[] };

    it('answers the RTC configuration Selkies parses, with credentials coturn accepts', async () => {
      const { url } = await turnUrl(running);
      const res = await fetch(url);
      expect(res.status).toBe(200);
      expect(res.headers.get('cache-control')).toBe('no-store');
      const rtc = (await res.json()) as Rtc;
      expect(rtc.lifetimeDuration).toBe('600s');
      expect(rtc.iceServers[0]).toEqual({ urls: [`stun:127.0.0.1:${coturn.port}`] });
      const turn = rtc.iceServers[1]!;
      expect(turn.urls).toEqual([`turn:127.0.0.1:${coturn.port}?transport=udp`, `turn:127.0.0.1:${coturn.port}?transport=tcp`]);
      const [expiry, user] = turn.username!.split(/:(.*)/s);
      expect(user).toBe(alice.email);
      expect(Number(expiry)).toBeGreaterThan(Date.now() / 1000 + 590);
      expect(turn.credential).toBe(createHmac('sha1', TURN_SECRETS[0]!).update(turn.username!).digest('base64'));

      const allocation = await coturn.allocate(turn.username!, turn.credential!);
      expect(allocation.output).not.toContain('Cannot complete Allocation');
      expect(allocation).toMatchObject({ allocated: true, code: 0 });
    });

    it('refuses a wrong token and an unknown session alike, with no detail', async () => {
      const { token } = await turnUrl(running);
      const { namespace, name } = running.metadata;
      const wrong = await fetch(`${publicUrl}/turn/${namespace}/${name}/${token.slice(0, -1)}${token.endsWith('A') ? 'B' : 'A'}`);
      const unknown = await fetch(`${publicUrl}/turn/${namespace}/nothing-${suffix}/${token}`);
      const otherNamespace = await fetch(`${publicUrl}/turn/${userNamespace(bob.email)}/${name}/${token}`);
      for (const res of [wrong, unknown, otherNamespace]) {
        expect(res.status).toBe(403);
        expect(await res.json()).toEqual({ error: 'forbidden' });
      }
    });

    it('lets coturn refuse expired and forged credentials, and accept the previous secret during a rotation', async () => {
      const now = Date.now() / 1000;
      const expired = turnCredential(TURN_SECRETS[0]!, alice.email, now - 3600, 60);
      const forged = turnCredential(randomBytes(24).toString('base64url'), alice.email, now, 600);
      const tampered = { ...turnCredential(TURN_SECRETS[0]!, alice.email, now, 600) };
      tampered.username = tampered.username.replace(alice.email, bob.email);
      const previous = turnCredential(TURN_SECRETS[1]!, alice.email, now, 600);
      const [e, f, t, p] = await Promise.all([expired, forged, tampered, previous].map((c) => coturn.allocate(c.username, c.credential)));
      for (const refused of [e!, f!, t!]) {
        expect(refused.allocated).toBe(false);
        expect(refused.output).toContain('Cannot complete Allocation');
      }
      expect(p).toMatchObject({ allocated: true, code: 0 });
    });
  });
});
