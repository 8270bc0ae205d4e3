import { describe, expect, it } from 'vitest';
import type { VDISession, VDITemplate } from '../../operator/v1alpha1.ts';
import { testReconcilerConfig } from '../../test/support/reconciler-config.ts';
import { sessionSpecView } from './session-view.ts';

const config = testReconcilerConfig();
const template = (defaultMemory: string): VDITemplate => ({
  apiVersion: 'vdi.kasm.io/v1alpha1',
  kind: 'VDITemplate',
  metadata: { name: 'desk' },
  spec: {
    image: 'desktop:1',
    displayName: 'Desk',
    resources: { defaultGPU: 1, maxGPU: 2, defaultMemory, maxMemory: '32Gi', defaultCPU: '2', maxCPU: '8' },
  },
});
const session = (status?: VDISession['status']): VDISession => ({
  apiVersion: 'vdi.kasm.io/v1alpha1',
  kind: 'VDISession',
  metadata: { name: 's', namespace: 'ns' },
  spec: { user: 'alice@example.com', template: 'desk' },
  ...(status && { status }),
});

describe('sessionSpecView resources', () => {
  it("are the template's defaults until the reconciler says what the desktop runs with", () => {
    expect(sessionSpecView(session(), template('8Gi'), config).resources).toEqual({ gpu: 1, memory: '8Gi', cpu: '2' });
  });

  it("are what the desktop runs with once the status says so, whatever the template says since (and the cached view doesn't hide it)", () => {
    const edited = template('16Gi');
    const spec = session().spec;
    // The same spec object, seen first before the status and then with it (as the API's copies share it).
    expect(sessionSpecView({ ...session(), spec }, edited, config).resources).toEqual({ gpu: 1, memory: '16Gi', cpu: '2' });
    const running = { ...session({ phase: 'Running', resources: { gpu: 1, cpu: '2', memory: '8Gi' } }), spec };
    expect(sessionSpecView(running, edited, config).resources).toEqual({ gpu: 1, memory: '8Gi', cpu: '2' });
  });
});
