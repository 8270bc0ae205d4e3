import http from 'node:http';
import { KubeConfig } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { ImpersonationEncodingError, KubeClient, LineDecoder } from './client.ts';

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

/** Starts a server that records the raw bytes of each request's impersonation headers. */
async function recordingServer(): Promise<{ client: KubeClient; seen: { user: Buffer[]; groups: Buffer[] }[]; close: () => Promise<void> }> {
  const seen: { user: Buffer[]; groups: Buffer[] }[] = [];
  const server = http.createServer((req, res) => {
    // rawHeaders holds each value as Node read it: one character per byte.
    const bytes = (name: string) =>
      req.rawHeaders.flatMap((v, i) => (i % 2 === 0 && v.toLowerCase() === name ? [Buffer.from(req.rawHeaders[i + 1]!, 'latin1')] : []));
    seen.push({ user: bytes('impersonate-user'), groups: bytes('impersonate-group') });
    res.setHeader('content-type', 'application/json');
    res.end('{}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromOptions({
    clusters: [{ name: 'c', server: `http://127.0.0.1:${(server.address() as { port: number }).port}`, skipTLSVerify: true }],
    users: [{ name: 'u' }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
  return { client: new KubeClient(kubeConfig), seen, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

describe('impersonation headers', () => {
  it.each(['oidc:josé@example.com', 'oidc:josÃ©@example.com', 'oidc:张伟@例え.jp', 'oidc:emoji🖥️@example.com', 'oidc:alice@example.com'])(
    'carry the UTF-8 bytes of %j, so distinct names stay distinct on the wire',
    async (username) => {
      const { client, seen, close } = await recordingServer();
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
    const { client, seen, close } = await recordingServer();
    try {
      await expect(client.get('/api', { username, groups: [] })).rejects.toBeInstanceOf(ImpersonationEncodingError);
      await expect(client.get('/api', { username: 'oidc:alice', groups: [username] })).rejects.toBeInstanceOf(ImpersonationEncodingError);
      expect(seen).toEqual([]);
    } finally {
      await close();
    }
  });
});
