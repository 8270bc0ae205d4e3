import { useQuery } from 'urql';
import type { CapacityQuery, MeQuery } from '../__generated__/graphql.ts';
import { TemplatesQuery } from '../api/documents.ts';
import { ErrorMessage } from '../components/error-message.tsx';
import { usageText } from '../components/resource-panels.tsx';
import { TemplateCard } from '../components/template-card.tsx';
import { describeError } from '../lib/errors.ts';
import { navigate, PATHS, useDocumentTitle } from '../router.ts';

interface Props {
  me: MeQuery['me'];
  capacity?: CapacityQuery['capacity'];
}

export function TemplatesPage({ me, capacity }: Props) {
  useDocumentTitle('Templates');
  const [{ data, error, fetching }] = useQuery({ query: TemplatesQuery });
  return (
    <>
      <div className="page-head">
        <h1 tabIndex={-1}>Templates</h1>
        <p className="summary">
          {capacity && (
            <>
              <strong>{capacity.freeSlices}</strong> of {capacity.totalSlices} GPU slices free ·{' '}
            </>
          )}
          Your quota: GPU slices {usageText(me.quota.gpus.used, me.quota.gpus.limit)}, desktops{' '}
          {usageText(me.quota.sessions.used, me.quota.sessions.limit)} ·{' '}
          <a href={PATHS.resources} onClick={(e) => (e.preventDefault(), navigate(PATHS.resources))}>
            Resources
          </a>
        </p>
      </div>
      {error && <ErrorMessage error={describeError(error)} />}
      {fetching && !data && <p className="muted">Loading templates…</p>}
      {data && data.templates.length === 0 && <p className="empty">No templates yet: an administrator has to create one.</p>}
      <div className="grid">
        {data?.templates.map((t) => (
          <TemplateCard
            key={t.name}
            template={t}
            quota={me.quota}
            capacity={capacity}
            onLaunched={(id, displayName) => navigate(PATHS.sessions, { launched: id, displayName })}
          />
        ))}
      </div>
    </>
  );
}
