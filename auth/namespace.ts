import { createHash } from 'node:crypto';

const MAX_LABEL_LENGTH = 63;
const HASH_LENGTH = 6;
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/**
 * The namespace that holds a user's sessions: `vdi-<slug>-<6 hex of sha256(name)>`.
 * The slug keeps it readable for operators; the hash keeps names that slug alike apart
 * (`alice@example.com` and `alice.example.com`).
 */
export function userNamespace(name: string, prefix = 'vdi-'): string {
  const hash = createHash('sha256').update(name).digest('hex').slice(0, HASH_LENGTH);
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
