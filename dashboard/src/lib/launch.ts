// The launch options form: its defaults from a template, its validation (the service's rules and limits, in
// the words the service uses), and whether a launch fits the user's quota and the cluster's free GPU slices.
import type { CreateVdiSessionInput } from '../__generated__/graphql.ts';
import { parseDuration, parseQuantity } from './units.ts';

export interface LaunchTemplate {
  name: string;
  displayName: string;
  resources: { defaultGPU: number; maxGPU: number; defaultMemory: string; maxMemory?: string | null; defaultCPU: string; maxCPU?: string | null };
  defaultTimeout?: string | null;
  maxTimeout?: string | null;
  persistence?: { defaultEnabled: boolean; defaultSize?: string | null; maxSize?: string | null } | null;
}

export interface LaunchForm {
  gpu: string;
  memory: string;
  cpu: string;
  persistence: boolean;
  size: string;
  timeout: string;
}

export type LaunchErrors = Partial<Record<keyof LaunchForm, string>>;

export function defaultsFor(t: LaunchTemplate): LaunchForm {
  return {
    gpu: String(t.resources.defaultGPU),
    memory: t.resources.defaultMemory,
    cpu: t.resources.defaultCPU,
    persistence: t.persistence?.defaultEnabled ?? false,
    size: t.persistence?.defaultSize ?? '10Gi',
    timeout: t.defaultTimeout ?? '8h',
  };
}

export function validateLaunch(form: LaunchForm, t: LaunchTemplate): { errors: LaunchErrors; input?: CreateVdiSessionInput } {
  const errors: LaunchErrors = {};
  const r = t.resources;
  const gpu = /^\d+$/.test(form.gpu.trim()) ? Number(form.gpu.trim()) : undefined;
  if (gpu === undefined) errors.gpu = 'GPU slices must be a whole number, 0 or more.';
  else if (gpu > r.maxGPU) errors.gpu = `${gpu} GPU slices exceeds this template’s maximum of ${r.maxGPU}.`;

  const memory = form.memory.trim();
  errors.memory = quantityError('Memory', memory, 'a positive quantity such as 8Gi', r.maxMemory);
  const cpu = form.cpu.trim();
  errors.cpu = quantityError('CPU', cpu, 'a positive quantity such as 4 or 500m', r.maxCPU);
  const size = form.size.trim();
  if (form.persistence) errors.size = quantityError('Home volume size', size, 'a positive quantity such as 10Gi', t.persistence?.maxSize);

  const timeout = form.timeout.trim();
  const ms = parseDuration(timeout);
  if (!ms) errors.timeout = 'Timeout must be a duration such as 8h, 90m or 1h30m.';
  else if (t.maxTimeout && ms > (parseDuration(t.maxTimeout) ?? Infinity))
    errors.timeout = `${timeout} exceeds this template’s maximum of ${t.maxTimeout}.`;

  for (const k of Object.keys(errors) as (keyof LaunchForm)[]) if (!errors[k]) delete errors[k];
  if (Object.keys(errors).length) return { errors };
  return {
    errors,
    input: {
      template: t.name,
      resources: { gpu, memory, cpu },
      persistence: form.persistence ? { enabled: true, size } : { enabled: false },
      timeout,
    },
  };
}

function quantityError(label: string, value: string, expected: string, max: string | null | undefined): string | undefined {
  const amount = parseQuantity(value);
  if (amount === undefined || amount <= 0) return `${label} must be ${expected}.`;
  const maxAmount = max ? parseQuantity(max) : undefined;
  if (max && maxAmount !== undefined && amount > maxAmount) return `${label} ${value} exceeds this template’s maximum of ${max}.`;
  return undefined;
}

export interface QuotaView {
  sessions: { used: number; limit?: number | null };
  gpus: { used: number; limit?: number | null };
}

export interface CapacityView {
  freeSlices: number;
  nodes: { ready: boolean; slicesFree: number }[];
}

export interface Fit {
  /** The service would refuse the launch (QUOTA_EXCEEDED): say so and do not offer it. */
  blockers: string[];
  /** It would be accepted but wait (no node has the slices free now). */
  warnings: string[];
}

export function launchFit(gpu: number, quota: QuotaView | undefined, capacity: CapacityView | undefined): Fit {
  const blockers: string[] = [];
  const warnings: string[] = [];
  if (quota) {
    const { sessions, gpus } = quota;
    if (sessions.limit != null && sessions.used >= sessions.limit) {
      blockers.push(`You have ${sessions.used} of the ${sessions.limit} desktops your quota allows. End one first.`);
    }
    if (gpu > 0 && gpus.limit != null && gpus.used + gpu > gpus.limit) {
      // The service's own words (QUOTA_EXCEEDED from createVDISession).
      blockers.push(`This needs ${gpu} GPU slice(s); the quota allows ${gpus.limit} and ${gpus.used} are in use.`);
    }
  }
  if (capacity && gpu > 0 && !capacity.nodes.some((n) => n.ready && n.slicesFree >= gpu)) {
    warnings.push(
      capacity.freeSlices === 0
        ? 'No GPU slice is free in the cluster right now: the desktop will wait until one is.'
        : `No node has ${gpu} free GPU slice(s) right now: the desktop will wait until one does.`,
    );
  }
  return { blockers, warnings };
}
