import { describe, expect, it } from 'vitest';
import { childName, labelValue, pvcName, sessionHost, sessionLabelValue, slug, userLabelValue } from './naming.ts';
import type { VDISession } from './v1alpha1.ts';
import { testReconcilerConfig } from '../test/support/reconciler-config.ts';

const DNS_1035_LABEL = /^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/;
const DNS_1123_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const LABEL_VALUE = /^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;

function session(name: string, namespace = 'team-a'): VDISession {
  return {
    apiVersion: 'vdi.kasm.io/v1alpha1',
    kind: 'VDISession',
    metadata: { name, namespace, uid: 'uid-1' },
    spec: { user: 'alice@example.com', template: 'ubuntu' },
  };
}

describe('slug', () => {
  it('lowercases and collapses everything but [a-z0-9] into single dashes', () => {
    expect(slug('Alice.Smith@Example.COM')).toBe('alice-smith-example-com');
    expect(slug('--a__b--')).toBe('a-b');
  });
});

describe('childName', () => {
  it('is vdi-<session name> for ordinary names', () => {
    expect(childName(session('my-desktop'))).toBe('vdi-my-desktop');
    expect(childName(session('my-desktop'), 'auth')).toBe('vdi-my-desktop-auth');
  });

  it('is deterministic', () => {
    expect(childName(session('x'.repeat(100)))).toBe(childName(session('x'.repeat(100))));
  });

  it('truncates long names to a valid 63-character label with a hash, keeping them distinct', () => {
    const a = childName(session(`${'a'.repeat(70)}-one`), 'strip-cookie');
    const b = childName(session(`${'a'.repeat(70)}-two`), 'strip-cookie');
    expect(a).toMatch(DNS_1035_LABEL);
    expect(a.length).toBeLessThanOrEqual(63);
    expect(a.endsWith('-strip-cookie')).toBe(true);
    expect(a).not.toBe(b);
  });

  it('turns dotted session names into Service-safe labels without colliding with the dashed spelling', () => {
    const dotted = childName(session('a.b'));
    expect(dotted).toMatch(DNS_1035_LABEL);
    expect(dotted).not.toBe(childName(session('a-b')));
  });
});

describe('pvcName', () => {
  it('is home-<slug(user)>-<template>-<hash>', () => {
    expect(pvcName('alice@example.com', 'ubuntu')).toMatch(/^home-alice-example-com-ubuntu-[0-9a-f]{10}$/);
  });

  it('is stable for a user and template, so the next session finds the same home', () => {
    expect(pvcName('alice@example.com', 'ubuntu')).toBe(pvcName('alice@example.com', 'ubuntu'));
  });

  it('never gives two users the same volume when their slugs or joins coincide', () => {
    expect(pvcName('Bob', 'ubuntu')).not.toBe(pvcName('bob', 'ubuntu'));
    expect(pvcName('a@b.c', 'ubuntu')).not.toBe(pvcName('a.b.c', 'ubuntu'));
    expect(pvcName('bob-ubuntu', 'desktop')).not.toBe(pvcName('bob', 'ubuntu-desktop'));
    expect(pvcName('alice', 'ubuntu')).not.toBe(pvcName('alice', 'fedora'));
  });

  it('stays a valid 63-character label for very long users and templates', () => {
    const name = pvcName(`${'very-long-user-name.'.repeat(10)}@example.com`, 't'.repeat(60));
    expect(name.length).toBeLessThanOrEqual(63);
    expect(name).toMatch(DNS_1123_LABEL);
  });
});

describe('userLabelValue', () => {
  it('keeps values that already are valid label values', () => {
    expect(userLabelValue('alice')).toBe('alice');
    expect(userLabelValue('alice.smith_1')).toBe('alice.smith_1');
  });

  it('maps alice@example.com to alice_example.com plus a hash', () => {
    expect(userLabelValue('alice@example.com')).toMatch(/^alice_example\.com-[0-9a-f]{32}$/);
  });

  it('never gives a user the hashed value of another user', () => {
    const hashed = userLabelValue('alice@example.com');
    expect(userLabelValue(hashed)).not.toBe(hashed);
    expect(userLabelValue(hashed)).toMatch(LABEL_VALUE);
  });

  it.each(['alice@example.com', '@@@', `${'x'.repeat(80)}@example.com`, '_leading', 'trailing.', 'ünïcode', ''])(
    'produces a valid label value from %j',
    (user) => {
      expect(userLabelValue(user)).toMatch(LABEL_VALUE);
    },
  );

  it('keeps different users apart even when the cleaned-up forms match', () => {
    expect(userLabelValue('alice@example.com')).not.toBe(userLabelValue('alice#example.com'));
  });

  it('gives long session names a valid label value', () => {
    expect(sessionLabelValue(session('s'.repeat(200)))).toMatch(LABEL_VALUE);
    expect(labelValue('short-name')).toBe('short-name');
  });
});

describe('sessionHost', () => {
  const config = testReconcilerConfig({ domain: 'vdi.example.com' });

  it('follows hostPattern', () => {
    expect(sessionHost(session('desk', 'team-a'), config)).toBe('desk-team-a.vdi.example.com');
    const custom = testReconcilerConfig({ hostPattern: '{namespace}--{name}.{domain}' });
    expect(sessionHost(session('desk', 'team-a'), custom)).toBe('team-a--desk.vdi.example.com');
  });

  it('falls back to <name>-<16 hex>.<domain> when the first label would exceed 63 characters', () => {
    const ns = `vdi-alice-example-com-${'0'.repeat(32)}`;
    const host = sessionHost(session('ubuntu-desktop-1a2b3c', ns), config);
    expect(host).toMatch(/^ubuntu-desktop-1a2b3c-[0-9a-f]{16}\.vdi\.example\.com$/);
    expect(host).not.toBe(sessionHost(session('ubuntu-desktop-1a2b3c', `vdi-bob-example-com-${'0'.repeat(32)}`), config));
    const long = sessionHost(session('d'.repeat(60), ns), config);
    expect(long.split('.')[0]!.length).toBeLessThanOrEqual(63);
    expect(long).not.toBe(sessionHost(session(`${'d'.repeat(60)}x`, ns), config));
  });

  it('falls back when a dotted session name would add DNS labels under the wildcard', () => {
    expect(sessionHost(session('a.b'), config)).toMatch(/^a-b-[0-9a-f]{16}\.vdi\.example\.com$/);
  });
});
