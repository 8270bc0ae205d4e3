// The two value formats a launch form takes, with the same rules the service applies (operator/duration.ts
// and operator/quantity.ts), so a value the form accepts is one the service accepts. The dashboard may not
// import server code, hence this small copy.

const DURATION = /^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/;

/** Milliseconds of a duration such as `8h`, `90m` or `1h30m`; undefined when it is not one. */
export function parseDuration(text: string): number | undefined {
  const match = DURATION.exec(text);
  if (!match || text === '') return undefined;
  const [, h = '0', m = '0', s = '0'] = match;
  return ((Number(h) * 60 + Number(m)) * 60 + Number(s)) * 1000;
}

const QUANTITY = /^([+-]?(?:\d+(?:\.\d*)?|\.\d+))(Ki|Mi|Gi|Ti|Pi|Ei|[eE][+-]?\d+|n|u|m|k|M|G|T|P|E)?$/;
const MULTIPLIERS: Record<string, number> = {
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
  n: 1e-9,
  u: 1e-6,
  m: 1e-3,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
};

/** Bytes or cores of a Kubernetes quantity (`8Gi`, `500m`, `4`); undefined when it is not one. */
export function parseQuantity(text: string): number | undefined {
  const match = QUANTITY.exec(text);
  if (!match) return undefined;
  const [, digits = '', suffix = ''] = match;
  const factor = suffix === '' ? 1 : (MULTIPLIERS[suffix] ?? 10 ** Number(suffix.slice(1)));
  const value = Number(digits) * factor;
  return Number.isFinite(value) ? value : undefined;
}
