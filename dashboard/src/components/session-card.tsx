// One of my desktops, as it changes: phase and what is happening, the desktop's address once it runs, the
// time left with Extend, and Terminate behind a confirmation.
import { useEffect, useId, useRef, useState } from 'react';
import { useMutation } from 'urql';
import { ExtendSessionMutation, ResumeSessionMutation, TerminateSessionMutation } from '../api/documents.ts';
import type { Session } from '../api/live-sessions.ts';
import { describeError, type ErrorView } from '../lib/errors.ts';
import { describePhase } from '../lib/phase.ts';
import { formatDuration, tickInterval, timeLeft } from '../lib/time.ts';
import { parseDuration } from '../lib/units.ts';
import { ConfirmDialog } from './confirm-dialog.tsx';
import { ErrorMessage } from './error-message.tsx';
import { PhaseBadge, PhaseSteps } from './phase-badge.tsx';
import { useNow } from './use-now.ts';

export function atMaximum(session: Session): boolean {
  const max = session.template?.maxTimeout ? parseDuration(session.template.maxTimeout) : undefined;
  const current = session.spec.timeout ? parseDuration(session.spec.timeout) : undefined;
  return max !== undefined && current !== undefined && current >= max;
}

/**
 * The banner of a desktop about to be stopped for idleness (its IdleWarning), in words and minutes; undefined
 * when no stop is coming.
 */
export function idleWarningText(session: Session, now: number): string | undefined {
  const { presence } = session.status;
  if (!presence.warning || !presence.stopAt) return undefined;
  const minutes = Math.max(0, Math.ceil((Date.parse(presence.stopAt) - now) / 60_000));
  const when = minutes <= 1 ? 'within a minute' : `in ${minutes} minutes`;
  return presence.stopReason === 'MaxAge'
    ? `This desktop reaches its maximum running time and stops ${when} to free its GPU slice. Your home volume is kept; you can resume it.`
    : `Nobody is connected to this desktop: it stops ${when} to free its GPU slice. Open it or extend it to keep it running; your home volume is kept either way.`;
}

