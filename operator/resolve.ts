// Turns a session's request plus its template into the effective settings of the desktop, or the reason it
// cannot have one. Pure: the reconciler writes the failure into status and builds children from `effective`;
// the API runs the same rules before it creates a session, counts quota with them and reports them over
// GraphQL, so a number shown anywhere is the number the pod gets.
import type { ReconcilerConfig } from './config.ts';
import { parseDuration } from '../formats/duration.ts';
import { parseQuantity, quantityText } from '../formats/quantity.ts';
import type { Quantity, VDISession, VDITemplate, VDITemplateSpec } from './v1alpha1.ts';

export type Encoder = NonNullable<VDITemplateSpec['encoder']>;

/**
 * The most GPU time-slices one desktop can hold. Time-slicing gives a pod no more of a GPU for a second slice,
 * and with failRequestsGreaterThanOne (deploy/manifests/time-slicing-config.yaml) the device plugin refuses a
 * pod asking for more than one (UnexpectedAdmissionError) after the scheduler has placed it. The CRDs' bounds
 * agree (test/unit/gpu-model.test.ts holds the manifest, the CRDs and this number together).
 */
export const MAX_GPU_SLICES_PER_DESKTOP = 1;

export interface EffectiveSession {
  /** GPU time-slices; 0 is a CPU-only desktop. */
  gpu: number;
  /** Quantities as written by the user or template (e.g. `8Gi`, `4`), ready to go into a pod. */
  memory: string;
  cpu: string;
  persistence: { enabled: boolean; size: string };
  timeoutMs: number;
  idle: IdlePolicy;
  encoder: Encoder;
}

/** When an unwatched desktop is stopped (operator/idle.ts applies it). */
export interface IdlePolicy {
  /** Stop after this long without a client; undefined: never for idleness. */
  timeoutMs: number | undefined;
  /** Warn this long before a stop. */
  warningMs: number;
  /** Stop after this long running, clients or not; undefined: no limit. */
  maxAgeMs: number | undefined;
}

/** The warning's lead time when the template names none. */
export const DEFAULT_IDLE_WARNING = '5m';

export type ResolveFailureReason = 'TemplateNotFound' | 'ExceedsTemplateLimits' | 'InvalidSpec' | 'InvalidTemplate';

export type Resolution =
  { ok: true; effective: EffectiveSession } | { ok: false; phase: 'Pending' | 'Failed'; reason: ResolveFailureReason; message: string };

/** Used where neither the session nor its template says anything. */
const FALLBACK = { gpu: 1, memory: '8Gi', cpu: '4', persistenceSize: '10Gi' } as const;

/** One setting of a template: what a session that asks for nothing gets, and the most it may ask for. */
export interface Limit<V> {
  default: V;
  max: V | undefined;
  /** How messages name the default: the template's field, or undefined for the built-in fallback. */
  defaultFrom: string | undefined;
  /** How messages name the maximum, e.g. `the VDITemplate "ubuntu" resources.maxGPU 2`. */
  maxFrom: string | undefined;
}

export interface SessionLimits {
  gpu: Limit<number>;
  memory: Limit<Quantity>;
  cpu: Limit<Quantity>;
  timeout: Limit<string>;
  persistence: { defaultEnabled: boolean; size: Limit<Quantity> };
  idle: {
    /** Undefined when the template has no idle timeout: sessions are not stopped for idleness unless they ask. */
    timeout: Limit<string> | undefined;
    warning: string;
    maxAge: string | undefined;
  };
}

/**
 * The defaults and maxima of sessions started from `template`: the one place they are computed, for the
 * reconciler (through resolveSession), the API's checks and the template's GraphQL view alike. Values are as
 * the template writes them; resolveSession judges whether they are valid.
 */
