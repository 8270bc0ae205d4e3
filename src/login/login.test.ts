import { describe, expect, it } from 'vitest';
import { hostAllowed, safeReturnTo } from './login.ts';

const PORTAL = 'https://portal.vdi.example.com';
const HOSTS = ['portal.vdi.example.com', '*.vdi.example.com'];

describe('hostAllowed', () => {
  it('matches exact names and one label under a wildcard', () => {
    expect(hostAllowed('portal.vdi.example.com', HOSTS)).toBe(true);
    expect(hostAllowed('Alice-ns.VDI.example.com', HOSTS)).toBe(true);
    expect(hostAllowed('a.b.vdi.example.com', HOSTS)).toBe(false);
    expect(hostAllowed('vdi.example.com', HOSTS)).toBe(false);
    expect(hostAllowed('evilvdi.example.com', HOSTS)).toBe(false);
    expect(hostAllowed('vdi.example.com.evil.example', HOSTS)).toBe(false);
  });
});

describe('safeReturnTo', () => {
  const target = (v: unknown) => safeReturnTo(v, PORTAL, HOSTS);

  it('keeps paths on the portal and URLs on allowed hosts', () => {
    expect(target('/sessions?x=1#top')).toBe('/sessions?x=1#top');
    expect(target('https://portal.vdi.example.com/a')).toBe('/a');
    expect(target('https://alice-ns.vdi.example.com/?q=1')).toBe('https://alice-ns.vdi.example.com/?q=1');
  });

  it.each([
    ['a foreign host', 'https://evil.example'],
    ['a scheme-relative URL', '//evil.example/x'],
    ['a backslash trick', '/\\evil.example'],
    ['userinfo', 'https://alice-ns.vdi.example.com@evil.example/'],
    ['credentials on an allowed host', 'https://u:p@alice-ns.vdi.example.com/'],
    ['javascript:', 'javascript:alert(1)'],
    ['plain http when the portal is https', 'http://alice-ns.vdi.example.com/'],
    ['a deeper subdomain', 'https://a.b.vdi.example.com/'],
    ['nothing', undefined],
    ['an array (repeated query parameter)', ['/a', 'https://evil.example']],
  ])('refuses %s, answering /', (_label, value) => {
    expect(target(value)).toBe('/');
  });
});

describe('hostAllowed and ports', () => {
  it('matches a name on any port unless the pattern names one', () => {
    expect(hostAllowed('alice-ns.vdi.example.com:8443', HOSTS)).toBe(true);
    expect(hostAllowed('portal.local:8080', ['portal.local:8080'])).toBe(true);
    expect(hostAllowed('portal.local:9090', ['portal.local:8080'])).toBe(false);
  });
});
