// Every mapping of a verified identity onto Kubernetes is injective and byte-exact (issue #20): two distinct
// identities the verifier accepts never reach the apiserver as the same user bytes, never share a namespace,
// a user label value, a subscription scope or a forwardAuth decision, and whatever the verifier refuses is
// refused by every mapping too. Names are generated to be hostile: Unicode letters, confusables, case,
// whitespace, punctuation runs, plus-addressing, mojibake and very long names, plus the twins an attack run
// found against the old mappings.
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAuthorizer } from '../../auth/authorizer.ts';
import { defaultIdentityConfig, identityFromClaims, type Identity } from '../../auth/identity.ts';
import { userNamespace } from '../../auth/namespace.ts';
import { userLabelValue } from '../../operator/naming.ts';
import { GROUP, SESSION_PLURAL } from '../../operator/v1alpha1.ts';
import type { KubeClient } from '../../src/kube/client.ts';
import { impersonationRecorder } from '../support/impersonation-recorder.ts';

const confusables = [
  'a',
  'A',
  'а',
  'ɑ',
  'ａ',
  'e',
  'é',
  'e\u0301',
  'É',
  'Ã©',
  'ß',
  'ss',
  'ẞ',
  'i',
  'İ',
  'ı',
  'I',
  'K',
  '\u212A',
  'Å',
  '\u212B',
  'o',
  'о',
  '0',
  'l',
  '1',
];
const punctuation = ['+', '_', '!', '=', '~', '-', '.', '@', '++', '__', '-_-', '~_~_==', '+_!=!~!__++!+-_-'];
const spaces = [' ', '\t', '\u00A0', '\u2003', '\u3000', '\u200B', '\uFEFF'];
// Lone surrogates have no UTF-8 form; U+FFFD is what they would silently become.
const surrogates = ['\uD800', '\uDFFF', '\uFFFD'];

const piece = fc.oneof(
  fc.stringMatching(/^[a-zA-Z]{1,8}$/),
  fc.constantFrom(...confusables),
  fc.constantFrom(...punctuation),
  fc.constantFrom(...spaces),
  fc.constantFrom(...surrogates),
  fc.string({ unit: 'binary', maxLength: 4 }),
  fc.string({ unit: 'grapheme', maxLength: 4 }),
);
const local = fc.array(piece, { minLength: 1, maxLength: 10 }).map((parts) => parts.join(''));
const domain = fc.constantFrom('example.com', 'EXAMPLE.com', 'example.com.', '例え.jp', 'xn--r8jz45g.jp');
const name = fc.oneof(
  fc.tuple(local, domain).map(([l, d]) => `${l}@${d}`),
  fc.tuple(local, local, domain).map(([l, tag, d]) => `${l}+${tag}@${d}`),
  local,
  fc.tuple(local, fc.integer({ min: 60, max: 260 })).map(([l, n]) => (l || 'x').repeat(n).slice(0, n)),
);

/** Changes that keep a name looking alike: what a twin is made of. */
const lookalike = fc.constantFrom<(n: string) => string>(
  (n) => n.toUpperCase(),
  (n) => n.toLowerCase(),
  (n) => n.replace(/[a-z]/, (c) => c.toUpperCase()),
  (n) => n.normalize('NFD'),
  (n) => n.normalize('NFKC'),
  (n) => Buffer.from(n, 'utf8').toString('latin1'),
  (n) => n.replace(/[^A-Za-z0-9]+/g, '-'),
  (n) => n.replace(/[^A-Za-z0-9]/g, (c) => `${c}${c}`),
  (n) => n.replace('@', '+x@'),
  (n) => n.replace('.', '_'),
  (n) => `${n} `,
  (n) => `${n}\u200B`,
  (n) => n.slice(0, -1),
);
const pair = fc.oneof(
  fc.tuple(name, name),
  fc.tuple(name, lookalike).map(([n, change]) => [n, change(n)] as [string, string]),
);

const hex = (text: string, length: number) => createHash('sha256').update(text, 'utf8').digest('hex').slice(0, length);
/** Pairs that collided under the old mappings: namespace twins found by brute force, mojibake, a hashed label. */
const knownTwins: [[string, string]][] = [
  [['alice@example.com', 'alicE+_!=!~!__++!+-_-@example.com']],
  [['john.smith@example.com', 'John+SMiTh~_~_==@example.com']],
  [['josé@example.com', 'josÃ©@example.com']],
  [['alice@example.com', `alice_example.com-${hex('alice@example.com', 10)}`]],
  [['alice@example.com', `alice_example.com-${hex('alice@example.com', 32)}`]],
  [['alice@example.com', 'alice@example.com ']],
];

