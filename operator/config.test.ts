import { describe, expect, it } from 'vitest';
import { loadConfig, reconcilerConfigFrom } from '../src/config.ts';
import { testReconcilerConfig } from '../test/support/reconciler-config.ts';
import { validateReconcilerConfig } from './config.ts';

describe('the reconciler config, from the one configuration', () => {
  it('has the documented defaults, the same as the service’s own settings', () => {
    const service = loadConfig({}, []);
    const config = reconcilerConfigFrom(service);
    expect(config).toMatchObject({
      domain: service.desktops.domain,
      hostPattern: '{name}-{namespace}.{domain}',
      urlScheme: 'https',
      ingressMode: 'traefik',
      traefikEntryPoints: ['websecure'],
      runtimeClassName: 'nvidia',
      gpuResourceName: 'nvidia.com/gpu',
      ingressControllerNamespace: 'kube-system',
      ingressControllerPodLabels: { 'app.kubernetes.io/name': 'traefik' },
      defaultSessionTimeout: '8h',
      authEndpoint: `${service.desktops.internalUrl}/auth/forward`,
      turnRestBaseUrl: `${service.desktops.internalUrl}/turn`,
      presenceBaseUrl: `${service.desktops.internalUrl}/presence`,
    });
    expect(config.tls).toBeUndefined();
  });

  it('takes every desktop setting from the environment', () => {
    const config = reconcilerConfigFrom(
      loadConfig(
        {
          VDI_DOMAIN: 'desk.corp.io',
          VDI_INTERNAL_URL: 'http://vdi.ops.svc:9000',
          VDI_INGRESS_POD_LABELS: 'app=ingress-nginx',
          VDI_TLS_SECRET: 'wild',
        },
        [],
      ),
    );
    expect(config).toMatchObject({
      domain: 'desk.corp.io',
      authEndpoint: 'http://vdi.ops.svc:9000/auth/forward',
      ingressControllerPodLabels: { app: 'ingress-nginx' },
      tls: { secretName: 'wild' },
    });
  });

  it('does not share mutable values between configs', () => {
    const a = testReconcilerConfig();
    a.traefikEntryPoints.push('web');
    expect(testReconcilerConfig().traefikEntryPoints).toEqual(['websecure']);
  });

  it.each([
    [{ hostPattern: '{namespace}.{domain}' }, /lacks \{name\}/],
    [{ defaultSessionTimeout: '8 hours' }, /defaultSessionTimeout/],
    [{ defaultSessionTimeout: '0s' }, /defaultSessionTimeout/],
    [{ domain: '' }, /domain/],
    [{ tls: {} }, /tls/],
  ])('rejects %j', (overrides, problem) => {
    expect(() => validateReconcilerConfig({ ...testReconcilerConfig(), ...overrides })).toThrow(problem);
  });
});
