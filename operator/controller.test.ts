import { describe, expect, it } from 'vitest';
import { KubeError } from '../src/kube/client.ts';
import { containsDesired, errorText, eventName } from './controller.ts';

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
    expect(
      containsDesired(
        {
          spec: {
            ports: [
              { port: 9090, name: 'http' },
              { port: 8080, name: 'http' },
            ],
          },
        },
        desired,
      ),
    ).toBe(false);
  });
});

describe('errorText', () => {
  it("keeps the apiserver's message for server errors, where it describes the server", () => {
    const err = new KubeError(500, 'InternalError', 'Internal error occurred: failed to allocate a serviceIP: range is full');
    expect(errorText(err)).toBe('500 InternalError: Internal error occurred: failed to allocate a serviceIP: range is full');
    expect(errorText(new KubeError(429, 'TooManyRequests', 'storage is (re)initializing'))).toBe('429 TooManyRequests: storage is (re)initializing');
  });

  it('names only the fields of a validation failure, never the values its message quotes', () => {
    const err = new KubeError(422, 'Invalid', 'Pod "x" is invalid: spec.containers[0].env[2].value: Invalid value: "https://vdi/turn/s3cr3t"', {
      causes: [
        { field: 'spec.containers[0].env[2].value', message: 'Invalid value: "https://vdi/turn/s3cr3t"' },
        { field: 'spec.containers[0].env[2].value' },
      ],
    });
    expect(errorText(err)).toBe('422 Invalid (fields: spec.containers[0].env[2].value)');
    expect(errorText(new KubeError(403, 'Forbidden', 'pods is forbidden: User "x" cannot create'))).toBe('403 Forbidden');
  });
});
