// A reconciler config for tests, made the way the service makes it (src/config.ts reads the environment and
// holds every default), on a fixed test domain, with a test's own overrides on top.
import { validateReconcilerConfig, type ReconcilerConfig } from '../../operator/config.ts';
import { loadConfig, reconcilerConfigFrom } from '../../src/config.ts';

export function testReconcilerConfig(overrides: Partial<ReconcilerConfig> = {}, env: Record<string, string> = {}): ReconcilerConfig {
  const base = reconcilerConfigFrom(loadConfig({ VDI_DOMAIN: 'vdi.example.com', ...env }, []));
  const defined = Object.fromEntries(Object.entries(overrides).filter(([, value]) => value !== undefined));
  return validateReconcilerConfig({ ...base, ...defined });
}
