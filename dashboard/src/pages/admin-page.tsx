// Every user's desktops (admins only), live, with the owner, node and age, and an End for each.
import { useEffect, useState } from 'react';
import { useMutation, useQuery } from 'urql';
import { IdleReclaimQuery, TerminateSessionMutation } from '../api/documents.ts';
import { useLiveSessions, type Session } from '../api/live-sessions.ts';
import { ConfirmDialog } from '../components/confirm-dialog.tsx';
import { ErrorMessage } from '../components/error-message.tsx';
import { PhaseBadge } from '../components/phase-badge.tsx';
import { useNow } from '../components/use-now.ts';
import { describeError, type ErrorView } from '../lib/errors.ts';
import { age } from '../lib/time.ts';
import { useDocumentTitle } from '../router.ts';

export function AdminPage() {
  useDocumentTitle('All desktops');
  const { sessions, loaded, error } = useLiveSessions(true);
  const now = useNow(30_000);
  const [ending, setEnding] = useState<Session>();
  const [failure, setFailure] = useState<ErrorView>();
  const [state, terminate] = useMutation(TerminateSessionMutation);
  const [reclaim, refetchReclaim] = useQuery({ query: IdleReclaimQuery, requestPolicy: 'network-only' });
  // The figures follow the sessions: every change the subscription brings asks for them again.
  useEffect(() => {
    if (loaded) refetchReclaim({ requestPolicy: 'network-only' });
  }, [sessions, loaded, refetchReclaim]);
  const figures = reclaim.data?.idleReclaim;

  const end = async () => {
    if (!ending) return;
    setFailure(undefined);
    const result = await terminate({ name: ending.name, user: ending.user });
    if (result.error) setFailure(describeError(result.error));
    setEnding(undefined);
  };

  return (
    <>
      <div className="page-head">
        <h1 tabIndex={-1}>All desktops</h1>
        <p className="summary">Every user’s desktops, as they change.</p>
      </div>
      {figures && (
        <section aria-labelledby="idle-reclaim-title" className="card idle-reclaim">
          <h2 id="idle-reclaim-title">Idle desktops</h2>
          <dl className="facts" data-testid="idle-reclaim">
            <div>
              <dt>Idle now</dt>
              <dd>{figures.idleSessions}</dd>
            </div>
            <div>
              <dt>Warned</dt>
              <dd>{figures.warnedSessions}</dd>
            </div>
            <div>
              <dt>Stopped</dt>
              <dd>
                {figures.stoppedSessions.length === 0
                  ? 0
                  : figures.stoppedSessions
                      .map((s) => `${s.count} ${s.reason === 'Idle' ? 'idle' : s.reason === 'MaxAge' ? 'at maximum age' : 'by their users'}`)
                      .join(', ')}
              </dd>
            </div>
            <div>
              <dt>GPU slices reclaimed</dt>
              <dd>{figures.slicesReclaimed}</dd>
            </div>
            <div>
              <dt>GPU-hours saved</dt>
              <dd>{figures.gpuHoursSaved.toFixed(1)}</dd>
            </div>
          </dl>
        </section>
      )}
      {error && <ErrorMessage error={describeError(error)} />}
      {failure && <ErrorMessage error={failure} />}
      {!loaded && !error && <p className="muted">Loading…</p>}
      {loaded && sessions.length === 0 && <p className="empty">Nobody has a desktop right now.</p>}
      {sessions.length > 0 && (
        <div className="table-wrap">
          <table className="admin">
            <caption className="visually-hidden">All users’ desktops</caption>
            <thead>
              <tr>
                <th scope="col">Owner</th>
                <th scope="col">Desktop</th>
                <th scope="col">Phase</th>
                <th scope="col">Node</th>
                <th scope="col">Age</th>
                <th scope="col">
                  <span className="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {sessions.map((s) => (
                <tr key={s.id} data-session={s.name}>
                  <td>{s.user}</td>
                  <th scope="row">
                    {s.template?.displayName ?? s.spec.template}
                    <span className="muted block">{s.name}</span>
                  </th>
                  <td>
                    <PhaseBadge phase={s.status.phase} reason={s.status.reason} />
                  </td>
                  <td>{s.status.nodeName ?? '—'}</td>
                  <td>{age(s.createdAt, now)}</td>
                  <td>
                    {s.status.phase !== 'Terminating' && (
                      <button type="button" className="button small danger-outline" onClick={() => setEnding(s)}>
                        End
                        <span className="visually-hidden">
                          {' '}
                          {s.name} of {s.user}
                        </span>
                      </button>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <ConfirmDialog
        open={ending !== undefined}
        title={`End ${ending?.user ?? ''}’s desktop?`}
        confirmLabel="End desktop"
        busy={state.fetching}
        onConfirm={() => void end()}
        onCancel={() => setEnding(undefined)}
      >
        <p>
          <strong>{ending?.name}</strong> stops at once and its user loses anything unsaved. Their home volume is kept.
        </p>
      </ConfirmDialog>
    </>
  );
}