export function sessionLimits(template: VDITemplate, config: ReconcilerConfig): SessionLimits {
  const resources = template.spec.resources ?? {};
  const storage = template.spec.persistence ?? {};
  const idle = template.spec.idle ?? {};
  const source = `VDITemplate "${template.metadata.name ?? ''}"`;
  const limit = <V extends Quantity>(
    templateDefault: V | undefined,
    defaultField: string,
    fallback: V,
    max: V | undefined,
    maxField: string,
    parse: (value: V) => number | undefined,
  ): Limit<V> => {
    // The built-in fallback yields to a smaller template maximum: a session that asked for nothing should run.
    const fallbackAmount = parse(fallback);
    const maxAmount = max === undefined ? undefined : parse(max);
    const yielded = max !== undefined && maxAmount !== undefined && fallbackAmount !== undefined && fallbackAmount > maxAmount;
    return {
      default: templateDefault ?? (yielded ? max : fallback),
      max,
      defaultFrom: templateDefault === undefined ? undefined : `${source} ${defaultField}`,
      maxFrom: max === undefined ? undefined : `the ${source} ${maxField} ${quantityText(max)}`,
    };
  };

  const templateMaxGpu = resources.maxGPU;
  const gpuCapped = templateMaxGpu === undefined || (Number.isInteger(templateMaxGpu) && templateMaxGpu > MAX_GPU_SLICES_PER_DESKTOP);
  const gpu = limit(
    resources.defaultGPU,
    'resources.defaultGPU',
    FALLBACK.gpu,
    gpuCapped ? MAX_GPU_SLICES_PER_DESKTOP : templateMaxGpu,
    'resources.maxGPU',
    wholeNumber,
  );
  if (gpuCapped) {
    gpu.maxFrom = `${MAX_GPU_SLICES_PER_DESKTOP}, the most GPU time-slices a desktop can use (a second slice of a GPU adds nothing, and the device plugin refuses it)`;
  }

  return {
    gpu,
    memory: limit(resources.defaultMemory, 'resources.defaultMemory', FALLBACK.memory, resources.maxMemory, 'resources.maxMemory', positiveQuantity),
    cpu: limit(resources.defaultCPU, 'resources.defaultCPU', FALLBACK.cpu, resources.maxCPU, 'resources.maxCPU', positiveQuantity),
    timeout: limit(
      template.spec.defaultTimeout,
      'defaultTimeout',
      config.defaultSessionTimeout,
      template.spec.maxTimeout,
      'maxTimeout',
      positiveDuration,
    ),
    persistence: {
      defaultEnabled: storage.defaultEnabled ?? false,
      size: limit(storage.defaultSize, 'persistence.defaultSize', FALLBACK.persistenceSize, storage.maxSize, 'persistence.maxSize', positiveQuantity),
    },
    idle: {
      // A template with only a maximum idle timeout stops its sessions at that maximum.
      timeout:
        idle.defaultTimeout === undefined && idle.maxTimeout === undefined
          ? undefined
          : {
              default: idle.defaultTimeout ?? idle.maxTimeout!,
              max: idle.maxTimeout,
              defaultFrom: `${source} ${idle.defaultTimeout === undefined ? 'idle.maxTimeout' : 'idle.defaultTimeout'}`,
              maxFrom: idle.maxTimeout === undefined ? undefined : `the ${source} idle.maxTimeout ${idle.maxTimeout}`,
            },
      warning: idle.warning ?? DEFAULT_IDLE_WARNING,
      maxAge: idle.maxAge,
    },
  };
}

