// Kubernetes resource quantities (`8Gi`, `500m`, `4`, `1.5`, `2G`, `1e3`) as plain numbers, for comparing a
// request against a template's maximum. Floating point is precise enough for "is A above B"; the text written
// into objects is the user's own (quantityText), never a number turned back into text with a suffix.

/**
 * A Kubernetes resource quantity as the apiserver stores it: `8Gi` and `"4"` are strings, while a plain YAML
 * integer (`cpu: 2`) arrives as a number (the CRDs declare these fields int-or-string, as Kubernetes does).
 */
export type Quantity = string | number;

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

/**
 * Bytes or cores, or undefined when `value` is not a Kubernetes quantity. An integer is one (a YAML `cpu: 2`
 * reaches us as the number 2, as the CRDs' int-or-string fields allow); other numbers are not, as for the
 * apiserver.
 */
export function parseQuantity(value: Quantity): number | undefined {
  if (typeof value === 'number') return Number.isSafeInteger(value) ? value : undefined;
  const match = QUANTITY.exec(value);
  if (!match) return undefined;
  const [, digits = '', suffix = ''] = match;
  const factor = suffix === '' ? 1 : (MULTIPLIERS[suffix] ?? 10 ** Number(suffix.slice(1)));
  const amount = Number(digits) * factor;
  return Number.isFinite(amount) ? amount : undefined;
}

/** The quantity as the text a pod, a PVC or a GraphQL client gets: `2` for the integer 2, strings unchanged. */
export function quantityText(value: Quantity): string {
  return typeof value === 'number' ? String(value) : value;
}
