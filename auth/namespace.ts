import { createHash } from 'node:crypto';

const MAX_LABEL_LENGTH = 63;
/**
 * 128 bits of SHA-256: finding two names with the same namespace takes about 2^64 hashes (birthday bound),
 * out of reach. The slug beside it is only for people to read; it decides nothing.
 */
export const NAMESPACE_HASH_HEX = 32;
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/**
 * The namespace that holds a user's sessions: `vdi-<slug>-<32 hex of sha256(utf-8 of name)>`. Distinct names
 * give distinct namespaces (up to a SHA-256 collision); the namespace also carries its owner's exact name in an
 * annotation, which provisioning checks (docs/adr/0006-one-identity-one-namespace.md).
 */
export function userNamespace(name: string, prefix = 'vdi-'): string {
  // A lone surrogate would be hashed as U+FFFD, the same bytes as a name that holds U+FFFD.
  if (!name.isWellFormed()) throw new RangeError('the name is not well-formed Unicode');
  const hash = createHash('sha256').update(name, 'utf8').digest('hex').slice(0, NAMESPACE_HASH_HEX);
  const room = MAX_LABEL_LENGTH - prefix.length - hash.length - 1;
  if (room < 0) throw new RangeError(`namespace prefix "${prefix}" is too long`);
  const slug = name
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .slice(0, room)
    .replace(/^-+|-+$/g, '');
  const namespace = slug ? `${prefix}${slug}-${hash}` : `${prefix}${hash}`;
  if (!DNS_LABEL.test(namespace)) throw new RangeError(`namespace prefix "${prefix}" is not a valid DNS label start`);
  return namespace;
}
