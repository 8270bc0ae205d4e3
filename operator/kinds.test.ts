import { describe, expect, it } from 'vitest';
import { collectionPath, kindInfo, namedPath, objectPath } from './kinds.ts';

describe('the table of kinds', () => {
  it('derives core, grouped and custom paths, namespaced or not', () => {
    expect(collectionPath('Pod')).toBe('/api/v1/pods');
    expect(collectionPath('Pod', 'ns')).toBe('/api/v1/namespaces/ns/pods');
    expect(namedPath('VDISession', 'ns', 'desk', 'status')).toBe('/apis/vdi.kasm.io/v1alpha1/namespaces/ns/vdisessions/desk/status');
    expect(collectionPath('VDITemplate', 'ignored')).toBe('/apis/vdi.kasm.io/v1alpha1/vditemplates');
    expect(namedPath('IngressRoute', 'ns', 'r')).toBe('/apis/traefik.io/v1alpha1/namespaces/ns/ingressroutes/r');
    expect(objectPath({ kind: 'NetworkPolicy', metadata: { namespace: 'ns', name: 'p' } })).toBe(
      '/apis/networking.k8s.io/v1/namespaces/ns/networkpolicies/p',
    );
    expect(objectPath({ kind: 'Secret', metadata: { namespace: 'ns', name: 's' } }, false)).toBe('/api/v1/namespaces/ns/secrets');
  });

  it('names the cache of each kind the reconciler writes through, and refuses a kind it does not know', () => {
    expect(kindInfo('PersistentVolumeClaim').cache).toBe('pvcs');
    expect(kindInfo('Lease').cache).toBeUndefined();
    expect(() => objectPath({ kind: 'ConfigMap', metadata: { namespace: 'ns', name: 'c' } })).toThrow(/unknown kind/);
  });
});
