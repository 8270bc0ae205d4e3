import { describe, expect, it } from 'vitest';
import { containsDesired, eventName } from './controller.ts';

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

describe('eventName', () => {
  it('names an Event after its object with a unique suffix, as client-go does (generateName may not end in a dot)', () => {
    const a = eventName('desk');
    expect(a).toMatch(/^desk\.[0-9a-f]{16}$/);
    expect(eventName('desk')).not.toBe(a);
  });

  it('stays a valid name of at most 253 characters for the longest session names', () => {
    const long = `${'a'.repeat(230)}.b-c.${'d'.repeat(17)}`;
    const name = eventName(long);
    expect(name.length).toBeLessThanOrEqual(253);
    expect(name).toMatch(DNS_SUBDOMAIN);
  });
});

describe('containsDesired', () => {
  it('ignores what the apiserver added but not a list entry someone else added', () => {
    const desired = { spec: { ports: [{ port: 8080, name: 'http' }] } };
    expect(containsDesired({ spec: { clusterIP: '10.0.0.1', ports: [{ port: 8080, name: 'http', protocol: 'TCP' }] } }, desired)).toBe(true);
    expect(containsDesired({ spec: { ports: [{ port: 9090, name: 'http' }, { port: 8080, name: 'http' }] } }, desired)).toBe(false);
  });
});
