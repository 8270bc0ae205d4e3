// Maps verified token claims to the identity the API impersonates. The rules mirror kube-apiserver's OIDC
// authenticator (prefixes, the `system:` ban, email_verified) so that the user we act as through impersonation
// is the same user the cluster would see if it verified the token itself.

export interface Identity {
  /** As the cluster sees it, with the prefix: `oidc:alice@example.com`. */
  username: string;
  /** Without the prefix: `alice@example.com`; what a session's `spec.user` holds. */
  name: string;
  /** Prefixed, de-duplicated. */
  groups: string[];
  isAdmin: boolean;
  /** Epoch seconds. */
  expiresAt?: number;
}

export interface IdentityConfig {
  usernameClaim: string;
  groupsClaim: string;
  usernamePrefix: string;
  groupsPrefix: string;
  /** Unprefixed, as the issuer sends it. */
  adminGroup: string;
}

export const defaultIdentityConfig: IdentityConfig = {
  usernameClaim: 'email',
  groupsClaim: 'groups',
  usernamePrefix: 'oidc:',
  groupsPrefix: 'oidc:',
  adminGroup: 'vdi-admins',
};

export class IdentityError extends Error {
  readonly code = 'UNAUTHENTICATED';
  override name = 'IdentityError';
}

// 253 is the longest DNS subdomain; names end up in labels, annotations and impersonation headers.
const MAX_NAME_LENGTH = 253;
// Control characters would let a claim smuggle line breaks into impersonation headers and logs.
// eslint-disable-next-line no-control-regex
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;
const RESERVED_PREFIX = 'system:';
// HTTP drops whitespace at either end of a header value, so `alice ` would reach the apiserver as `alice`.
const EDGE_WHITESPACE = /^[ \t]|[ \t]$/;

/**
 * Why `text` cannot be sent to the apiserver as exactly these characters, or undefined when it can. Names and
 * groups travel as UTF-8 (impersonation headers, JSON bodies, hashes); a lone surrogate has no UTF-8 form and
 * would become U+FFFD, the same bytes as another name that holds U+FFFD.
 */
export function unsendable(text: string): string | undefined {
  if (!text.isWellFormed()) return 'is not well-formed Unicode (a lone surrogate)';
  if (CONTROL_CHARACTERS.test(text)) return 'contains control characters';
  if (EDGE_WHITESPACE.test(text)) return 'begins or ends with whitespace';
  return undefined;
}

export function identityFromClaims(claims: Readonly<Record<string, unknown>>, config: IdentityConfig): Identity {
  const name = claims[config.usernameClaim];
  if (typeof name !== 'string' || name === '') {
    throw new IdentityError(`claim "${config.usernameClaim}" is missing or not a non-empty string`);
  }
  if (name.length > MAX_NAME_LENGTH) throw new IdentityError('username is longer than 253 characters');
  const nameProblem = unsendable(name);
  if (nameProblem) throw new IdentityError(`username ${nameProblem}`);
  // kube-apiserver refuses an email username whose email_verified is present and not true.
  if (config.usernameClaim === 'email' && 'email_verified' in claims && claims.email_verified !== true) {
    throw new IdentityError('email is not verified');
  }
  const username = config.usernamePrefix + name;
  if (unsendable(username)) throw new IdentityError(`username with its prefix ${unsendable(username)}`);
  if (name.startsWith(RESERVED_PREFIX) || username.startsWith(RESERVED_PREFIX)) {
    throw new IdentityError('username is in the reserved system: namespace');
  }

  const rawGroups = groupsClaimValues(claims[config.groupsClaim], config.groupsClaim);
  const groups = [...new Set(rawGroups.map((group) => config.groupsPrefix + group))];
  if (groups.some((group) => group.startsWith(RESERVED_PREFIX))) {
    throw new IdentityError('a group is in the reserved system: namespace');
  }

  const identity: Identity = { username, name, groups, isAdmin: rawGroups.includes(config.adminGroup) };
  if (typeof claims.exp === 'number') identity.expiresAt = claims.exp;
  return identity;
}

function groupsClaimValues(value: unknown, claimName: string): string[] {
  if (value === undefined || value === null) return [];
  const values: unknown[] = Array.isArray(value) ? value : [value];
  for (const group of values) {
    if (typeof group !== 'string' || group === '') {
      throw new IdentityError(`claim "${claimName}" holds a value that is not a non-empty string`);
    }
    const problem = unsendable(group);
    if (problem) throw new IdentityError(`a group ${problem}`);
    if (group.startsWith(RESERVED_PREFIX)) throw new IdentityError('a group is in the reserved system: namespace');
  }
  return values as string[];
}
