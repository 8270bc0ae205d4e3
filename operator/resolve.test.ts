import { describe, expect, it } from 'vitest';
import { MAX_GPU_SLICES_PER_DESKTOP, resolveSession, sessionGpuSlices, sessionLimits } from './resolve.ts';
import type { VDISession, VDISessionSpec, VDITemplate, VDITemplateSpec } from './v1alpha1.ts';
import { testReconcilerConfig } from '../test/support/reconciler-config.ts';

const config = testReconcilerConfig();

function session(spec: Partial<VDISessionSpec> = {}): VDISession {
  return {
    apiVersion: 'vdi.kasm.io/v1alpha1',
    kind: 'VDISession',
    metadata: { name: 'desk', namespace: 'team-a', uid: 'uid-1' },
    spec: { user: 'alice@example.com', template: 'ubuntu', ...spec },
  };
}

function template(spec: Partial<VDITemplateSpec> = {}): VDITemplate {
  return {
    apiVersion: 'vdi.kasm.io/v1alpha1',
    kind: 'VDITemplate',
    metadata: { name: 'ubuntu', namespace: 'team-a' },
    spec: { image: 'ghcr.io/selkies-project/nvidia-egl-desktop:24.04-20241222100454', displayName: 'Ubuntu', ...spec },
  };
}

function resolved(s: VDISession, t: VDITemplate) {
  const result = resolveSession(s, t, config);
  if (!result.ok) throw new Error(`expected success, got ${result.reason}: ${result.message}`);
  return result.effective;
}