export function resolveSession(session: VDISession, template: VDITemplate | undefined, config: ReconcilerConfig): Resolution {
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

/** GPU slices the session's desktop holds or will hold: 0 when it cannot have a desktop (yet). */
export function sessionGpuSlices(session: VDISession, template: VDITemplate | undefined, config: ReconcilerConfig): number {
  const resolution = resolveSession(session, template, config);
  return resolution.ok ? resolution.effective.gpu : 0;
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
  const limits = sessionLimits(template, config);

  const gpu = choose(limits.gpu, requested.gpu, 'spec.resources.gpu', wholeNumber, 'a whole number of GPUs, 0 or more');
  const memory = choose(limits.memory, requested.memory, 'spec.resources.memory', positiveQuantity, 'a positive quantity such as 8Gi');
  const cpu = choose(limits.cpu, requested.cpu, 'spec.resources.cpu', positiveQuantity, 'a positive quantity such as 4 or 500m');
  const timeout = choose(limits.timeout, session.spec.timeout, 'spec.timeout', positiveDuration, 'a positive duration such as 8h or 1h30m');
  const idle = idlePolicy(session, limits.idle);

  const enabled = session.spec.persistence?.enabled ?? limits.persistence.defaultEnabled;
  const sizeRequest = session.spec.persistence?.size;
  // A disabled home volume has no size worth rejecting a session over.
  const size = enabled
    ? choose(limits.persistence.size, sizeRequest, 'spec.persistence.size', positiveQuantity, 'a positive quantity such as 10Gi').value
    : (sizeRequest ?? limits.persistence.size.default);

  return {
    gpu: gpu.value,
    memory: quantityText(memory.value),
    cpu: quantityText(cpu.value),
    persistence: { enabled, size: quantityText(size) },
    timeoutMs: timeout.amount,
    idle,
    // NVENC needs a GPU; a CPU-only desktop must encode in software whatever the template prefers.
    encoder: gpu.value > 0 ? (template.spec.encoder ?? 'nvh264enc') : 'x264enc',
  };
}

function idlePolicy(session: VDISession, limits: SessionLimits['idle']): IdlePolicy {
  const expected = 'a positive duration such as 30m or 1h';
  const requested = session.spec.idleTimeout;
  let timeoutMs: number | undefined;
  if (limits.timeout) timeoutMs = choose(limits.timeout, requested, 'spec.idleTimeout', positiveDuration, expected).amount;
  else if (requested !== undefined) {
    // The template stops nobody for idleness; a session may still ask to be stopped (its user's choice).
    timeoutMs = positiveDuration(requested);
    if (timeoutMs === undefined) throw new Rejection('InvalidSpec', `spec.idleTimeout "${requested}" is not ${expected}`);
  }
  const templateDuration = (value: string | undefined, field: string): number | undefined => {
    if (value === undefined) return undefined;
    const ms = positiveDuration(value);
    if (ms === undefined) throw new Rejection('InvalidTemplate', `the VDITemplate idle.${field} "${value}" is not ${expected}`);
    return ms;
  };
  return { timeoutMs, warningMs: templateDuration(limits.warning, 'warning')!, maxAgeMs: templateDuration(limits.maxAge, 'maxAge') };
}

/** The session's value, else the limit's default; checked against the limit's maximum. */
function choose<V extends Quantity>(
  limit: Limit<V>,
  requested: V | undefined,
  field: string,
  parse: (value: V) => number | undefined,
  expected: string,
): { value: V; amount: number } {
  const maxAmount = limit.max === undefined ? undefined : parse(limit.max);
  if (limit.max !== undefined && maxAmount === undefined) {
    throw new Rejection('InvalidTemplate', `${limit.maxFrom ?? 'the maximum'} is not ${expected}`);
  }
  if (requested !== undefined) return bounded(requested, field, 'InvalidSpec');
  return limit.defaultFrom === undefined
    ? bounded(limit.default, field, 'InvalidSpec')
    : bounded(limit.default, limit.defaultFrom, 'InvalidTemplate');

  function bounded(value: V, name: string, invalid: ResolveFailureReason): { value: V; amount: number } {
    const amount = parse(value);
    if (amount === undefined) throw new Rejection(invalid, `${name} "${quantityText(value)}" is not ${expected}`);
    if (maxAmount !== undefined && amount > maxAmount) {
      throw new Rejection('ExceedsTemplateLimits', `${name} ${quantityText(value)} exceeds ${limit.maxFrom}`);
    }
    return { value, amount };
  }
}

function wholeNumber(value: Quantity): number | undefined {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 ? value : undefined;
}

function positiveQuantity(value: Quantity): number | undefined {
  const amount = parseQuantity(value);
  return amount !== undefined && amount > 0 ? amount : undefined;
}

function positiveDuration(value: Quantity): number | undefined {
  const ms = typeof value === 'string' ? parseDuration(value) : undefined;
  return ms !== undefined && ms > 0 ? ms : undefined;
}
