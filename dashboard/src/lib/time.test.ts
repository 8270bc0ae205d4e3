import { describe, expect, it } from 'vitest';
import { age, formatDuration, tickInterval, timeLeft } from './time.ts';

const NOW = Date.parse('2026-11-01T12:00:00Z');
const inMs = (ms: number) => new Date(NOW + ms).toISOString();

describe('formatDuration', () => {
  it('uses the two largest units', () => {
    expect(formatDuration(2 * 86_400_000 + 3 * 3_600_000 + 59_000)).toBe('2 d 3 h');
    expect(formatDuration(7 * 3_600_000 + 59 * 60_000 + 59_000)).toBe('7 h 59 min');
    expect(formatDuration(3_600_000)).toBe('1 h');
    expect(formatDuration(14 * 60_000 + 30_000)).toBe('14 min');
    expect(formatDuration(45_900)).toBe('45 s');
  });

  it('never goes negative', () => {
    expect(formatDuration(-5000)).toBe('0 s');
  });
});

describe('timeLeft', () => {
  it('counts down to expiresAt', () => {
    expect(timeLeft(inMs(8 * 3_600_000), NOW)).toEqual({ text: '8 h left', ms: 8 * 3_600_000, urgent: false });
  });

  it('flags the last quarter of an hour as urgent', () => {
    expect(timeLeft(inMs(10 * 60_000), NOW)).toMatchObject({ text: '10 min left', urgent: true });
  });

  it('says expiring now once the time has passed', () => {
    expect(timeLeft(inMs(-1000), NOW)).toEqual({ text: 'expiring now', ms: 0, urgent: true });
  });

  it('has nothing to say before the session has an expiry', () => {
    expect(timeLeft(null, NOW)).toBeUndefined();
    expect(timeLeft('not a date', NOW)).toBeUndefined();
  });

  it('ticks every second only in the last two minutes', () => {
    expect(tickInterval(timeLeft(inMs(90_000), NOW))).toBe(1000);
    expect(tickInterval(timeLeft(inMs(3_600_000), NOW))).toBe(15_000);
  });
});

describe('age', () => {
  it('is the time since creation', () => {
    expect(age(inMs(-125 * 60_000), NOW)).toBe('2 h 5 min');
  });
});