export function SessionCard({ session, highlight }: { session: Session; highlight?: boolean }) {
  const { status, spec } = session;
  const view = describePhase(status);
  const titleId = useId();
  const ref = useRef<HTMLElement>(null);
  const [confirming, setConfirming] = useState(false);
  const [error, setError] = useState<ErrorView>();
  const [notice, setNotice] = useState<string>();
  const [extendState, extend] = useMutation(ExtendSessionMutation);
  const [terminateState, terminate] = useMutation(TerminateSessionMutation);
  const [resumeState, resume] = useMutation(ResumeSessionMutation);
  const stopped = status.phase === 'Stopped';
  const firstLeft = timeLeft(status.expiresAt, Date.now());
  const now = useNow(tickInterval(firstLeft));
  const left = timeLeft(status.expiresAt, now);
  const title = session.template?.displayName ?? spec.template;
  // What the desktop gets: the session's own request, else the template's default.
  const defaults = session.template?.resources;
  const effective = {
    gpu: spec.resources.gpu ?? defaults?.defaultGPU,
    memory: spec.resources.memory ?? defaults?.defaultMemory,
    cpu: spec.resources.cpu ?? defaults?.defaultCPU,
    timeout: spec.timeout ?? session.template?.defaultTimeout,
  };

  useEffect(() => {
    if (highlight) ref.current?.focus();
  }, [highlight]);

  const onExtend = async () => {
    setError(undefined);
    setNotice(undefined);
    const result = await extend({ name: session.name });
    if (result.error) setError(describeError(result.error));
    else {
      const timeout = parseDuration(result.data?.extendVDISession.spec.timeout ?? '');
      setNotice(timeout ? `Extended: the time limit is now ${formatDuration(timeout)} from the start.` : 'Extended.');
    }
  };
  const onResume = async () => {
    setError(undefined);
    setNotice(undefined);
    const result = await resume({ name: session.name });
    if (result.error) setError(describeError(result.error));
  };
  const warning = idleWarningText(session, now);
  const onTerminate = async () => {
    setError(undefined);
    const result = await terminate({ name: session.name });
    setConfirming(false);
    if (result.error) setError(describeError(result.error));
  };

  return (
    <article
      ref={ref}
      tabIndex={-1}
      className={`card session${highlight ? ' highlight' : ''}`}
      aria-labelledby={titleId}
      data-session={session.name}
      data-phase={status.phase}
    >
      <header className="card-header">
        <h3 id={titleId}>{title}</h3>
        <PhaseBadge phase={status.phase} reason={status.reason} />
      </header>
      <p className="muted session-name">{session.name}</p>
      {view.step !== undefined && <PhaseSteps step={view.step} />}
      <div className="status-text" role="status" aria-live="polite">
        {status.phase !== 'Running' && <p className="activity">{view.activity}</p>}
        {status.message && !view.usable && <p className="message muted">{status.message}</p>}
      </div>
      {warning && (
        <p className="notice warning" role="alert" data-testid="idle-warning">
          {warning}
        </p>
      )}
      {view.usable && status.url && (
        <p className="open">
          <a className="button primary" href={status.url} target="_blank" rel="noopener noreferrer">
            Open desktop<span className="visually-hidden"> {title} (opens in a new tab)</span>
          </a>
          <span className="url">{status.url}</span>
        </p>
      )}
      <dl className="facts">
        <div>
          <dt>GPU slices</dt>
          <dd>{effective.gpu ?? '—'}</dd>
        </div>
        <div>
          <dt>Memory</dt>
          <dd>{effective.memory ?? '—'}</dd>
        </div>
        <div>
          <dt>CPU</dt>
          <dd>{effective.cpu ?? '—'}</dd>
        </div>
        <div>
          <dt>Time left</dt>
          <dd className={left?.urgent ? 'urgent' : undefined} data-testid="time-left">
            {left ? left.text : view.ended || !effective.timeout ? '—' : `${effective.timeout} once running`}
          </dd>
        </div>
      </dl>
      {status.conditions.length > 0 && (
        <details className="conditions">
          <summary>Conditions</summary>
          <table>
            <thead>
              <tr>
                <th scope="col">Type</th>
                <th scope="col">Status</th>
                <th scope="col">Reason</th>
                <th scope="col">Message</th>
              </tr>
            </thead>
            <tbody>
              {status.conditions.map((c) => (
                <tr key={c.type}>
                  <td>{c.type}</td>
                  <td>{c.status}</td>
                  <td>{c.reason}</td>
                  <td>{c.message}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </details>
      )}
      {notice && (
        <p className="notice" role="status">
          {notice}
        </p>
      )}
      {error && <ErrorMessage error={error} />}
      {status.phase !== 'Terminating' && (
        <div className="actions">
          {stopped && (
            <button type="button" className="button primary" onClick={onResume} disabled={resumeState.fetching}>
              {resumeState.fetching ? 'Resuming…' : 'Resume'}
            </button>
          )}
          {!view.ended && !stopped && (
            <button
              type="button"
              className="button"
              onClick={onExtend}
              disabled={extendState.fetching || atMaximum(session)}
              title={atMaximum(session) ? `Already at the template’s maximum of ${session.template?.maxTimeout}` : undefined}
            >
              {extendState.fetching ? 'Extending…' : 'Extend'}
            </button>
          )}
          <button type="button" className="button danger-outline" onClick={() => setConfirming(true)}>
            {view.ended ? 'Remove' : 'Terminate'}
          </button>
        </div>
      )}
      <ConfirmDialog
        open={confirming}
        title={`End ${title}?`}
        confirmLabel="End desktop"
        busy={terminateState.fetching}
        onConfirm={onTerminate}
        onCancel={() => setConfirming(false)}
      >
        <p>
          The desktop <strong>{session.name}</strong> stops and anything unsaved in it is lost. Your home volume is kept.
        </p>
      </ConfirmDialog>
    </article>
  );
}
