// Typed server errors (the `extensions.code` of src/errors.ts) as messages a person can act on.
import type { CombinedError } from '@urql/core';

export interface ErrorView {
  code: string;
  title: string;
  /** The service's own explanation where it is meant for users (typed errors carry safe, specific text). */
  detail?: string;
  /** The form field the service blamed (BAD_USER_INPUT's `field`). */
  field?: string;
}

const TITLES: Record<string, string> = {
  UNAUTHENTICATED: 'Your sign-in has expired. Taking you to the login page…',
  FORBIDDEN: 'You are not allowed to do that.',
  NOT_FOUND: 'That no longer exists: it may have just ended.',
  BAD_USER_INPUT: 'Some of the settings are not accepted.',
  QUOTA_EXCEEDED: 'Your quota does not allow this. End one of your desktops first.',
  CONFLICT: 'Something changed at the same moment. Please try again.',
  UNAVAILABLE: 'The cluster is not answering right now. Please try again shortly.',
  RATE_LIMITED: 'Too many requests at once. Wait a moment and try again.',
  NETWORK: 'The service cannot be reached. Check your connection and try again.',
  INTERNAL_SERVER_ERROR: 'Something went wrong on the server. Please try again.',
};

// Codes whose server message names the specific problem and is written for users.
const SHOW_DETAIL = new Set(['BAD_USER_INPUT', 'QUOTA_EXCEEDED', 'NOT_FOUND', 'CONFLICT']);

export function messageFor(code: string, serverMessage?: string, field?: string): ErrorView {
  const title = TITLES[code] ?? TITLES.INTERNAL_SERVER_ERROR!;
  const detail = SHOW_DETAIL.has(code) && serverMessage ? sentence(serverMessage) : undefined;
  return { code: TITLES[code] ? code : 'INTERNAL_SERVER_ERROR', title, ...(detail && { detail }), ...(field && { field }) };
}

/** The first error of an urql result as a message; network failures included. */
export function describeError(error: CombinedError): ErrorView {
  const first = error.graphQLErrors[0];
  if (first) {
    const ext = first.extensions as { code?: string; field?: string } | undefined;
    return messageFor(ext?.code ?? 'INTERNAL_SERVER_ERROR', first.message, ext?.field);
  }
  if (error.response && (error.response as Response).status === 401) return messageFor('UNAUTHENTICATED');
  return messageFor('NETWORK');
}

export function isUnauthenticated(error: CombinedError): boolean {
  return (
    error.graphQLErrors.some((e) => (e.extensions as { code?: string } | undefined)?.code === 'UNAUTHENTICATED') ||
    (error.response as Response | undefined)?.status === 401
  );
}

function sentence(text: string): string {
  const t = text.trim();
  return t ? `${t.charAt(0).toUpperCase()}${t.slice(1)}${/[.!?]$/.test(t) ? '' : '.'}` : t;
}
