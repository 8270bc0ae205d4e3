import { useConnection } from '../api/connection.ts';

/** Shown while the live-updates WebSocket is down and being retried. */
export function ConnectionBanner() {
  const { status, attempt } = useConnection();
  return (
    <div role="status" aria-live="polite" className="connection">
      {status === 'reconnecting' && (
        <p className="banner" data-testid="reconnecting">
          Live updates lost: reconnecting{attempt > 1 ? ` (attempt ${attempt})` : ''}…
        </p>
      )}
    </div>
  );
}
