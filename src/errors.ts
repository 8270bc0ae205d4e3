// Typed GraphQL errors with stable extension codes. Kubernetes failures are mapped here and only here, so a
// raw apiserver message, header or stack never reaches a client.
import { GraphQLError } from 'graphql';
import { ImpersonationEncodingError, KubeError, KubeUnavailableError } from './kube/client.ts';

export type ErrorCode =
  | 'UNAUTHENTICATED'
  | 'FORBIDDEN'
  | 'NOT_FOUND'
  | 'BAD_USER_INPUT'
  | 'QUOTA_EXCEEDED'
  | 'CONFLICT'
  | 'UNAVAILABLE'
  | 'RATE_LIMITED'
  | 'INTERNAL_SERVER_ERROR';

const HTTP_STATUS: Partial<Record<ErrorCode, number>> = { UNAUTHENTICATED: 401, RATE_LIMITED: 429 };

export class ApiError extends GraphQLError {
  constructor(code: ErrorCode, message: string, extra: Record<string, unknown> = {}) {
    const status = HTTP_STATUS[code];
    super(message, { extensions: { code, ...extra, ...(status ? { http: { status } } : {}) } });
  }
}

export const unauthenticated = (message = 'authentication required: send a valid bearer token') => new ApiError('UNAUTHENTICATED', message);
export const forbidden = (message = 'you are not allowed to do that') => new ApiError('FORBIDDEN', message);
export const notFound = (what: string) => new ApiError('NOT_FOUND', `${what} not found`);
export const badInput = (message: string, field?: string) => new ApiError('BAD_USER_INPUT', message, field ? { field } : {});
export const quotaExceeded = (message: string) => new ApiError('QUOTA_EXCEEDED', message);
export const conflict = (message: string) => new ApiError('CONFLICT', message);
export const unavailable = () => new ApiError('UNAVAILABLE', 'the cluster is unavailable, try again shortly');
export const rateLimited = () => new ApiError('RATE_LIMITED', 'too many requests, slow down');

/** Maps a Kubernetes API failure to a typed error with a message of our own. */
export function fromKubeError(err: unknown, what = 'the object'): Error {
  if (err instanceof ApiError) return err;
  if (err instanceof KubeUnavailableError) return unavailable();
  if (err instanceof ImpersonationEncodingError) return forbidden('your user name or a group cannot be sent to Kubernetes exactly as it is');
  if (!(err instanceof KubeError)) return err instanceof Error ? err : new Error(String(err));
  switch (err.status) {
    case 400:
    case 422:
      return badInput(`${what} is invalid${invalidFields(err)}`);
    case 401:
      return unauthenticated();
    case 403:
      // ResourceQuota refusals are 403 Forbidden with "exceeded quota" in the message.
      return /exceeded quota/i.test(err.message) ? quotaExceeded('your quota does not allow this: end a session first') : forbidden();
    case 404:
      return notFound(what);
    case 409:
      return conflict(`${what} already exists or was changed at the same time`);
    case 429:
    case 500:
    case 503:
    case 504:
      return unavailable();
    default:
      return new Error(`Kubernetes API error ${err.status}`);
  }
}

/** The field paths of a 422's causes (no values, no apiserver prose), e.g. ": spec.timeout". */
function invalidFields(err: KubeError): string {
  const causes = (err.details as { causes?: { field?: string }[] } | undefined)?.causes ?? [];
  const fields = [...new Set(causes.map((c) => c.field).filter((f): f is string => Boolean(f)))];
  return fields.length ? `: check ${fields.join(', ')}` : '';
}
