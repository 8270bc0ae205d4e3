import { describe, expect, it } from 'vitest';
import { defaultIdentityConfig, identityFromClaims, IdentityError } from './identity.ts';

const config = defaultIdentityConfig;

describe('identityFromClaims', () => {
  it('prefixes the username and groups, and keeps the bare name', () => {
    const identity = identityFromClaims({ email: 'alice@example.com', groups: ['dev', 'ops'], exp: 1_900_000_000 }, config);
    expect(identity).toEqual({
      username: 'oidc:alice@example.com',
      name: 'alice@example.com',
      groups: ['oidc:dev', 'oidc:ops'],
      isAdmin: false,
      expiresAt: 1_900_000_000,
    });
  });

  it('uses the configured claims and prefixes', () => {
    const identity = identityFromClaims(
      { preferred_username: 'bob', roles: ['admins'] },
      { usernameClaim: 'preferred_username', groupsClaim: 'roles', usernamePrefix: '', groupsPrefix: 'idp:', adminGroup: 'admins' },
    );
    expect(identity).toMatchObject({ username: 'bob', name: 'bob', groups: ['idp:admins'], isAdmin: true });
  });

  it('detects the admin group by its unprefixed name', () => {
    expect(identityFromClaims({ email: 'a@x', groups: ['vdi-admins'] }, config).isAdmin).toBe(true);
    expect(identityFromClaims({ email: 'a@x', groups: ['oidc:vdi-admins'] }, config).isAdmin).toBe(false);
  });

  it('accepts an absent, a single-string and an array groups claim, de-duplicated', () => {
    expect(identityFromClaims({ email: 'a@x' }, config).groups).toEqual([]);
    expect(identityFromClaims({ email: 'a@x', groups: 'dev' }, config).groups).toEqual(['oidc:dev']);
    expect(identityFromClaims({ email: 'a@x', groups: ['dev', 'dev', 'ops'] }, config).groups).toEqual(['oidc:dev', 'oidc:ops']);
  });

  it.each([
    ['a missing username claim', {}],
    ['an empty username', { email: '' }],
    ['a non-string username', { email: 42 }],
    ['a system: username', { email: 'system:admin' }],
    ['a username with a line break', { email: 'a@x\r\nImpersonate-Group: system:masters' }],
    ['a username longer than 253 characters', { email: `${'a'.repeat(250)}@x.io` }],
    ['an unverified email', { email: 'a@x', email_verified: false }],
    ['a system: group', { email: 'a@x', groups: ['system:masters'] }],
    ['a non-string group', { email: 'a@x', groups: ['dev', 7] }],
    ['an empty group', { email: 'a@x', groups: [''] }],
    ['a groups claim that is an object', { email: 'a@x', groups: { admin: true } }],
    // The apiserver would see these as other names: HTTP trims header values, UTF-8 has no lone surrogates.
    ['a username that ends in a space', { email: 'alice@example.com ' }],
    ['a username that ends in a tab', { email: 'alice@example.com\t' }],
    ['a username with a lone surrogate', { email: 'jos\uD800@example.com' }],
    ['a group that begins with a space', { email: 'a@x', groups: [' vdi-admins'] }],
    ['a group with a lone surrogate', { email: 'a@x', groups: ['dev\uDC00'] }],
  ])('refuses %s', (_case, claims) => {
    expect(() => identityFromClaims(claims, config)).toThrow(IdentityError);
  });

  it('refuses a name that becomes system: after prefixing', () => {
    const prefixed = { ...config, usernamePrefix: 'system:', groupsPrefix: 'system:' };
    expect(() => identityFromClaims({ email: 'a@x' }, prefixed)).toThrow(IdentityError);
    expect(() => identityFromClaims({ email: 'a@x', groups: ['dev'] }, { ...config, groupsPrefix: 'system:' })).toThrow(IdentityError);
  });

  it('refuses a username that begins with whitespace once the prefix is empty', () => {
    expect(() => identityFromClaims({ email: ' alice@example.com' }, { ...config, usernamePrefix: '' })).toThrow(IdentityError);
  });

  it('keeps non-ASCII names exactly as claimed', () => {
    expect(identityFromClaims({ email: 'josé@example.com', groups: ['équipe'] }, config)).toMatchObject({
      name: 'josé@example.com',
      groups: ['oidc:équipe'],
    });
  });

  it('carries the UNAUTHENTICATED code', () => {
    expect(() => identityFromClaims({}, config)).toThrow(expect.objectContaining({ code: 'UNAUTHENTICATED' }));
  });
});
