import { describe, expect, it } from 'vitest';
import { parseQuantity } from './quantity.ts';

describe('parseQuantity', () => {
  it.each([
    ['8Gi', 8 * 2 ** 30],
    ['100Mi', 100 * 2 ** 20],
    ['2G', 2e9],
    ['500m', 0.5],
    ['4', 4],
    ['1.5', 1.5],
    ['.5', 0.5],
    ['1e3', 1000],
    ['1E', 1e18],
    ['1Ki', 1024],
    ['250k', 250_000],
  ])('reads %s as %d', (text, value) => {
    expect(parseQuantity(text)).toBeCloseTo(value);
  });

  it('orders binary and decimal suffixes correctly', () => {
    expect(parseQuantity('1Gi')!).toBeGreaterThan(parseQuantity('1G')!);
    expect(parseQuantity('1500m')!).toBeLessThan(parseQuantity('2')!);
  });

  it.each(['', 'abc', '8GB', '8gi', '8 Gi', 'Gi', '1.2.3', '0x10', '4 ', 'NaN', 'Infinity'])('rejects %j', (text) => {
    expect(parseQuantity(text)).toBeUndefined();
  });
});
