// The desktops' NetworkPolicy as the environment configures it: every peer the reconciler can admit (the
// ingress controller, the TURN relay) is reachable from VDI_* variables (which the chart sets), for each mode.
import { describe, expect, it } from 'vitest';
import { buildNetworkPolicy } from '../operator/builders.ts';
import type { VDISession } from '../operator/v1alpha1.ts';
import { ConfigError, loadConfig, reconcilerConfigFrom } from './config.ts';

const session: VDISession = {
  apiVersion: 'vdi.kasm.io/v1alpha1',
  kind: 'VDISession',
  metadata: { name: 'desk', namespace: 'vdi-alice', uid: 'u1' },
  spec: { user: 'alice@example.com', template: 'ubuntu-desktop' },
};

const policyFrom = (env: Record<string, string>) =>
  buildNetworkPolicy(session, reconcilerConfigFrom(loadConfig({ VDI_MODE: 'reconciler', ...env }, [])));
const ns = (name: string) => ({ matchLabels: { 'kubernetes.io/metadata.name': name } });

describe('the desktops’ NetworkPolicy from the environment', () => {
  it('admits K3s’s Traefik by default (traefik mode), and no relay', () => {
    expect(policyFrom({}).spec.ingress).toEqual([
      {
        from: [{ namespaceSelector: ns('kube-system'), podSelector: { matchLabels: { 'app.kubernetes.io/name': 'traefik' } } }],
        ports: [{ protocol: 'TCP', port: 8080 }],
      },
    ]);
  });

  it('admits the ingress controller named by VDI_INGRESS_NAMESPACE and VDI_INGRESS_POD_LABELS (ingress mode with ingress-nginx)', () => {
    const policy = policyFrom({
      VDI_INGRESS_MODE: 'ingress',
      VDI_INGRESS_NAMESPACE: 'ingress-nginx',
      VDI_INGRESS_POD_LABELS: 'app.kubernetes.io/name=ingress-nginx, app.kubernetes.io/component=controller',
    });
    expect(policy.spec.ingress).toEqual([
      {
        from: [
          {
            namespaceSelector: ns('ingress-nginx'),
            podSelector: { matchLabels: { 'app.kubernetes.io/name': 'ingress-nginx', 'app.kubernetes.io/component': 'controller' } },
          },
        ],
        ports: [{ protocol: 'TCP', port: 8080 }],
      },
    ]);
  });

  it('admits a hostNetwork coturn from VDI_TURN_CIDRS, on any port', () => {
    expect(policyFrom({ VDI_TURN_CIDRS: '10.0.0.0/24,192.168.1.0/24' }).spec.ingress[1]).toEqual({
      from: [{ ipBlock: { cidr: '10.0.0.0/24' } }, { ipBlock: { cidr: '192.168.1.0/24' } }],
    });
  });

  it('admits coturn pods from VDI_TURN_POD_LABELS, in VDI_TURN_NAMESPACE or else the session’s own namespace', () => {
    expect(policyFrom({ VDI_TURN_POD_LABELS: 'app=coturn', VDI_TURN_NAMESPACE: 'turn' }).spec.ingress[1]).toEqual({
      from: [{ podSelector: { matchLabels: { app: 'coturn' } }, namespaceSelector: ns('turn') }],
    });
    expect(policyFrom({ VDI_TURN_POD_LABELS: 'app=coturn' }).spec.ingress[1]).toEqual({
      from: [{ podSelector: { matchLabels: { app: 'coturn' } } }],
    });
  });

  it.each([
    ['VDI_INGRESS_POD_LABELS', 'app.kubernetes.io/name'],
    ['VDI_TURN_POD_LABELS', 'app=co turn'],
    ['VDI_TURN_CIDRS', '10.0.0.0'],
    ['VDI_TURN_CIDRS', 'everyone'],
  ])('refuses a malformed %s (%j) at start-up, naming it', (name, value) => {
    expect(() => loadConfig({ [name]: value }, [])).toThrow(ConfigError);
    expect(() => loadConfig({ [name]: value }, [])).toThrow(name);
  });
});
