import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KubeClient } from './client.ts';

let server: http.Server;
const received: string[] = [];
let answer: (res: http.ServerResponse) => void = (res) => res.end('{}');

beforeAll(async () => {
  server = http.createServer((req, res) => {
    received.push(`${req.method} ${req.url}`);
    answer(res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

function client(): KubeClient {
  const kc = new KubeConfig();
  kc.loadFromClusterAndUser({ name: 'c', server: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, skipTLSVerify: true }, { name: 'u' });
  return new KubeClient(kc);
}

describe('KubeClient.withSignal', () => {
  it('sends nothing once the signal has aborted, and fails with its reason', async () => {
    received.length = 0;
    const controller = new AbortController();
    const bound = client().withSignal(controller.signal);
    controller.abort(new Error('lease lost'));
    await expect(bound.create('/api/v1/namespaces/a/secrets', { kind: 'Secret' })).rejects.toThrow('lease lost');
    expect(received).toEqual([]);
  });

  it('cancels a request in flight when the signal aborts, and leaves the unbound client as it was', async () => {
    received.length = 0;
    const held: http.ServerResponse[] = [];
    answer = (res) => void held.push(res);
    const controller = new AbortController();
    const plain = client();
    const pending = plain.withSignal(controller.signal).delete('/api/v1/namespaces/a/pods/p');
    await expect.poll(() => received.length).toBe(1);
    controller.abort(new Error('lease lost'));
    await expect(pending).rejects.toMatchObject({ name: 'AbortError' });
    answer = (res) => res.setHeader('content-type', 'application/json').end('{"kind":"Pod"}');
    await expect(plain.get('/api/v1/namespaces/a/pods/p')).resolves.toEqual({ kind: 'Pod' });
    for (const res of held) res.end();
  });
});
