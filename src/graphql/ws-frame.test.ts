import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer, type ServerOptions } from 'ws';
import { sendText, textFrame } from './ws-frame.ts';

const open: { close(): void }[] = [];
afterEach(() => {
  for (const thing of open.splice(0)) thing.close();
});

/** A real ws server and client on loopback; returns the server side of the connection and the client. */
async function pair(options: Partial<ServerOptions> = {}, clientOptions: WebSocket.ClientOptions = {}) {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', ...options });
  open.push(wss);
  await once(wss, 'listening');
  const accepted = once(wss, 'connection') as Promise<[WebSocket]>;
  const client = new WebSocket(`ws://127.0.0.1:${(wss.address() as AddressInfo).port}`, clientOptions);
  open.push(client);
  const [server] = await accepted;
  await once(client, 'open');
  return { server, client };
}

/** The next n messages the client receives, as text, failing on a binary one or a frame it rejects. */
function received(client: WebSocket, n: number): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const messages: string[] = [];
    client.on('error', reject);
    client.on('close', (code) => reject(new Error(`closed with ${code} after ${messages.length} messages`)));
    client.on('message', (data, isBinary) => {
      if (isBinary) reject(new Error('binary message'));
      messages.push(String(data));
      if (messages.length === n) resolve(messages);
    });
  });
}

describe('textFrame', () => {
  it('encodes each payload length class of RFC 6455 (7-bit, 16-bit, 64-bit) as a client decodes it', async () => {
    const { server, client } = await pair();
    const texts = [0, 5, 125, 126, 65_535, 65_536, 70_000].map((n) => 'é'.repeat(n >> 1) + 'x'.repeat(n & 1));
    const got = received(client, texts.length);
    for (const text of texts) sendText(server, [Buffer.from(text)]);
    expect(await got).toEqual(texts);
  });

  it('joins the parts in order into one frame', () => {
    const frame = textFrame([Buffer.from('{"id":"a",'), Buffer.from('"x":1'), Buffer.from('}')]);
    expect(frame.subarray(0, 2)).toEqual(Buffer.from([0x81, 16]));
    expect(frame.subarray(2).toString()).toBe('{"id":"a","x":1}');
  });
});

describe('sendText', () => {
  it('writes each message to the socket in a single write with the installed ws', async () => {
    const { server, client } = await pair();
    const socket = (server as unknown as { _socket: { write: (...a: unknown[]) => boolean } })._socket;
    const writes: unknown[] = [];
    const write = socket.write.bind(socket);
    socket.write = (...args: unknown[]) => (writes.push(args[0]), write(...args));
    const got = received(client, 2);
    expect(sendText(server, [Buffer.from('{"a":'), Buffer.from('1}')])).toBe(true);
    expect(sendText(server, [Buffer.from('two')])).toBe(true);
    expect(await got).toEqual(['{"a":1}', 'two']);
    expect(writes).toHaveLength(2);
  });

  it('keeps the order of messages sent by ws itself around it', async () => {
    const { server, client } = await pair();
    const got = received(client, 4);
    server.send('one');
    sendText(server, [Buffer.from('two')]);
    server.send('three');
    sendText(server, [Buffer.from('four')]);
    expect(await got).toEqual(['one', 'two', 'three', 'four']);
  });

  it('goes through ws, behind its queue, while ws is still reading a Blob it was given', async () => {
    const { server, client } = await pair();
    const got = received(client, 2);
    server.send(new Blob(['first']), { binary: false });
    expect(sendText(server, [Buffer.from('second')])).toBe(false);
    expect(await got).toEqual(['first', 'second']);
  });

  it('goes through ws when an extension is negotiated (compression changes the frame)', async () => {
    const { server, client } = await pair({ perMessageDeflate: { threshold: 0 } }, { perMessageDeflate: true });
    expect(server.extensions).toBe('permessage-deflate');
    const got = received(client, 2);
    expect(sendText(server, [Buffer.from('compressed '), Buffer.from('x'.repeat(2000))])).toBe(false);
    expect(sendText(server, [Buffer.from('after')])).toBe(false);
    expect(await got).toEqual([`compressed ${'x'.repeat(2000)}`, 'after']);
  });
});
