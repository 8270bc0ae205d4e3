import { describe, expect, it } from 'vitest';
import { LineDecoder } from './client.ts';

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
      expect(got.map((l) => JSON.parse(l)), `cut at ${cut}`).toEqual(events);
    }
  });

  it('holds a line until its newline arrives, one byte at a time', () => {
    const lines = new LineDecoder();
    const got: string[] = [];
    for (const byte of bytes) got.push(...lines.push(Buffer.from([byte])));
    expect(got.map((l) => JSON.parse(l))).toEqual(events);
  });
});
