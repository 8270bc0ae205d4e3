// A real OpenID Provider (oidc-provider) in-process, for tests and the local dev mode. Tokens come from its
// token endpoint over HTTP and are signed with its own RS256 keys, so the verifier is tested against the
// same wire format a production issuer produces. devInteractions accepts any login: never use in production.
import { randomBytes, randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { calculateJwkThumbprint, exportJWK, generateKeyPair } from 'jose';
import type { JWK } from 'jose';

export interface TestUser {
  email: string;
  groups?: string[];
}

export interface OidcIssuerOptions {
  /** 0 (the default) picks a free port on 127.0.0.1. */
  port?: number;
  /** The API's audience: the `resource` every access token is issued for. */
  audience: string;
  /** Accounts for the authorization-code flow, keyed by email (devInteractions' login name). */
  users?: Record<string, { groups?: string[] }>;
  /** Redirect URIs of the `vdi-portal` web client. */
  redirectUris?: string[];
  portalClientSecret?: string;
  /** Extra client metadata, passed to oidc-provider as is. */
  clients?: Record<string, unknown>[];
  /** Default access-token lifetime. */
  accessTokenTTLSeconds?: number;
}

export interface OidcIssuer {
  issuer: string;
  jwksUri: string;
  portalClient: { clientId: string; clientSecret: string };
  /** An RS256 JWT access token for `audience` carrying the user's `email` and `groups`. */
  tokenFor(user: TestUser, opts?: { expiresInSeconds?: number; claims?: Record<string, unknown> }): Promise<string>;
  /** Publishes a new signing key (the old one stays in the JWKS) and signs with it from now on. */
  rotateKeys(): Promise<void>;
  close(): Promise<void>;
  /** The current oidc-provider instance (replaced by rotateKeys). */
  readonly provider: OidcProvider;
}

// oidc-provider ships no type declarations (@types/oidc-provider is not installed); this is the part we use.
interface OidcProvider {
  issuer: string;
  callback(): (req: IncomingMessage, res: ServerResponse) => void;
}
interface OidcProviderModule {
  default: new (issuer: string, configuration: Record<string, unknown>) => OidcProvider;
  errors: { InvalidTarget: new (description?: string) => Error };
}
interface KoaContext {
  get(header: string): string;
}
interface IssuedToken {
  accountId?: string;
}

// Carries the one-time id of a tokenFor request to the provider's hooks: a client-credentials token has no end
// user, so the user's claims are handed over out of band and looked up while the provider formats the token.
const TOKEN_REQUEST_HEADER = 'x-test-token-request';
const TEST_CLIENT_ID = 'vdi-test-token-client';
const PORTAL_CLIENT_ID = 'vdi-portal';

export async function startOidcIssuer(options: OidcIssuerOptions): Promise<OidcIssuer> {
  // A non-literal specifier keeps tsc from demanding declarations for the untyped package.
  const moduleName: string = 'oidc-provider';
  const { default: Provider, errors } = (await import(moduleName)) as OidcProviderModule;

  const { audience, users = {} } = options;
  const defaultTTL = options.accessTokenTTLSeconds ?? 300;
  const testClientSecret = randomBytes(24).toString('hex');
  const portalClientSecret = options.portalClientSecret ?? 'vdi-portal-secret';
  const cookieKey = randomBytes(32).toString('hex');
  const pending = new Map<string, { claims: Record<string, unknown>; ttl: number }>();
  const store = new Map<string, StoredEntry>();
  const keys: JWK[] = [await newSigningKey()];

  const server = createServer((req, res) => handler(req, res));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const pendingFor = (ctx: KoaContext) => pending.get(ctx.get(TOKEN_REQUEST_HEADER));

  const configuration = () => ({
    adapter: (model: string) => new InMemoryAdapter(model, store),
    jwks: { keys: [...keys] },
    cookies: { keys: [cookieKey] },
    clients: [
      {
        client_id: PORTAL_CLIENT_ID,
        client_secret: portalClientSecret,
        redirect_uris: options.redirectUris ?? ['http://127.0.0.1/callback'],
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
      },
      {
        client_id: TEST_CLIENT_ID,
        client_secret: testClientSecret,
        grant_types: ['client_credentials'],
        redirect_uris: [],
        response_types: [],
      },
      ...(options.clients ?? []),
    ],
    scopes: ['openid', 'email', 'groups', 'offline_access'],
    claims: { openid: ['sub'], email: ['email', 'email_verified'], groups: ['groups'] },
    // Our own values instead of the defaults' functions, which print a notice on first use. Access tokens
    // must still honour the resource server's accessTokenTTL, which the defaults do and a plain number would not.
    ttl: {
      AccessToken: accessTokenTTL,
      ClientCredentials: accessTokenTTL,
      AuthorizationCode: 60,
      IdToken: 3600,
      RefreshToken: 86_400,
      Interaction: 3600,
      Session: 86_400,
      Grant: 86_400,
    },
    pkce: { required: () => true },
    clientBasedCORS: () => false,
    findAccount: (_ctx: unknown, sub: string) => ({
      accountId: sub,
      claims: () => ({ sub, ...accountClaims(sub) }),
    }),
    features: {
      devInteractions: { enabled: true },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => audience,
        useGrantedResource: () => true,
        getResourceServerInfo: (ctx: KoaContext, resourceIndicator: string) => {
          if (resourceIndicator !== audience) throw new errors.InvalidTarget();
          return {
            scope: 'openid',
            audience,
            accessTokenFormat: 'jwt',
            accessTokenTTL: pendingFor(ctx)?.ttl ?? defaultTTL,
          };
        },
      },
    },
    extraTokenClaims: (ctx: KoaContext, token: IssuedToken) => (token.accountId ? accountClaims(token.accountId) : pendingFor(ctx)?.claims),
  });

  function accessTokenTTL(_ctx: unknown, token: { resourceServer?: { accessTokenTTL?: number } }) {
    return token.resourceServer?.accessTokenTTL ?? defaultTTL;
  }

  function accountClaims(email: string) {
    return { email, email_verified: true, groups: users[email]?.groups ?? [] };
  }

  const newProvider = () => {
    // devInteractions is on on purpose and warns on every construction; drop just that line.
    const warn = console.warn;
    console.warn = (...args: unknown[]) => {
      if (!String(args[0]).includes('devInteractions')) warn(...args);
    };
    try {
      return new Provider(issuer, configuration());
    } finally {
      console.warn = warn;
    }
  };
  let provider = newProvider();
  let handler = provider.callback();

  return {
    issuer,
    jwksUri: `${issuer}/jwks`,
    portalClient: { clientId: PORTAL_CLIENT_ID, clientSecret: portalClientSecret },
    get provider() {
      return provider;
    },
    async tokenFor(user, opts = {}) {
      const requestId = randomUUID();
      const claims = { email: user.email, email_verified: true, groups: user.groups ?? [], ...opts.claims };
      pending.set(requestId, { claims, ttl: opts.expiresInSeconds ?? defaultTTL });
      try {
        const response = await fetch(`${issuer}/token`, {
          method: 'POST',
          headers: {
            authorization: `Basic ${Buffer.from(`${TEST_CLIENT_ID}:${testClientSecret}`).toString('base64')}`,
            'content-type': 'application/x-www-form-urlencoded',
            [TOKEN_REQUEST_HEADER]: requestId,
          },
          body: new URLSearchParams({ grant_type: 'client_credentials', resource: audience, scope: 'openid' }),
        });
        const body = (await response.json()) as { access_token?: string; error?: string; error_description?: string };
        if (!response.ok || !body.access_token) {
          throw new Error(`token request failed: ${response.status} ${body.error} ${body.error_description}`);
        }
        return body.access_token;
      } finally {
        pending.delete(requestId);
      }
    },
    async rotateKeys() {
      // oidc-provider fixes its keys at construction, so rotation is a new instance on the same issuer and
      // store; it signs with the first key, and still publishes the old one.
      keys.unshift(await newSigningKey());
      provider = newProvider();
      handler = provider.callback();
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve())));
    },
  };
}