describe('resolveSession', () => {
  it('waits (Pending, TemplateNotFound) when the template does not exist yet', () => {
    expect(resolveSession(session(), undefined, config)).toMatchObject({
      ok: false,
      phase: 'Pending',
      reason: 'TemplateNotFound',
      message: expect.stringContaining('ubuntu'),
    });
  });

  it('uses the built-in defaults when neither session nor template says anything', () => {
    expect(resolved(session(), template())).toEqual({
      gpu: 1,
      memory: '8Gi',
      cpu: '4',
      persistence: { enabled: false, size: '10Gi' },
      timeoutMs: 8 * 3_600_000,
      idle: { timeoutMs: undefined, warningMs: 5 * 60_000, maxAgeMs: undefined },
      encoder: 'nvh264enc',
    });
  });

  it("uses the template's defaults over the built-in ones", () => {
    const t = template({
      resources: { defaultGPU: 0, defaultMemory: '4Gi', defaultCPU: '2' },
      defaultTimeout: '2h',
      persistence: { defaultEnabled: true, defaultSize: '20Gi' },
    });
    expect(resolved(session(), t)).toMatchObject({
      gpu: 0,
      memory: '4Gi',
      cpu: '2',
      timeoutMs: 2 * 3_600_000,
      persistence: { enabled: true, size: '20Gi' },
    });
  });

  it("uses the session's values over the template's", () => {
    const t = template({ resources: { defaultMemory: '4Gi', maxMemory: '16Gi' }, persistence: { defaultEnabled: true } });
    const s = session({ resources: { memory: '12Gi', cpu: '6' }, timeout: '1h30m', persistence: { enabled: false } });
    expect(resolved(s, t)).toMatchObject({ memory: '12Gi', cpu: '6', timeoutMs: 90 * 60_000, persistence: { enabled: false } });
  });

  it('a session asking for 1 GPU on a max-0 template fails with ExceedsTemplateLimits', () => {
    const result = resolveSession(session({ resources: { gpu: 1 } }), template({ resources: { maxGPU: 0 } }), config);
    expect(result).toMatchObject({ ok: false, phase: 'Failed', reason: 'ExceedsTemplateLimits' });
    if (!result.ok) expect(result.message).toMatch(/gpu 1 .*maxGPU 0/);
  });

  it('gives a desktop at most one GPU time-slice, whatever an older template allows', () => {
    expect(MAX_GPU_SLICES_PER_DESKTOP).toBe(1);
    const result = resolveSession(session({ resources: { gpu: 2 } }), template({ resources: { maxGPU: 2 } }), config);
    expect(result).toMatchObject({
      ok: false,
      phase: 'Failed',
      reason: 'ExceedsTemplateLimits',
      message: expect.stringContaining('gpu 2 exceeds 1'),
    });
    expect(resolved(session({ resources: { gpu: 1 } }), template({ resources: { maxGPU: 2 } })).gpu).toBe(1);
  });

  it('takes integer quantities (a YAML `cpu: 2`) and writes them as text', () => {
    const t = template({ resources: { defaultCPU: 2, maxCPU: 8, defaultMemory: '4Gi' } });
    expect(resolved(session(), t)).toMatchObject({ cpu: '2', memory: '4Gi' });
    expect(resolved(session({ resources: { cpu: 6 } }), t).cpu).toBe('6');
    expect(resolveSession(session({ resources: { cpu: 9 } }), t, config)).toMatchObject({
      ok: false,
      reason: 'ExceedsTemplateLimits',
      message: expect.stringMatching(/cpu 9 .*maxCPU 8/),
    });
    expect(resolved(session({ resources: { cpu: '7500m' } }), t).cpu).toBe('7500m');
  });

  it('names field, value and maximum when memory or CPU exceed the template', () => {
    const memory = resolveSession(session({ resources: { memory: '32Gi' } }), template({ resources: { maxMemory: '16Gi' } }), config);
    expect(memory).toMatchObject({ ok: false, phase: 'Failed', reason: 'ExceedsTemplateLimits' });
    if (!memory.ok) expect(memory.message).toMatch(/spec\.resources\.memory 32Gi .*maxMemory 16Gi/);
    const cpu = resolveSession(session({ resources: { cpu: '4500m' } }), template({ resources: { maxCPU: '4' } }), config);
    expect(cpu).toMatchObject({ ok: false, reason: 'ExceedsTemplateLimits', message: expect.stringContaining('4500m') });
  });

  it('compares quantities by value, not by text', () => {
    expect(resolved(session({ resources: { memory: '16384Mi' } }), template({ resources: { maxMemory: '16Gi' } })).memory).toBe('16384Mi');
    expect(resolveSession(session({ resources: { memory: '16385Mi' } }), template({ resources: { maxMemory: '16Gi' } }), config).ok).toBe(false);
  });

  it('fails a timeout above maxTimeout with ExceedsTemplateLimits', () => {
    const result = resolveSession(session({ timeout: '12h' }), template({ maxTimeout: '8h' }), config);
    expect(result).toMatchObject({ ok: false, phase: 'Failed', reason: 'ExceedsTemplateLimits', message: expect.stringMatching(/12h.*8h/) });
  });

  it('lets built-in defaults yield to a smaller template maximum instead of failing a plain request', () => {
    const t = template({ resources: { maxGPU: 0, maxMemory: '4Gi', maxCPU: '2' }, maxTimeout: '1h' });
    expect(resolved(session(), t)).toMatchObject({ gpu: 0, memory: '4Gi', cpu: '2', timeoutMs: 3_600_000, encoder: 'x264enc' });
  });

  it.each([
    [{ timeout: '8 hours' }, 'spec.timeout'],
    [{ timeout: '0s' }, 'spec.timeout'],
    [{ resources: { memory: 'lots' } }, 'spec.resources.memory'],
    [{ resources: { cpu: '-1' } }, 'spec.resources.cpu'],
    [{ resources: { gpu: 1.5 } }, 'spec.resources.gpu'],
    [{ resources: { gpu: -1 } }, 'spec.resources.gpu'],
    [{ persistence: { enabled: true, size: '10 GB' } }, 'spec.persistence.size'],
  ] satisfies [Partial<VDISessionSpec>, string][])('fails %j with InvalidSpec naming %s', (spec, field) => {
    expect(resolveSession(session(spec), template(), config)).toMatchObject({
      ok: false,
      phase: 'Failed',
      reason: 'InvalidSpec',
      message: expect.stringContaining(field),
    });
  });

  it('blames the template (InvalidTemplate) for its own unparseable values', () => {
    expect(resolveSession(session(), template({ resources: { maxMemory: 'big' } }), config)).toMatchObject({
      ok: false,
      phase: 'Failed',
      reason: 'InvalidTemplate',
    });
  });

  it('uses x264enc whenever gpu is 0, whatever the template prefers', () => {
    expect(resolved(session({ resources: { gpu: 0 } }), template({ encoder: 'nvh264enc' })).encoder).toBe('x264enc');
  });

  it("uses the template's encoder, else nvh264enc, when there is a GPU", () => {
    expect(resolved(session(), template({ encoder: 'vah264enc' })).encoder).toBe('vah264enc');
    expect(resolved(session(), template()).encoder).toBe('nvh264enc');
  });

  it('fails a home volume above persistence.maxSize', () => {
    const t = template({ persistence: { maxSize: '50Gi' } });
    expect(resolveSession(session({ persistence: { enabled: true, size: '100Gi' } }), t, config)).toMatchObject({
      ok: false,
      phase: 'Failed',
      reason: 'ExceedsTemplateLimits',
      message: expect.stringMatching(/100Gi.*50Gi/),
    });
  });

  it('ignores the size of a disabled home volume', () => {
    const t = template({ persistence: { maxSize: '50Gi' } });
    expect(resolved(session({ persistence: { enabled: false, size: '100Gi' } }), t).persistence.enabled).toBe(false);
  });
});

