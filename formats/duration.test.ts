import { describe, expect, it } from 'vitest';
import { formatDuration, parseDuration } from './duration.ts';

describe('parseDuration', () => {
  it.each([
    ['8h', 8 * 3_600_000],
    ['90m', 90 * 60_000],
    ['1h30m', 90 * 60_000],
    ['45s', 45_000],
    ['2h0m5s', 7_205_000],
    ['0s', 0],
  ])('reads %s as %i ms', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it.each(['', '8', '1.5h', '-1h', '30m1h', '1h1h', '100ms', '1d', ' 8h', '8H', 'h', '1e3s', '99999999999999999999h'])('rejects %j', (text) => {
    expect(parseDuration(text)).toBeUndefined();
  });
});

describe('formatDuration', () => {
  it.each([
    [8 * 3_600_000, '8h'],
    [90 * 60_000, '1h30m'],
    [45_000, '45s'],
    [3_661_000, '1h1m1s'],
    [0, '0s'],
    [1_999, '1s'],
  ])('writes %i ms as %s', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });

  it('round-trips what it writes', () => {
    for (const ms of [1_000, 59_000, 3_600_000, 5_400_000, 86_399_000]) {
      expect(parseDuration(formatDuration(ms))).toBe(ms);
    }
  });
});
