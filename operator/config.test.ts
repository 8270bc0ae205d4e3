import { describe, expect, it } from 'vitest';
import { defaultReconcilerConfig } from './config.ts';

describe('defaultReconcilerConfig', () => {
  it('has the documented defaults', () => {
    const config = defaultReconcilerConfig();
    expect(config).toMatchObject({
      hostPattern: '{name}-{namespace}.{domain}',
      urlScheme: 'https',
      ingressMode: 'traefik',
      traefikEntryPoints: ['websecure'],
      runtimeClassName: 'nvidia',
      gpuResourceName: 'nvidia.com/gpu',
      ingressControllerNamespace: 'kube-system',
      ingressControllerPodLabels: { 'app.kubernetes.io/name': 'traefik' },
      defaultSessionTimeout: '8h',
    });
    expect(config.tls).toBeUndefined();
  });

  it('applies overrides and ignores undefined ones', () => {
    const config = defaultReconcilerConfig({ domain: 'desk.corp.io', runtimeClassName: undefined });
    expect(config.domain).toBe('desk.corp.io');
    expect(config.runtimeClassName).toBe('nvidia');
  });

  it('does not share mutable defaults between configs', () => {
    const a = defaultReconcilerConfig();
    a.traefikEntryPoints.push('web');
    expect(defaultReconcilerConfig().traefikEntryPoints).toEqual(['websecure']);
  });

  it.each([
    [{ hostPattern: '{namespace}.{domain}' }, /lacks \{name\}/],
    [{ defaultSessionTimeout: '8 hours' }, /defaultSessionTimeout/],
    [{ defaultSessionTimeout: '0s' }, /defaultSessionTimeout/],
    [{ domain: '' }, /domain/],
    [{ tls: {} }, /tls/],
  ])('rejects %j', (overrides, problem) => {
    expect(() => defaultReconcilerConfig(overrides)).toThrow(problem);
  });
});
