// Kubernetes resource quantities (`8Gi`, `500m`, `4`, `1.5`, `2G`, `1e3`) as plain numbers, for comparing a
// request against a template's maximum. Floating point is precise enough for "is A above B"; the original
// string is what gets written into objects, never a number turned back into text.

const QUANTITY = /^([+-]?(?:\d+(?:\.\d*)?|\.\d+))(Ki|Mi|Gi|Ti|Pi|Ei|[eE][+-]?\d+|n|u|m|k|M|G|T|P|E)?$/;

const MULTIPLIERS: Record<string, number> = {
  Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60,
  n: 1e-9, u: 1e-6, m: 1e-3, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18,
};

/** Bytes or cores, or undefined when `text` is not a Kubernetes quantity. */
export function parseQuantity(text: string): number | undefined {
  const match = QUANTITY.exec(text);
  if (!match) return undefined;
  const [, digits = '', suffix = ''] = match;
  const factor = suffix === '' ? 1 : (MULTIPLIERS[suffix] ?? 10 ** Number(suffix.slice(1)));
  const value = Number(digits) * factor;
  return Number.isFinite(value) ? value : undefined;
}
