import { describe, expect, it } from 'vitest';
import { decodeFields } from './etcd-grpc.ts';

describe('decodeFields', () => {
  it('reads varints (multi-byte included) and length-delimited fields', () => {
    // RangeResponse { header (1): { cluster_id (1): 1, revision (3): 300 }, count (4): 0 }
    const header = Buffer.from([0x08, 0x01, 0x18, 0xac, 0x02]);
    const msg = Buffer.from([0x0a, header.length, ...header, 0x20, 0x00]);
    const fields = decodeFields(msg);
    expect(fields.get(4)).toBe(0n);
    const inner = decodeFields(fields.get(1) as Buffer);
    expect(inner.get(1)).toBe(1n);
    expect(inner.get(3)).toBe(300n);
  });

  it('skips fixed-width fields', () => {
    const msg = Buffer.from([0x09, 1, 2, 3, 4, 5, 6, 7, 8, 0x15, 1, 2, 3, 4, 0x18, 0x05]);
    expect(decodeFields(msg).get(3)).toBe(5n);
  });
});
