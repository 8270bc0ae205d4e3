// A template: what it is, what it comes with, its defaults and maxima; Launch with the defaults in one
// click, or with options. Whether the launch fits the quota and the free GPU slices is said before it is tried.
import { useId, useRef, useState, type FormEvent } from 'react';
import { useMutation } from 'urql';
import type { CreateVdiSessionInput, TemplatesQuery } from '../__generated__/graphql.ts';
import { CreateSessionMutation } from '../api/documents.ts';
import { describeError, type ErrorView } from '../lib/errors.ts';
import { defaultsFor, launchFit, validateLaunch, type CapacityView, type LaunchErrors, type LaunchForm, type QuotaView } from '../lib/launch.ts';
import { ErrorMessage } from './error-message.tsx';

export type Template = TemplatesQuery['templates'][number];

interface Props {
  template: Template;
  quota?: QuotaView;
  capacity?: CapacityView;
  onLaunched: (sessionId: string, displayName: string) => void;
}

export function TemplateCard({ template: t, quota, capacity, onLaunched }: Props) {
  const titleId = useId();
  const optionsId = useId();
  const [open, setOpen] = useState(false);
  const [form, setForm] = useState<LaunchForm>(() => defaultsFor(t));
  const [errors, setErrors] = useState<LaunchErrors>({});
  const [error, setError] = useState<ErrorView>();
  const [state, create] = useMutation(CreateSessionMutation);
  const formRef = useRef<HTMLFormElement>(null);

  const gpu = open && /^\d+$/.test(form.gpu.trim()) ? Number(form.gpu) : t.resources.defaultGPU;
  const fit = launchFit(gpu, quota, capacity);
  const blocked = fit.blockers.length > 0;

  const launch = async (input: CreateVdiSessionInput) => {
    setError(undefined);
    const result = await create({ input });
    if (result.error) {
      const view = describeError(result.error);
      setError(view);
      return;
    }
    if (result.data) onLaunched(result.data.createVDISession.id, t.displayName);
  };

  const submit = (e: FormEvent) => {
    e.preventDefault();
    const { errors: found, input } = validateLaunch(form, t);
    setErrors(found);
    if (!input) {
      const first = Object.keys(found)[0];
      formRef.current?.querySelector<HTMLElement>(`[name="${first}"]`)?.focus();
      return;
    }
    void launch(input);
  };

  const field = (name: keyof LaunchForm) => ({
    name,
    id: `${optionsId}-${name}`,
    'aria-invalid': errors[name] ? true : undefined,
    'aria-describedby': `${optionsId}-${name}-hint${errors[name] ? ` ${optionsId}-${name}-error` : ''}`,
  });
  const set = (name: keyof LaunchForm) => (e: { target: HTMLInputElement }) =>
    setForm((f) => ({ ...f, [name]: e.target.type === 'checkbox' ? e.target.checked : e.target.value }));
  const fieldError = (name: keyof LaunchForm) =>
    errors[name] && (
      <p className="field-error" id={`${optionsId}-${name}-error`}>
        {errors[name]}
      </p>
    );

  const r = t.resources;
  return (
    <article className="card template" aria-labelledby={titleId} data-template={t.name}>
      <h3 id={titleId}>{t.displayName}</h3>
      {t.description && <p className="description">{t.description}</p>}
      {t.applications.length > 0 && (
        <ul className="apps" aria-label="Applications">
          {t.applications.map((a) => (
            <li key={a.name}>
              <span className="app-icon" aria-hidden="true" style={{ backgroundColor: iconColour(a.icon ?? a.name) }}>
                {a.name.charAt(0)}
              </span>
              {a.name}
            </li>
          ))}
        </ul>
      )}
      <dl className="facts">
        <div>
          <dt>GPU slices</dt>
          <dd>
            {r.defaultGPU} <span className="muted">(max {r.maxGPU})</span>
          </dd>
        </div>
        <div>
          <dt>Memory</dt>
          <dd>
            {r.defaultMemory} {r.maxMemory && <span className="muted">(max {r.maxMemory})</span>}
          </dd>
        </div>
        <div>
          <dt>CPU</dt>
          <dd>
            {r.defaultCPU} {r.maxCPU && <span className="muted">(max {r.maxCPU})</span>}
          </dd>
        </div>
        <div>
          <dt>Time limit</dt>
          <dd>
            {t.defaultTimeout ?? 'default'} {t.maxTimeout && <span className="muted">(max {t.maxTimeout})</span>}
          </dd>
        </div>
      </dl>
      {fit.blockers.map((m) => (
        <p key={m} className="warning blocker" data-kind="quota">
          {m}
        </p>
      ))}
      {fit.warnings.map((m) => (
        <p key={m} className="warning" data-kind="capacity">
          {m}
        </p>
      ))}
      {error && <ErrorMessage error={error} />}
      <div className="actions">
        <button type="button" className="button primary" disabled={blocked || state.fetching} onClick={() => void launch({ template: t.name })}>
          {state.fetching && !open ? 'Launching…' : 'Launch'}
          <span className="visually-hidden"> {t.displayName}</span>
        </button>
        <button type="button" className="button" aria-expanded={open} aria-controls={optionsId} onClick={() => setOpen((o) => !o)}>
          Options<span className="visually-hidden"> for {t.displayName}</span>
        </button>
      </div>
      {open && (
        <form id={optionsId} ref={formRef} className="options" onSubmit={submit} noValidate aria-label={`Launch options for ${t.displayName}`}>
          <div className="field">
            <label htmlFor={`${optionsId}-gpu`}>GPU slices</label>
            <input type="number" inputMode="numeric" min={0} max={r.maxGPU} step={1} value={form.gpu} onChange={set('gpu')} {...field('gpu')} />
            <p className="hint" id={`${optionsId}-gpu-hint`}>
              0 to {r.maxGPU}; 0 is a desktop without a GPU.
            </p>
            {fieldError('gpu')}
          </div>
          <div className="field">
            <label htmlFor={`${optionsId}-memory`}>Memory</label>
            <input type="text" autoComplete="off" spellCheck={false} value={form.memory} onChange={set('memory')} {...field('memory')} />
            <p className="hint" id={`${optionsId}-memory-hint`}>
              Such as 8Gi{r.maxMemory ? `; at most ${r.maxMemory}` : ''}.
            </p>
            {fieldError('memory')}
          </div>
          <div className="field">
            <label htmlFor={`${optionsId}-cpu`}>CPU</label>
            <input type="text" autoComplete="off" spellCheck={false} value={form.cpu} onChange={set('cpu')} {...field('cpu')} />
            <p className="hint" id={`${optionsId}-cpu-hint`}>
              Cores, such as 4 or 500m{r.maxCPU ? `; at most ${r.maxCPU}` : ''}.
            </p>
            {fieldError('cpu')}
          </div>
          <div className="field">
            <label htmlFor={`${optionsId}-timeout`}>Time limit</label>
            <input type="text" autoComplete="off" spellCheck={false} value={form.timeout} onChange={set('timeout')} {...field('timeout')} />
            <p className="hint" id={`${optionsId}-timeout-hint`}>
              Such as 8h or 1h30m{t.maxTimeout ? `; at most ${t.maxTimeout}` : ''}.
            </p>
            {fieldError('timeout')}
          </div>
          <div className="field checkbox">
            <input type="checkbox" checked={form.persistence} onChange={set('persistence')} {...field('persistence')} />
            <label htmlFor={`${optionsId}-persistence`}>Keep a home volume</label>
            <p className="hint" id={`${optionsId}-persistence-hint`}>
              Files in your home folder survive the desktop.
            </p>
          </div>
          {form.persistence && (
            <div className="field">
              <label htmlFor={`${optionsId}-size`}>Home volume size</label>
              <input type="text" autoComplete="off" spellCheck={false} value={form.size} onChange={set('size')} {...field('size')} />
              <p className="hint" id={`${optionsId}-size-hint`}>
                Such as 20Gi{t.persistence?.maxSize ? `; at most ${t.persistence.maxSize}` : ''}.
              </p>
              {fieldError('size')}
            </div>
          )}
          <div className="actions">
            <button type="submit" className="button primary" disabled={blocked || state.fetching}>
              {state.fetching ? 'Launching…' : 'Launch with these options'}
            </button>
          </div>
        </form>
      )}
    </article>
  );
}

/** A steady, readable tile colour per application icon name (white text on it keeps a 4.5:1 contrast). */
export function iconColour(name: string): string {
  let hash = 0;
  for (const ch of name) hash = (hash * 31 + ch.charCodeAt(0)) >>> 0;
  return `hsl(${hash % 360} 55% 32%)`;
}
