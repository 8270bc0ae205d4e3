import { cleanup, fireEvent, render, screen } from '@testing-library/react';
import { Provider, type Client } from 'urql';
import { fromValue, never } from 'wonka';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Session } from '../api/live-sessions.ts';
import { idleWarningText, SessionCard } from './session-card.tsx';

afterEach(cleanup);

const NOW = Date.parse('2030-01-01T12:00:00Z');

function session(status: Partial<Session['status']>, presence: Partial<Session['status']['presence']> = {}): Session {
  return {
    id: 'ns/desk',
    name: 'desk',
    namespace: 'ns',
    user: 'alice@example.com',
    createdAt: new Date(NOW - 3_600_000).toISOString(),
    spec: { template: 'ubuntu', timeout: null, suspend: false, resources: { gpu: 1, memory: '8Gi', cpu: '4' }, persistence: null },
    status: {
      phase: 'Running',
      reason: 'Ready',
      message: null,
      nodeName: 'node-1',
      url: 'http://desk.vdi.test/',
      startTime: new Date(NOW - 3_600_000).toISOString(),
      expiresAt: new Date(NOW + 3_600_000).toISOString(),
      stoppedAt: null,
      conditions: [],
      ...status,
      presence: { connected: null, idleSince: null, stopAt: null, stopReason: null, warning: false, ...presence },
    },
    template: null,
  } as Session;
}

describe('idleWarningText', () => {
  it('says nothing unless the session is warned', () => {
    expect(idleWarningText(session({}, { stopAt: new Date(NOW + 60_000).toISOString() }), NOW)).toBeUndefined();
  });

  it('counts the minutes left, and names the way to keep the desktop', () => {
    const warned = session({}, { warning: true, stopReason: 'Idle', stopAt: new Date(NOW + 4 * 60_000 + 1).toISOString() });
    expect(idleWarningText(warned, NOW)).toMatch(/stops in 5 minutes.*Open it or extend it/);
    expect(idleWarningText(warned, NOW + 4 * 60_000)).toMatch(/within a minute/);
  });
});

describe('SessionCard of an idle desktop', () => {
  it('shows the warning banner before the stop', () => {
    const client = { executeMutation: () => never } as unknown as Client;
    const warned = session({}, { warning: true, stopReason: 'Idle', stopAt: new Date(Date.now() + 10 * 60_000).toISOString() });
    render(
      <Provider value={client}>
        <SessionCard session={warned} />
      </Provider>,
    );
    expect(screen.getByTestId('idle-warning').textContent).toMatch(/Nobody is connected to this desktop: it stops in 10 minutes/);
  });

  it('offers Resume for a stopped desktop, and resumes it', () => {
    const executeMutation = vi.fn(() => fromValue({ data: { resumeVDISession: null } }));
    const client = { executeMutation } as unknown as Client;
    render(
      <Provider value={client}>
        <SessionCard session={session({ phase: 'Stopped', reason: 'Idle', url: null, startTime: null, stoppedAt: new Date(NOW).toISOString() })} />
      </Provider>,
    );
    expect(screen.queryByRole('button', { name: 'Extend' })).toBeNull();
    fireEvent.click(screen.getByRole('button', { name: 'Resume' }));
    expect(executeMutation).toHaveBeenCalledWith(expect.objectContaining({ variables: { name: 'desk' } }), expect.anything());
  });
});
