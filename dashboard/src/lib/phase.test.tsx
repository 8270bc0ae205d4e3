import { cleanup, render, screen } from '@testing-library/react';
import { afterEach, describe, expect, it } from 'vitest';
import { PhaseBadge, PhaseSteps } from '../components/phase-badge.tsx';
import { describePhase, reasonInWords } from './phase.ts';

afterEach(cleanup);

describe('describePhase', () => {
  it('says what a pending session waits for, in words', () => {
    expect(describePhase({ phase: 'Pending', reason: 'WaitingForGPU' })).toMatchObject({
      label: 'Pending',
      activity: 'Waiting for a free GPU slice',
      step: 0,
      usable: false,
    });
    expect(describePhase({ phase: 'Pending', reason: 'Scheduling' }).activity).toBe('Finding a node for the desktop');
  });

  it('says what a starting session is doing', () => {
    expect(describePhase({ phase: 'Starting', reason: 'ContainerCreating' })).toMatchObject({
      step: 1,
      activity: 'Pulling the image and creating the container',
    });
    expect(describePhase({ phase: 'Starting', reason: 'Routing' }).activity).toBe('Setting up the desktop’s address');
  });

  it('makes a running session usable', () => {
    expect(describePhase({ phase: 'Running', reason: 'Ready' })).toMatchObject({ label: 'Running', tone: 'ok', step: 2, usable: true, ended: false });
  });

  it('gives a failed start its reason in words, and ends it', () => {
    expect(describePhase({ phase: 'Failed', reason: 'ImagePullBackOff' })).toMatchObject({
      label: 'Failed',
      tone: 'bad',
      activity: 'The desktop image could not be downloaded',
      ended: true,
    });
    expect(describePhase({ phase: 'Failed', reason: 'ImagePullBackOff' }).step).toBeUndefined();
  });

  it('spells out a reason it has no words for', () => {
    expect(describePhase({ phase: 'Failed', reason: 'NodeAffinityMismatch' }).activity).toBe('Node affinity mismatch');
    expect(reasonInWords('NoGPUDriver')).toBe('No GPU driver');
  });

  it('marks expired and terminating sessions as over', () => {
    expect(describePhase({ phase: 'Expired', reason: 'Timeout' })).toMatchObject({
      label: 'Expired',
      activity: 'Reached its time limit',
      ended: true,
    });
    expect(describePhase({ phase: 'Terminating', reason: 'Deleted' })).toMatchObject({ label: 'Ending', ended: true, usable: false });
  });
});

describe('PhaseBadge', () => {
  it('shows the phase label with its tone', () => {
    render(<PhaseBadge phase="Starting" reason="ContainerCreating" />);
    const badge = screen.getByText('Starting');
    expect(badge.className).toContain('tone-progress');
    expect(badge.getAttribute('data-phase')).toBe('Starting');
  });
});

describe('PhaseSteps', () => {
  it('marks the current step for assistive technology', () => {
    render(<PhaseSteps step={1} />);
    const items = screen.getAllByRole('listitem');
    expect(items.map((i) => i.textContent)).toEqual(['Pending', 'Starting', 'Running']);
    expect(items[1]!.getAttribute('aria-current')).toBe('step');
    expect(items[0]!.className).toBe('done');
    expect(items[2]!.className).toBe('todo');
  });
});
