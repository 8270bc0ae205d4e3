// Per-user request budget (a token bucket refilled continuously), so one client cannot starve the others or
// turn a login burst into an apiserver storm.
export class RateLimiter {
  private readonly perMinute: number;
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(perMinute: number) {
    this.perMinute = perMinute;
  }

  /** Takes one request from the user's budget; false when it is spent. */
  take(user: string, now = Date.now()): boolean {
    const b = this.buckets.get(user) ?? { tokens: this.perMinute, at: now };
    b.tokens = Math.min(this.perMinute, b.tokens + ((now - b.at) * this.perMinute) / 60_000);
    b.at = now;
    const ok = b.tokens >= 1;
    if (ok) b.tokens -= 1;
    this.buckets.set(user, b);
    if (this.buckets.size > 100_000) this.buckets.delete(this.buckets.keys().next().value!);
    return ok;
  }
}