function verified(name: string): Identity | undefined {
  try {
    return identityFromClaims({ email: name, groups: ['vdi-users', name] }, defaultIdentityConfig);
  } catch {
    return undefined;
  }
}

const authorizer = createAuthorizer({} as KubeClient);
/** What the hub indexes a subscription to one's own sessions by, and the decision it shares. */
const subscriptionScope = (identity: Identity) => {
  const namespace = userNamespace(identity.name);
  return JSON.stringify([namespace, authorizer.key(identity, { verb: 'watch', group: GROUP, resource: SESSION_PLURAL, namespace })]);
};
/** What forwardAuth decides a non-owner's request to a desktop by. */
const forwardAuthKey = (identity: Identity) =>
  authorizer.key(identity, { verb: 'get', group: GROUP, resource: SESSION_PLURAL, namespace: 'vdi-someone', name: 'desk' });

/** The bytes of the impersonation headers as they leave the process, read by a server of ours. */
let wire: (identity: Identity) => Promise<{ user: Buffer; groups: Buffer[] }>;
let close: () => Promise<void>;

beforeAll(async () => {
  const recorder = await impersonationRecorder();
  wire = async (identity) => {
    await recorder.client.get('/api', { username: identity.username, groups: identity.groups });
    const sent = recorder.seen.at(-1)!;
    return { user: sent.user[0]!, groups: sent.groups };
  };
  close = recorder.close;
});

afterAll(async () => {
  await close();
});

describe('identity mappings', () => {
  it('send every accepted identity to the apiserver as exactly the UTF-8 of its name and groups', async () => {
    await fc.assert(
      fc.asyncProperty(name, async (n) => {
        const identity = verified(n);
        fc.pre(identity !== undefined);
        const sent = await wire(identity!);
        expect(sent.user.equals(Buffer.from(identity!.username, 'utf8'))).toBe(true);
        expect(sent.groups.map((g) => g.toString('hex'))).toEqual(identity!.groups.map((g) => Buffer.from(g, 'utf8').toString('hex')));
      }),
      { numRuns: 300, examples: [['josé@example.com'], ['josÃ©@example.com'], ['张伟@例え.jp']] },
    );
  });

  it('never give two distinct accepted identities the same user bytes, namespace, label, subscription scope or forwardAuth key', () => {
    fc.assert(
      fc.property(pair, ([a, b]) => {
        const [x, y] = [verified(a), verified(b)];
        fc.pre(x !== undefined && y !== undefined && a !== b);
        expect(Buffer.from(x!.username, 'utf8').equals(Buffer.from(y!.username, 'utf8'))).toBe(false);
        expect(userNamespace(x!.name)).not.toBe(userNamespace(y!.name));
        expect(userLabelValue(x!.name)).not.toBe(userLabelValue(y!.name));
        expect(subscriptionScope(x!)).not.toBe(subscriptionScope(y!));
        expect(forwardAuthKey(x!)).not.toBe(forwardAuthKey(y!));
      }),
      { numRuns: 3000, examples: knownTwins.filter(([[a, b]]) => verified(a) && verified(b)) },
    );
  });

  it('refuse, in every mapping, a name the verifier refuses for not being sendable as itself', () => {
    fc.assert(
      fc.property(fc.tuple(local, fc.constantFrom('\uD800', '\uDBFF', '\uDC00')), ([l, lone]) => {
        const n = `${l}${lone}@example.com`;
        fc.pre(!n.isWellFormed());
        expect(verified(n)).toBeUndefined();
        expect(() => userNamespace(n)).toThrow(RangeError);
        expect(() => userLabelValue(n)).toThrow(RangeError);
      }),
      { numRuns: 200 },
    );
  });

  it('gives every accepted identity a valid namespace and label value', () => {
    fc.assert(
      fc.property(name, (n) => {
        fc.pre(verified(n) !== undefined);
        expect(userNamespace(n)).toMatch(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/);
        expect(userLabelValue(n)).toMatch(/^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$/);
      }),
      { numRuns: 1000 },
    );
  });
});
