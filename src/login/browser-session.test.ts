import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { openCookie, parseCookies, sealCookie, serializeCookie } from './browser-session.ts';

const key = () => new Uint8Array(randomBytes(32));
const inAMinute = () => Math.floor(Date.now() / 1000) + 60;

describe('sealed cookies', () => {
  it('round-trips a payload for its purpose only', async () => {
    const k = key();
    const sealed = await sealCookie('session', { at: 'token' }, [k], inAMinute());
    expect(sealed).not.toContain('token');
    expect(await openCookie<{ at: string }>('session', sealed, [k])).toMatchObject({ at: 'token' });
    expect(await openCookie('login', sealed, [k])).toBeUndefined();
  });

  it('refuses a tampered, expired or foreign-key value', async () => {
    const k = key();
    const sealed = await sealCookie('session', { at: 'token' }, [k], inAMinute());
    const parts = sealed.split('.');
    parts[3] = parts[3]!.slice(0, -2) + (parts[3]!.endsWith('AA') ? 'BB' : 'AA');
    expect(await openCookie('session', parts.join('.'), [k])).toBeUndefined();
    expect(await openCookie('session', sealed, [key()])).toBeUndefined();
    const expired = await sealCookie('session', { at: 'token' }, [k], Math.floor(Date.now() / 1000) - 10);
    expect(await openCookie('session', expired, [k])).toBeUndefined();
  });

  it('opens values sealed under an older key during a rotation', async () => {
    const [current, previous] = [key(), key()];
    const sealed = await sealCookie('session', { at: 'old' }, [previous], inAMinute());
    expect(await openCookie('session', sealed, [current, previous])).toMatchObject({ at: 'old' });
  });
});

describe('serializeCookie', () => {
  it('is HttpOnly and SameSite=Lax, with Secure and Domain when configured', () => {
    expect(serializeCookie('vdi_session', 'v', { maxAgeSeconds: 60.7, domain: '.vdi.example.com', secure: true })).toBe(
      'vdi_session=v; Path=/; Max-Age=60; HttpOnly; SameSite=Lax; Domain=.vdi.example.com; Secure',
    );
    expect(serializeCookie('c', '', { maxAgeSeconds: -1, secure: false })).toBe('c=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax');
  });
});

describe('parseCookies', () => {
  it('keeps the first of repeated names', () => {
    expect(parseCookies('a=1; b=x=y; a=2').get('a')).toBe('1');
    expect(parseCookies('a=1; b=x=y').get('b')).toBe('x=y');
  });
});
