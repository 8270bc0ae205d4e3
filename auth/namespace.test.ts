import { describe, expect, it } from 'vitest';
import { userNamespace } from './namespace.ts';

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

describe('userNamespace', () => {
  it('is vdi-<slug>-<32 hex>', () => {
    expect(userNamespace('Alice@Example.com')).toMatch(/^vdi-alice-example-com-[0-9a-f]{32}$/);
  });

  it('is deterministic', () => {
    expect(userNamespace('alice@example.com')).toBe(userNamespace('alice@example.com'));
  });

  it('keeps names that slug alike apart', () => {
    const names = ['alice@example.com', 'alice.example.com', 'Alice@example.com', 'alice@example.com '];
    expect(new Set(names.map((name) => userNamespace(name))).size).toBe(names.length);
  });

  it.each(['alice@example.com', 'a'.repeat(300), `${'x.'.repeat(40)}@example.com`, '--weird__name--', 'Ünïcødé@例え.jp', '@@@', ''])(
    'is a valid DNS label of at most 63 characters for %j',
    (name) => {
      const namespace = userNamespace(name);
      expect(namespace.length).toBeLessThanOrEqual(63);
      expect(namespace).toMatch(DNS_LABEL);
      expect(namespace.startsWith('vdi-')).toBe(true);
    },
  );

  it('fits a custom prefix', () => {
    expect(userNamespace('bob', 'desk-')).toMatch(/^desk-bob-[0-9a-f]{32}$/);
    expect(userNamespace('b'.repeat(100), 'p'.repeat(20) + '-')).toHaveLength(63);
  });

  it('refuses a prefix that leaves no room', () => {
    expect(() => userNamespace('bob', 'p'.repeat(31))).toThrow(RangeError);
  });

  // Found by brute force against the 24-bit scheme (issue #20): each landed in the first name's namespace.
  it.each([
    ['alice@example.com', 'alicE+_!=!~!__++!+-_-@example.com'],
    ['john.smith@example.com', 'John+SMiTh~_~_==@example.com'],
  ])('keeps %j and its twin %j apart', (owner, twin) => {
    expect(userNamespace(twin)).not.toBe(userNamespace(owner));
  });

  it('refuses a name with a lone surrogate, which would hash like U+FFFD', () => {
    expect(() => userNamespace('jos\uD800@example.com')).toThrow(RangeError);
    expect(userNamespace('jos\uFFFD@example.com')).toMatch(DNS_LABEL);
  });
});