describe('sessionLimits', () => {
  it('is what resolveSession gives a session that asks for nothing, and the maxima it enforces', () => {
    const t = template({ resources: { defaultGPU: 0, maxGPU: 1, defaultCPU: 2, maxCPU: '8', maxMemory: '4Gi' }, maxTimeout: '1h' });
    const limits = sessionLimits(t, config);
    const effective = resolved(session(), t);
    expect([limits.gpu.default, limits.gpu.max]).toEqual([effective.gpu, 1]);
    expect([limits.cpu.default, limits.cpu.max]).toEqual([2, '8']);
    // The built-in 8Gi yields to the smaller maximum, and so does the configured 8h timeout.
    expect(limits.memory.default).toBe('4Gi');
    expect(effective.memory).toBe('4Gi');
    expect(limits.timeout.default).toBe('1h');
  });

  it('caps maxGPU at one slice, and reports no higher maximum than that', () => {
    expect(sessionLimits(template({ resources: { maxGPU: 2 } }), config).gpu.max).toBe(1);
    expect(sessionLimits(template(), config).gpu.max).toBe(1);
    expect(sessionLimits(template({ resources: { maxGPU: 0 } }), config).gpu.max).toBe(0);
  });
});

describe('sessionGpuSlices', () => {
  it("counts a session of a CPU-only template as no slice, and one of a GPU template as the template's default", () => {
    expect(sessionGpuSlices(session(), template({ resources: { defaultGPU: 0 } }), config)).toBe(0);
    expect(sessionGpuSlices(session(), template(), config)).toBe(1);
    expect(sessionGpuSlices(session({ resources: { gpu: 0 } }), template(), config)).toBe(0);
  });

  it('counts nothing for a session that cannot have a desktop (no template, or outside the limits)', () => {
    expect(sessionGpuSlices(session(), undefined, config)).toBe(0);
    expect(sessionGpuSlices(session({ resources: { gpu: 1 } }), template({ resources: { maxGPU: 0 } }), config)).toBe(0);
  });
});

describe('the idle policy', () => {
  const idle = (s: VDISession, t: VDITemplate) => resolved(s, t).idle;

  it('stops nobody for idleness when the template says nothing', () => {
    expect(idle(session(), template())).toEqual({ timeoutMs: undefined, warningMs: 5 * 60_000, maxAgeMs: undefined });
  });

  it("takes the template's idle timeout, warning and maximum age", () => {
    const t = template({ idle: { defaultTimeout: '30m', maxTimeout: '2h', warning: '10m', maxAge: '12h' } });
    expect(idle(session(), t)).toEqual({ timeoutMs: 30 * 60_000, warningMs: 10 * 60_000, maxAgeMs: 12 * 3_600_000 });
  });

  it('lets a session choose its idle timeout within the template maximum', () => {
    const t = template({ idle: { defaultTimeout: '30m', maxTimeout: '2h' } });
    expect(idle(session({ idleTimeout: '1h' }), t).timeoutMs).toBe(3_600_000);
    const refused = resolveSession(session({ idleTimeout: '3h' }), t, config);
    expect(refused).toMatchObject({
      ok: false,
      phase: 'Failed',
      reason: 'ExceedsTemplateLimits',
      message: expect.stringContaining('idle.maxTimeout 2h'),
    });
  });

  it('stops at the maximum when the template names only a maximum', () => {
    expect(idle(session(), template({ idle: { maxTimeout: '1h' } })).timeoutMs).toBe(3_600_000);
  });

  it('lets a session ask to be stopped when idle even if its template does not', () => {
    expect(idle(session({ idleTimeout: '15m' }), template()).timeoutMs).toBe(15 * 60_000);
  });

  it('refuses an idle timeout that is not a duration, and a template whose warning is not one', () => {
    expect(resolveSession(session({ idleTimeout: 'soon' }), template(), config)).toMatchObject({ ok: false, reason: 'InvalidSpec' });
    expect(resolveSession(session(), template({ idle: { warning: '0s' } }), config)).toMatchObject({ ok: false, reason: 'InvalidTemplate' });
  });

  it('is reported by sessionLimits, the one place the API and the reconciler read it from', () => {
    const limits = sessionLimits(template({ idle: { defaultTimeout: '30m', maxTimeout: '2h' } }), config);
    expect(limits.idle).toMatchObject({ timeout: { default: '30m', max: '2h' }, warning: '5m', maxAge: undefined });
  });
});
