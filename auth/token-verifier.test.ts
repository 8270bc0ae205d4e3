import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportSPKI, importJWK, SignJWT } from 'jose';
import type { JWK } from 'jose';
import { startOidcIssuer } from '../dev/oidc-issuer.ts';
import type { OidcIssuer } from '../dev/oidc-issuer.ts';
import { AuthenticationError, createTokenVerifier } from './token-verifier.ts';
import type { TokenVerifierOptions } from './token-verifier.ts';

const audience = 'https://vdi.test';
let issuer: OidcIssuer;
let otherIssuer: OidcIssuer;

beforeAll(async () => {
  [issuer, otherIssuer] = await Promise.all([startOidcIssuer({ audience }), startOidcIssuer({ audience })]);
});
afterAll(async () => {
  await Promise.all([issuer?.close(), otherIssuer?.close()]);
});

const verifierFor = (options: Partial<TokenVerifierOptions> = {}) =>
  createTokenVerifier({ issuer: issuer.issuer, audience, allowInsecureRequests: true, ...options });

async function expectRefused(promise: Promise<unknown>, reason?: RegExp): Promise<AuthenticationError> {
  const error = await promise.then(
    () => expect.fail('the token was accepted'),
    (error: unknown) => error,
  );
  expect(error).toBeInstanceOf(AuthenticationError);
  const authError = error as AuthenticationError;
  expect(authError).toMatchObject({ code: 'UNAUTHENTICATED', message: 'invalid token' });
  if (reason) expect(authError.reason).toMatch(reason);
  return authError;
}

const base64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

describe('createTokenVerifier', () => {
  it('maps a valid token to the identity, discovering the JWKS from the issuer', async () => {
    const token = await issuer.tokenFor({ email: 'alice@example.com', groups: ['dev', 'vdi-admins'] });
    const identity = await verifierFor().verify(token);
    expect(identity).toMatchObject({
      username: 'oidc:alice@example.com',
      name: 'alice@example.com',
      groups: ['oidc:dev', 'oidc:vdi-admins'],
      isAdmin: true,
    });
    expect(identity.expiresAt).toBeGreaterThan(Date.now() / 1000);
  });

  it('uses a configured jwksUri and reuses a verified result', async () => {
    const verifier = verifierFor({ jwksUri: issuer.jwksUri });
    const token = await issuer.tokenFor({ email: 'bob@example.com' });
    const first = await verifier.verify(token);
    expect(await verifier.verify(token)).toBe(first);
  });

  it('refuses an expired token', async () => {
    const token = await issuer.tokenFor({ email: 'alice@example.com' }, { expiresInSeconds: 1 });
    await new Promise((resolve) => setTimeout(resolve, 2100));
    await expectRefused(verifierFor({ clockToleranceSeconds: 0 }).verify(token), /exp/);
  });

  it('refuses a token from another issuer', async () => {
    const token = await otherIssuer.tokenFor({ email: 'alice@example.com' });
    await expectRefused(verifierFor().verify(token), /no applicable key/);
    // Even when its keys are trusted, its `iss` is not ours.
    await expectRefused(verifierFor({ jwksUri: otherIssuer.jwksUri }).verify(token), /iss/);
  });

  it('refuses a token for another audience', async () => {
    const token = await issuer.tokenFor({ email: 'alice@example.com' });
    await expectRefused(verifierFor({ audience: 'https://elsewhere.test' }).verify(token), /aud/);
  });

  it('refuses a tampered signature or payload', async () => {
    const token = await issuer.tokenFor({ email: 'alice@example.com', groups: ['dev'] });
    const [header, payload, signature] = token.split('.') as [string, string, string];
    const flipped = signature.slice(0, 10) + (signature[10] === 'A' ? 'B' : 'A') + signature.slice(11);
    await expectRefused(verifierFor().verify(`${header}.${payload}.${flipped}`), /signature/);

    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString()) as Record<string, unknown>;
    const elevated = base64url({ ...claims, groups: ['vdi-admins'] });
    await expectRefused(verifierFor().verify(`${header}.${elevated}.${signature}`), /signature/);
  });

  it('refuses alg none', async () => {
    const now = Math.floor(Date.now() / 1000);
    const claims = { iss: issuer.issuer, aud: audience, exp: now + 300, iat: now, email: 'mallory@example.com' };
    const token = `${base64url({ alg: 'none', typ: 'JWT' })}.${base64url(claims)}.`;
    await expectRefused(verifierFor().verify(token), /alg/i);
  });

  it('refuses HS256 signed with the issuer public key as the HMAC secret', async () => {
    const { keys } = (await (await fetch(issuer.jwksUri)).json()) as { keys: JWK[] };
    const jwk = keys[0]!;
    const pem = await exportSPKI((await importJWK(jwk, 'RS256', { extractable: true })) as CryptoKey);
    const token = await new SignJWT({ email: 'mallory@example.com', groups: ['vdi-admins'] })
      .setProtectedHeader({ alg: 'HS256', kid: jwk.kid! })
      .setIssuer(issuer.issuer)
      .setAudience(audience)
      .setIssuedAt()
      .setExpirationTime('5m')
      .sign(new TextEncoder().encode(pem));
    await expectRefused(verifierFor().verify(token), /alg/i);
  });

  it('refuses a missing, empty or malformed token', async () => {
    const verifier = verifierFor();
    await expectRefused(verifier.verify(''), /missing/);
    await expectRefused(verifier.verify(undefined as unknown as string), /missing/);
    await expectRefused(verifier.verify('not-a-jwt'));
  });

  it('refuses a token whose claims make no acceptable identity', async () => {
    const token = await issuer.tokenFor({ email: 'alice@example.com', groups: ['system:masters'] });
    await expectRefused(verifierFor().verify(token), /identity: .*system:/);
  });

  it('keeps the token out of the error', async () => {
    const token = await otherIssuer.tokenFor({ email: 'alice@example.com' });
    const error = await expectRefused(verifierFor().verify(token));
    expect(JSON.stringify({ ...error, message: error.message })).not.toContain(token.split('.')[2]);
  });

  it('accepts a token signed with a rotated key (the JWKS is refetched for an unknown kid)', async () => {
    const verifier = verifierFor({ jwksCooldownSeconds: 0 });
    await verifier.verify(await issuer.tokenFor({ email: 'alice@example.com' }));
    await issuer.rotateKeys();
    const rotated = await issuer.tokenFor({ email: 'carol@example.com' });
    await expect(verifier.verify(rotated)).resolves.toMatchObject({ name: 'carol@example.com' });
  });

  it('refuses an issuer whose discovery document names another issuer', async () => {
    const token = await issuer.tokenFor({ email: 'alice@example.com' });
    await expectRefused(verifierFor({ issuer: `${issuer.issuer}/` }).verify(token), /issuer mismatch/);
  });

  it('refuses symmetric or unsigned algorithms and plain http by configuration', () => {
    expect(() => verifierFor({ algorithms: ['RS256', 'HS256'] })).toThrow(TypeError);
    expect(() => verifierFor({ algorithms: ['none'] })).toThrow(TypeError);
    expect(() => createTokenVerifier({ issuer: issuer.issuer, audience })).toThrow(/https/);
  });
});
