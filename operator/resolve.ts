// Turns a session's request plus its template into the effective settings of the desktop, or the reason it
// cannot have one. Pure: the reconciler writes the failure into status and builds children from `effective`.
import type { ReconcilerConfig } from './config.ts';
import { parseDuration } from './duration.ts';
import { parseQuantity } from './quantity.ts';
import type { VDISession, VDITemplate, VDITemplateSpec } from './v1alpha1.ts';

export type Encoder = NonNullable<VDITemplateSpec['encoder']>;

export interface EffectiveSession {
  /** GPU time-slices; 0 is a CPU-only desktop. */
  gpu: number;
  /** Quantities as written by the user or template (e.g. `8Gi`, `4`), ready to go into a pod. */
  memory: string;
  cpu: string;
  persistence: { enabled: boolean; size: string };
  timeoutMs: number;
  encoder: Encoder;
}

export type ResolveFailureReason = 'TemplateNotFound' | 'ExceedsTemplateLimits' | 'InvalidSpec' | 'InvalidTemplate';

export type Resolution =
  | { ok: true; effective: EffectiveSession }
  | { ok: false; phase: 'Pending' | 'Failed'; reason: ResolveFailureReason; message: string };

const FALLBACK = { gpu: 1, memory: '8Gi', cpu: '4', persistenceSize: '10Gi' } as const;

export function resolveSession(
  session: VDISession,
  template: VDITemplate | undefined,
  config: ReconcilerConfig,
): Resolution {
  if (!template) {
    // Not Failed: the template may simply not have been created yet; the reconciler retries.
    return {
      ok: false,
      phase: 'Pending',
      reason: 'TemplateNotFound',
      message: `VDITemplate "${session.spec.template}" not found`,
    };
  }
  try {
    return { ok: true, effective: effectiveSettings(session, template, config) };
  } catch (error) {
    if (!(error instanceof Rejection)) throw error;
    return { ok: false, phase: 'Failed', reason: error.reason, message: error.message };
  }
}

class Rejection extends Error {
  reason: ResolveFailureReason;
  constructor(reason: ResolveFailureReason, message: string) {
    super(message);
    this.reason = reason;
  }
}

function effectiveSettings(session: VDISession, template: VDITemplate, config: ReconcilerConfig): EffectiveSession {
  const requested = session.spec.resources ?? {};
  const limits = template.spec.resources ?? {};
  const storage = template.spec.persistence ?? {};
  const source = `VDITemplate "${template.metadata.name ?? session.spec.template}"`;

  const gpu = pick({
    source, requested: requested.gpu, field: 'spec.resources.gpu',
    templateDefault: limits.defaultGPU, defaultField: 'resources.defaultGPU', fallback: FALLBACK.gpu,
    max: limits.maxGPU, maxField: 'resources.maxGPU',
    parse: wholeNumber, expected: 'a whole number of GPUs, 0 or more',
  });
  const memory = pick({
    source, requested: requested.memory, field: 'spec.resources.memory',
    templateDefault: limits.defaultMemory, defaultField: 'resources.defaultMemory', fallback: FALLBACK.memory,
    max: limits.maxMemory, maxField: 'resources.maxMemory',
    parse: positiveQuantity, expected: 'a positive quantity such as 8Gi',
  });
  const cpu = pick({
    source, requested: requested.cpu, field: 'spec.resources.cpu',
    templateDefault: limits.defaultCPU, defaultField: 'resources.defaultCPU', fallback: FALLBACK.cpu,
    max: limits.maxCPU, maxField: 'resources.maxCPU',
    parse: positiveQuantity, expected: 'a positive quantity such as 4 or 500m',
  });
  const timeout = pick({
    source, requested: session.spec.timeout, field: 'spec.timeout',
    templateDefault: template.spec.defaultTimeout, defaultField: 'defaultTimeout',
    fallback: config.defaultSessionTimeout,
    max: template.spec.maxTimeout, maxField: 'maxTimeout',
    parse: positiveDuration, expected: 'a positive duration such as 8h or 1h30m',
  });

  const enabled = session.spec.persistence?.enabled ?? storage.defaultEnabled ?? false;
  const sizeRequest = session.spec.persistence?.size;
  // A disabled home volume has no size worth rejecting a session over.
  const size = enabled
    ? pick({
        source, requested: sizeRequest, field: 'spec.persistence.size',
        templateDefault: storage.defaultSize, defaultField: 'persistence.defaultSize',
        fallback: FALLBACK.persistenceSize,
        max: storage.maxSize, maxField: 'persistence.maxSize',
        parse: positiveQuantity, expected: 'a positive quantity such as 10Gi',
      }).value
    : (sizeRequest ?? storage.defaultSize ?? FALLBACK.persistenceSize);

  return {
    gpu: gpu.value,
    memory: memory.value,
    cpu: cpu.value,
    persistence: { enabled, size },
    timeoutMs: timeout.amount,
    // NVENC needs a GPU; a CPU-only desktop must encode in software whatever the template prefers.
    encoder: gpu.value > 0 ? (template.spec.encoder ?? 'nvh264enc') : 'x264enc',
  };
}

interface Choice<V> {
  /** How messages name the template. */
  source: string;
  requested: V | undefined;
  field: string;
  templateDefault: V | undefined;
  defaultField: string;
  fallback: V;
  max: V | undefined;
  maxField: string;
  /** The comparable amount, or undefined when the value is invalid. */
  parse: (value: V) => number | undefined;
  expected: string;
}

/** The session's value, else the template's default, else the built-in fallback; checked against the max. */
function pick<V extends string | number>(choice: Choice<V>): { value: V; amount: number } {
  const { source, requested, field, templateDefault, defaultField, fallback, max, maxField, parse, expected } = choice;
  const maxAmount = max === undefined ? undefined : parse(max);
  if (max !== undefined && maxAmount === undefined) {
    throw new Rejection('InvalidTemplate', `${source} ${maxField} "${max}" is not ${expected}`);
  }
  if (requested !== undefined) return bounded(requested, field, 'InvalidSpec');
  if (templateDefault !== undefined) return bounded(templateDefault, `${source} ${defaultField}`, 'InvalidTemplate');
  // The built-in fallback yields to a smaller template maximum: a session that asked for nothing should run.
  const fallbackAmount = parse(fallback);
  if (max !== undefined && maxAmount !== undefined && fallbackAmount !== undefined && fallbackAmount > maxAmount) {
    return { value: max, amount: maxAmount };
  }
  return bounded(fallback, field, 'InvalidSpec');

  function bounded(value: V, name: string, invalid: ResolveFailureReason): { value: V; amount: number } {
    const amount = parse(value);
    if (amount === undefined) throw new Rejection(invalid, `${name} "${value}" is not ${expected}`);
    if (maxAmount !== undefined && amount > maxAmount) {
      throw new Rejection('ExceedsTemplateLimits', `${name} ${value} exceeds the ${source} ${maxField} ${max}`);
    }
    return { value, amount };
  }
}

function wholeNumber(value: string | number): number | undefined {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 ? value : undefined;
}

function positiveQuantity(value: string | number): number | undefined {
  const amount = typeof value === 'string' ? parseQuantity(value) : undefined;
  return amount !== undefined && amount > 0 ? amount : undefined;
}

function positiveDuration(value: string | number): number | undefined {
  const ms = typeof value === 'string' ? parseDuration(value) : undefined;
  return ms !== undefined && ms > 0 ? ms : undefined;
}
