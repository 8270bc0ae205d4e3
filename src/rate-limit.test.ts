import { describe, expect, it } from 'vitest';
import { RateLimiter } from './rate-limit.ts';

describe('RateLimiter', () => {
  it('allows a burst up to the budget, then refuses until time refills it', () => {
    const limiter = new RateLimiter(3);
    const t = 1_000_000;
    expect([1, 2, 3, 4].map(() => limiter.take('alice', t))).toEqual([true, true, true, false]);
    expect(limiter.take('alice', t + 20_000)).toBe(true);
    expect(limiter.take('alice', t + 20_000)).toBe(false);
  });

  it('keeps users apart', () => {
    const limiter = new RateLimiter(1);
    expect(limiter.take('alice', 0)).toBe(true);
    expect(limiter.take('bob', 0)).toBe(true);
    expect(limiter.take('alice', 0)).toBe(false);
  });
});