async function newSigningKey(): Promise<JWK> {
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  const jwk = await exportJWK(privateKey);
  return { ...jwk, kid: await calculateJwkThumbprint(jwk), alg: 'RS256', use: 'sig' };
}

interface StoredEntry {
  payload: Record<string, unknown>;
  expiresAt?: number;
}

// oidc-provider's own memory adapter warns on every start; this one is as small as the tests need.
class InMemoryAdapter {
  readonly model: string;
  readonly store: Map<string, StoredEntry>;

  constructor(model: string, store: Map<string, StoredEntry>) {
    this.model = model;
    this.store = store;
  }

  async upsert(id: string, payload: Record<string, unknown>, expiresIn?: number) {
    const expiresAt = expiresIn ? Date.now() + expiresIn * 1000 : undefined;
    this.store.set(this.key(id), { payload, expiresAt });
  }

  async find(id: string) {
    return this.live(this.key(id))?.payload;
  }

  async findByUid(uid: string) {
    return this.findWhere((payload) => payload.uid === uid);
  }

  async findByUserCode(userCode: string) {
    return this.findWhere((payload) => payload.userCode === userCode);
  }

  async consume(id: string) {
    const entry = this.live(this.key(id));
    if (entry) entry.payload.consumed = Math.floor(Date.now() / 1000);
  }

  async destroy(id: string) {
    this.store.delete(this.key(id));
  }

  async revokeByGrantId(grantId: string) {
    for (const [key, entry] of this.store) if (entry.payload.grantId === grantId) this.store.delete(key);
  }

  private key(id: string) {
    return `${this.model}:${id}`;
  }

  private live(key: string) {
    const entry = this.store.get(key);
    if (entry?.expiresAt !== undefined && entry.expiresAt <= Date.now()) {
      this.store.delete(key);
      return undefined;
    }
    return entry;
  }

  private findWhere(test: (payload: Record<string, unknown>) => boolean) {
    const prefix = `${this.model}:`;
    for (const key of this.store.keys()) {
      if (key.startsWith(prefix)) {
        const entry = this.live(key);
        if (entry && test(entry.payload)) return entry.payload;
      }
    }
    return undefined;
  }
}
