import { describe, expect, it } from 'vitest';
import { rtcConfiguration, sameSecret, turnCredential } from './turn.ts';

describe('turnCredential', () => {
  it('follows coturn REST-API auth: <expiry>:<user> and base64(HMAC-SHA1(secret, username))', () => {
    // Reference value from Python's hmac module, independent of this implementation.
    const c = turnCredential('north-star-shared-secret', 'alice@example.com', 1_700_000_000, 86_400);
    expect(c).toEqual({ username: '1700086400:alice@example.com', credential: 'KQLCU1r097giDzZC8/mCPQnfvaE=', expiresAt: 1_700_086_400 });
  });

  it('truncates a fractional clock and honours the configured lifetime', () => {
    expect(turnCredential('s'.repeat(16), 'bob', 100.9, 60).username).toBe('160:bob');
  });

  it('depends on the secret: a rotated secret gives another password', () => {
    const a = turnCredential('first-secret-0123456', 'u', 0, 60);
    const b = turnCredential('second-secret-012345', 'u', 0, 60);
    expect(a.username).toBe(b.username);
    expect(a.credential).not.toBe(b.credential);
  });
});

describe('rtcConfiguration', () => {
  const credential = { username: '1:u', credential: 'p', expiresAt: 1 };

  it('lists a stun: server and turn: over UDP and TCP with explicit ports (Selkies splits URLs on ":")', () => {
    const config = rtcConfiguration({ host: 'turn.example.com', port: 3478, credentialSeconds: 3600 }, credential);
    expect(config).toEqual({
      lifetimeDuration: '3600s',
      iceServers: [
        { urls: ['stun:turn.example.com:3478'] },
        { urls: ['turn:turn.example.com:3478?transport=udp', 'turn:turn.example.com:3478?transport=tcp'], username: '1:u', credential: 'p' },
      ],
      blockStatus: 'NOT_BLOCKED',
      iceTransportPolicy: 'all',
    });
  });

  it('adds turns: when a TLS port is configured', () => {
    const config = rtcConfiguration({ host: 't', port: 3478, tlsPort: 5349, credentialSeconds: 60 }, credential);
    expect(config.iceServers[1]!.urls).toContain('turns:t:5349?transport=tcp');
  });
});

describe('sameSecret', () => {
  it('accepts only the exact token, whatever the lengths', () => {
    expect(sameSecret('abc', 'abc')).toBe(true);
    expect(sameSecret('abd', 'abc')).toBe(false);
    expect(sameSecret('abcd', 'abc')).toBe(false);
    expect(sameSecret('', '')).toBe(false);
  });
});
