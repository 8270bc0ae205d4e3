// Deterministic names and label values derived from a session, so that every reconcile computes the same
// children and finds the ones it made before. Whenever a name had to be shortened or cleaned up, a hash of the
// original keeps two different inputs from landing on the same name.
import { createHash } from 'node:crypto';
import type { ReconcilerConfig } from './config.ts';
import type { VDISession } from './v1alpha1.ts';

const MAX_LABEL = 63;
const HASH_LENGTH = 10;
const LABEL_VALUE = /^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$/;

export function hashHex(text: string, length = HASH_LENGTH): string {
  return createHash('sha256').update(text).digest('hex').slice(0, length);
}

/** Lowercase, every run of characters other than [a-z0-9] becomes one `-`, no leading or trailing `-`. */
export function slug(text: string): string {
  return text
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '');
}

/** The session's name and namespace; objects from the cluster always have both. */
export function sessionKey(session: VDISession): { name: string; namespace: string } {
  const { name, namespace } = session.metadata;
  if (!name || !namespace) throw new Error('VDISession without metadata.name or metadata.namespace');
  return { name, namespace };
}

/**
 * Name of an object the session owns: `vdi-<name>[-<suffix>]`, a DNS-1035 label (Service names must be).
 * Session names may be longer and may contain dots: then a cleaned prefix plus a hash of the name is used.
 */
export function childName(session: VDISession, suffix?: string): string {
  const { name } = sessionKey(session);
  const tail = suffix ? `-${suffix}` : '';
  const base = `vdi-${slug(name)}`;
  if (slug(name) === name && base.length + tail.length <= MAX_LABEL) return base + tail;
  const room = MAX_LABEL - tail.length - HASH_LENGTH - 1;
  return `${base.slice(0, room).replace(/-+$/, '')}-${hashHex(name)}${tail}`;
}

/**
 * The one home PVC of a user for a template, `home-<slug(user)>-<template>-<hash>`. The hash is always there:
 * slugs collide (`Bob` / `bob`, `a@b.c` / `a.b.c`) and so do joins (`a-b` + `c` / `a` + `b-c`), and a
 * collision here would mount one user's home into another user's desktop.
 */
export function pvcName(user: string, template: string): string {
  const base = `home-${slug(user)}-${slug(template)}`.slice(0, MAX_LABEL - HASH_LENGTH - 1).replace(/-+$/, '');
  return `${base}-${hashHex(`${user}\n${template}`)}`;
}

/** Cleaned label values by input: every reconcile labels its children with the user's (a SHA-256 each). */
const cleanedLabels = new Map<string, string>();

/**
 * `text` as a label value (at most 63 of [A-Za-z0-9._-], alphanumeric at both ends): unchanged when it
 * already is one, else the allowed characters (others become `_`) plus a hash of the original, e.g.
 * `alice@example.com` → `alice_example.com-<hash>`. Labels are for selecting and display; anything that
 * decides access compares the full value (spec.user), never the label.
 */
export function labelValue(text: string): string {
  if (LABEL_VALUE.test(text)) return text;
  let value = cleanedLabels.get(text);
  if (value === undefined) {
    const clean = text
      .replace(/[^A-Za-z0-9._-]/g, '_')
      .slice(0, MAX_LABEL - HASH_LENGTH - 1)
      .replace(/^[^A-Za-z0-9]+|[^A-Za-z0-9]+$/g, '');
    value = clean ? `${clean}-${hashHex(text)}` : hashHex(text);
    if (cleanedLabels.size >= 10_000) cleanedLabels.clear();
    cleanedLabels.set(text, value);
  }
  return value;
}

/** User label values by input, as for cleanedLabels. */
const userLabels = new Map<string, string>();
/** 128 bits: two users whose label values collide would take about 2^64 hashes to find. */
const USER_HASH_LENGTH = 32;
const HASHED_USER_LABEL = /-[0-9a-f]{32}$/;

/**
 * The `vdi.kasm.io/user` label value: the user's name unchanged when it is a label value and does not end in
 * `-<32 hex>`; otherwise the allowed characters (others become `_`, at least `u`) plus `-<32 hex of sha256>`.
 * Kept values never end in `-<32 hex>` and hashed ones always do, so no user can pick a name equal to another's
 * hashed value: distinct users get distinct label values (up to a SHA-256 collision).
 */
export function userLabelValue(user: string): string {
  if (LABEL_VALUE.test(user) && !HASHED_USER_LABEL.test(user)) return user;
  let value = userLabels.get(user);
  if (value === undefined) {
    // A lone surrogate would be hashed as U+FFFD, the same bytes as a name that holds U+FFFD.
    if (!user.isWellFormed()) throw new RangeError('the user name is not well-formed Unicode');
    const clean = user
      .replace(/[^A-Za-z0-9._-]/g, '_')
      .slice(0, MAX_LABEL - USER_HASH_LENGTH - 1)
      .replace(/^[^A-Za-z0-9]+|[^A-Za-z0-9]+$/g, '');
    value = `${clean || 'u'}-${hashHex(user, USER_HASH_LENGTH)}`;
    if (userLabels.size >= 10_000) userLabels.clear();
    userLabels.set(user, value);
  }
  return value;
}

/** Value of the `vdi.kasm.io/session` and `app.kubernetes.io/instance` labels (session names may exceed 63). */
export function sessionLabelValue(session: VDISession): string {
  return labelValue(sessionKey(session).name);
}

const HOST_HASH_LENGTH = 16;

/**
 * The session's host from config.hostPattern. When a label would exceed 63 characters (user namespaces carry a
 * 128-bit hash, so `{name}-{namespace}` usually does) or a dotted session name would add labels (a wildcard
 * certificate covers one level only), it is `<the session name, shortened>-<16 hex of sha256(namespace/name)>`:
 * the name for people, the hash for uniqueness (another session's host would take a 64-bit preimage).
 */
export function sessionHost(session: VDISession, config: ReconcilerConfig): string {
  const { name, namespace } = sessionKey(session);
  const host = config.hostPattern.replaceAll('{name}', name).replaceAll('{namespace}', namespace).replaceAll('{domain}', config.domain);
  if (!name.includes('.') && host.split('.').every((label) => label.length <= MAX_LABEL)) return host;
  const readable = name
    .replace(/[^a-z0-9]+/g, '-')
    .slice(0, MAX_LABEL - HOST_HASH_LENGTH - 1)
    .replace(/^-+|-+$/g, '');
  return `${readable || 's'}-${hashHex(`${namespace}/${name}`, HOST_HASH_LENGTH)}.${config.domain}`;
}
