// Human durations for a session's remaining time and age.

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/** `2 d 3 h`, `1 h 5 min`, `14 min`, `45 s` (rounded down; never negative). */
export function formatDuration(ms: number): string {
  const t = Math.max(0, ms);
  if (t >= DAY) return joinUnits(Math.floor(t / DAY), 'd', Math.floor((t % DAY) / HOUR), 'h');
  if (t >= HOUR) return joinUnits(Math.floor(t / HOUR), 'h', Math.floor((t % HOUR) / MINUTE), 'min');
  if (t >= MINUTE) return `${Math.floor(t / MINUTE)} min`;
  return `${Math.floor(t / 1000)} s`;
}

function joinUnits(a: number, unitA: string, b: number, unitB: string): string {
  return b ? `${a} ${unitA} ${b} ${unitB}` : `${a} ${unitA}`;
}

export interface TimeLeft {
  /** What to show: `7 h 59 min left`, `expiring now`. */
  text: string;
  ms: number;
  /** Less than 15 minutes: worth drawing attention to. */
  urgent: boolean;
}

/** Time until `expiresAt`, or undefined while the session has no expiry yet (it starts counting once running). */
export function timeLeft(expiresAt: string | null | undefined, now: number): TimeLeft | undefined {
  if (!expiresAt) return undefined;
  const end = Date.parse(expiresAt);
  if (Number.isNaN(end)) return undefined;
  const ms = end - now;
  if (ms <= 0) return { text: 'expiring now', ms: 0, urgent: true };
  return { text: `${formatDuration(ms)} left`, ms, urgent: ms < 15 * MINUTE };
}

/** How long ago `createdAt` was: `3 min`, `2 h 5 min`. */
export function age(createdAt: string, now: number): string {
  const t = Date.parse(createdAt);
  return Number.isNaN(t) ? '' : formatDuration(now - t);
}

/** How often the clock needs to tick for `left` to stay right to the unit shown. */
export function tickInterval(left: TimeLeft | undefined): number {
  if (!left) return HOUR;
  return left.ms < 2 * MINUTE ? 1000 : 15_000;
}
