import { act, cleanup, render, screen } from '@testing-library/react';
import { afterEach, describe, expect, it } from 'vitest';
import { ConnectionBanner } from '../components/connection-banner.tsx';
import { backoffMs } from './client.ts';
import { setConnection } from './connection.ts';

afterEach(cleanup);

describe('backoffMs', () => {
  it('doubles from one second up to thirty, with spread below the base', () => {
    expect([0, 1, 2, 3, 4, 5, 10].map((n) => backoffMs(n, 0))).toEqual([1000, 2000, 4000, 8000, 16000, 30000, 30000]);
    expect(backoffMs(2, 1)).toBe(2667);
  });
});

describe('ConnectionBanner', () => {
  it('says it is reconnecting while the WebSocket is down, and nothing once it is back', () => {
    render(<ConnectionBanner />);
    expect(screen.queryByTestId('reconnecting')).toBeNull();
    act(() => setConnection({ status: 'reconnecting', attempt: 3 }));
    expect(screen.getByRole('status').textContent).toBe('Live updates lost: reconnecting (attempt 3)…');
    act(() => setConnection({ status: 'connected', attempt: 0 }));
    expect(screen.queryByTestId('reconnecting')).toBeNull();
  });
});
