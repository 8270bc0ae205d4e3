import type { LiveSessions } from '../api/live-sessions.ts';
import { ErrorMessage } from '../components/error-message.tsx';
import { SessionCard } from '../components/session-card.tsx';
import { describeError } from '../lib/errors.ts';
import { navigate, PATHS, useDocumentTitle } from '../router.ts';

export function SessionsPage({ live, launched }: { live: LiveSessions; launched?: string }) {
  useDocumentTitle('My desktops');
  const { sessions, loaded, error } = live;
  return (
    <>
      <div className="page-head">
        <h1 tabIndex={-1}>My desktops</h1>
        <p className="summary">Updates appear here as they happen.</p>
      </div>
      {error && <ErrorMessage error={describeError(error)} />}
      {!loaded && sessions.length === 0 && !error && <p className="muted">Loading your desktops…</p>}
      {loaded && sessions.length === 0 && (
        <p className="empty" data-testid="no-sessions">
          You have no desktops.{' '}
          <a href={PATHS.templates} onClick={(e) => (e.preventDefault(), navigate(PATHS.templates))}>
            Launch one from a template
          </a>
          .
        </p>
      )}
      <div className="grid sessions">
        {sessions.map((s) => (
          <SessionCard key={s.id} session={s} highlight={s.id === launched} />
        ))}
      </div>
    </>
  );
}
