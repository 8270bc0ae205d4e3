import { describe, expect, it } from 'vitest';
import { defaultsFor, launchFit, validateLaunch, type LaunchTemplate } from './launch.ts';

const ubuntu: LaunchTemplate = {
  name: 'ubuntu-desktop',
  displayName: 'Ubuntu Desktop',
  // maxGPU as the service reports it: a desktop uses at most one GPU time-slice.
  resources: { defaultGPU: 1, maxGPU: 1, defaultMemory: '8Gi', maxMemory: '16Gi', defaultCPU: '4', maxCPU: '8' },
  defaultTimeout: '8h',
  maxTimeout: '24h',
  persistence: { defaultEnabled: true, defaultSize: '20Gi', maxSize: '100Gi' },
};

describe('validateLaunch', () => {
  it('accepts the template’s defaults and sends them explicitly', () => {
    const { errors, input } = validateLaunch(defaultsFor(ubuntu), ubuntu);
    expect(errors).toEqual({});
    expect(input).toEqual({
      template: 'ubuntu-desktop',
      resources: { gpu: 1, memory: '8Gi', cpu: '4' },
      persistence: { enabled: true, size: '20Gi' },
      timeout: '8h',
    });
  });

  it('holds every value to the template’s maxima', () => {
    const { errors, input } = validateLaunch({ gpu: '2', memory: '32Gi', cpu: '16', persistence: true, size: '1Ti', timeout: '48h' }, ubuntu);
    expect(input).toBeUndefined();
    expect(errors).toEqual({
      gpu: '2 GPU slices exceeds this template’s maximum of 1.',
      memory: 'Memory 32Gi exceeds this template’s maximum of 16Gi.',
      cpu: 'CPU 16 exceeds this template’s maximum of 8.',
      size: 'Home volume size 1Ti exceeds this template’s maximum of 100Gi.',
      timeout: '48h exceeds this template’s maximum of 24h.',
    });
  });

  it('refuses what the service cannot parse, with the forms it accepts', () => {
    const { errors } = validateLaunch({ gpu: '1.5', memory: '8 GB', cpu: '-1', persistence: false, size: 'lots', timeout: '2 hours' }, ubuntu);
    expect(errors).toEqual({
      gpu: 'GPU slices must be a whole number, 0 or more.',
      memory: 'Memory must be a positive quantity such as 8Gi.',
      cpu: 'CPU must be a positive quantity such as 4 or 500m.',
      timeout: 'Timeout must be a duration such as 8h, 90m or 1h30m.',
    });
  });

  it('does not judge the size of a home volume that is off', () => {
    const { input } = validateLaunch({ ...defaultsFor(ubuntu), persistence: false, size: 'lots' }, ubuntu);
    expect(input?.persistence).toEqual({ enabled: false });
  });
});

describe('launchFit', () => {
  const capacity = (free: number[]) => ({
    freeSlices: free.reduce((a, b) => a + b, 0),
    nodes: free.map((slicesFree) => ({ ready: true, slicesFree })),
  });
  const quota = (gpusUsed: number, sessionsUsed = 0) => ({ sessions: { used: sessionsUsed, limit: 3 }, gpus: { used: gpusUsed, limit: 2 } });

  it('fits when quota and one node allow it', () => {
    expect(launchFit(1, quota(0), capacity([8, 0]))).toEqual({ blockers: [], warnings: [] });
  });

  it('blocks a launch the GPU quota would refuse, in the service’s words', () => {
    expect(launchFit(1, quota(2), capacity([8])).blockers).toEqual(['This needs 1 GPU slice(s); the quota allows 2 and 2 are in use.']);
  });

  it('blocks a launch beyond the number of desktops allowed', () => {
    expect(launchFit(0, quota(0, 3), capacity([8])).blockers).toEqual(['You have 3 of the 3 desktops your quota allows. End one first.']);
  });

  it('warns when no single node has the slices free', () => {
    expect(launchFit(2, quota(0), capacity([1, 1])).warnings).toEqual([
      'No node has 2 free GPU slice(s) right now: the desktop will wait until one does.',
    ]);
    expect(launchFit(1, quota(0), capacity([0, 0])).warnings).toEqual([
      'No GPU slice is free in the cluster right now: the desktop will wait until one is.',
    ]);
  });

  it('lets a CPU-only desktop through whatever the GPUs', () => {
    expect(launchFit(0, quota(2), capacity([0]))).toEqual({ blockers: [], warnings: [] });
  });
});
