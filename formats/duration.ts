// Go-style durations restricted to whole hours, minutes and seconds (`8h`, `90m`, `1h30m`, `45s`): the only
// forms session timeouts need. Anything else (fractions, ms/us/ns, signs, repeated or out-of-order units) is
// rejected rather than guessed at, so a typo in a spec fails loudly instead of becoming a surprising timeout.

const DURATION = /^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/;

/** Milliseconds, or undefined when `text` is not a duration of the accepted form. */
export function parseDuration(text: string): number | undefined {
  const match = DURATION.exec(text);
  if (!match || text === '') return undefined;
  const [, h = '0', m = '0', s = '0'] = match;
  const ms = ((Number(h) * 60 + Number(m)) * 60 + Number(s)) * 1000;
  return Number.isSafeInteger(ms) ? ms : undefined;
}

/** The shortest h/m/s form of `ms` (rounded down to whole seconds), e.g. 5_400_000 → `1h30m`; 0 → `0s`. */
export function formatDuration(ms: number): string {
  const total = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  const text = `${h ? `${h}h` : ''}${m ? `${m}m` : ''}${s ? `${s}s` : ''}`;
  return text || '0s';
}
