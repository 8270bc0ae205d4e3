import { describe, expect, it } from 'vitest';
import { ImpersonationEncodingError, LineDecoder } from './client.ts';
import { impersonationRecorder } from '../../test/support/impersonation-recorder.ts';

describe('LineDecoder', () => {
  const events = [
    { type: 'ADDED', object: { metadata: { name: 'büro' }, spec: { displayName: 'Büro-Desktop 🖥️ (日本語)' } } },
    { type: 'MODIFIED', object: { metadata: { name: 'two' } } },
  ];
  const bytes = Buffer.from(events.map((e) => JSON.stringify(e)).join('\n') + '\n\n');

  it('gives every line whole wherever the chunks split, inside multi-byte characters too', () => {
    for (let cut = 1; cut < bytes.length; cut++) {
      const lines = new LineDecoder();
      const got = [...lines.push(bytes.subarray(0, cut)), ...lines.push(bytes.subarray(cut))];
      expect(
        got.map((l) => JSON.parse(l)),
        `cut at ${cut}`,
      ).toEqual(events);
    }
  });

  it('holds a line until its newline arrives, one byte at a time', () => {
    const lines = new LineDecoder();
    const got: string[] = [];
    for (const byte of bytes) got.push(...lines.push(Buffer.from([byte])));
    expect(got.map((l) => JSON.parse(l))).toEqual(events);
  });
});

describe('impersonation headers', () => {
  it.each(['oidc:josé@example.com', 'oidc:josÃ©@example.com', 'oidc:张伟@例え.jp', 'oidc:emoji🖥️@example.com', 'oidc:alice@example.com'])(
    'carry the UTF-8 bytes of %j, so distinct names stay distinct on the wire',
    async (username) => {
      const { client, seen, close } = await impersonationRecorder();
      try {
        await client.get('/api', { username, groups: ['oidc:équipe', 'oidc:vdi-users'] });
        expect(seen[0]!.user.map((b) => b.toString('hex'))).toEqual([Buffer.from(username, 'utf8').toString('hex')]);
        expect(seen[0]!.groups.map((b) => b.toString('utf8'))).toEqual(['oidc:équipe', 'oidc:vdi-users']);
      } finally {
        await close();
      }
    },
  );

  it.each([
    ['a lone surrogate', 'oidc:jos\uD800@example.com'],
    ['a trailing space, which HTTP would trim', 'oidc:alice@example.com '],
    ['a line break', 'oidc:alice\r\nImpersonate-Group: system:masters'],
  ])('refuse a name with %s and send nothing', async (_case, username) => {
    const { client, seen, close } = await impersonationRecorder();
    try {
      await expect(client.get('/api', { username, groups: [] })).rejects.toBeInstanceOf(ImpersonationEncodingError);
      await expect(client.get('/api', { username: 'oidc:alice', groups: [username] })).rejects.toBeInstanceOf(ImpersonationEncodingError);
      expect(seen).toEqual([]);
    } finally {
      await close();
    }
  });
});
