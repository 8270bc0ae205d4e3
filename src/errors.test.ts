import { describe, expect, it } from 'vitest';
import { KubeError, KubeUnavailableError } from './kube/client.ts';
import type { ApiError } from './errors.ts';
import { fromKubeError } from './errors.ts';

const code = (err: Error) => (err as ApiError).extensions?.code;

describe('fromKubeError', () => {
  it('maps a ResourceQuota refusal to QUOTA_EXCEEDED and other 403s to FORBIDDEN', () => {
    const quota = new KubeError(
      403,
      'Forbidden',
      'vdisessions.vdi.kasm.io "x" is forbidden: exceeded quota: vdi-quota, requested: count/vdisessions.vdi.kasm.io=1',
    );
    expect(code(fromKubeError(quota))).toBe('QUOTA_EXCEEDED');
    expect(code(fromKubeError(new KubeError(403, 'Forbidden', 'user "oidc:bob" cannot create')))).toBe('FORBIDDEN');
  });

  it('maps statuses to stable codes', () => {
    expect(code(fromKubeError(new KubeError(404, 'NotFound', 'x')))).toBe('NOT_FOUND');
    expect(code(fromKubeError(new KubeError(409, 'AlreadyExists', 'x')))).toBe('CONFLICT');
    expect(code(fromKubeError(new KubeError(422, 'Invalid', 'x')))).toBe('BAD_USER_INPUT');
    expect(code(fromKubeError(new KubeError(503, 'ServiceUnavailable', 'x')))).toBe('UNAVAILABLE');
    expect(code(fromKubeError(new KubeUnavailableError(new Error('ECONNREFUSED'))))).toBe('UNAVAILABLE');
  });

  it("never passes on the apiserver's message", () => {
    const secret = 'admission webhook "x" denied: internal detail 10.0.0.7';
    for (const status of [400, 403, 404, 409, 422, 500]) {
      expect(fromKubeError(new KubeError(status, 'R', secret)).message).not.toContain('10.0.0.7');
    }
  });

  it('names the invalid fields of a 422, without their values', () => {
    const err = new KubeError(422, 'Invalid', 'spec.timeout: Invalid value: "8 hours"', {
      causes: [{ field: 'spec.timeout', message: 'Invalid value: "8 hours"' }],
    });
    const mapped = fromKubeError(err, 'session "s"');
    expect(mapped.message).toBe('session "s" is invalid: check spec.timeout');
  });

  it('marks UNAUTHENTICATED with HTTP 401', () => {
    expect((fromKubeError(new KubeError(401, 'Unauthorized', 'x')) as ApiError).extensions?.http).toEqual({ status: 401 });
  });
});
