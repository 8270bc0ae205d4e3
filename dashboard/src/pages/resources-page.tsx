import type { CapacityQuery, MeQuery } from '../__generated__/graphql.ts';
import { CapacityPanel, QuotaPanel } from '../components/resource-panels.tsx';
import { useDocumentTitle } from '../router.ts';

export function ResourcesPage({ me, capacity }: { me: MeQuery['me']; capacity?: CapacityQuery['capacity'] }) {
  useDocumentTitle('Resources');
  return (
    <>
      <div className="page-head">
        <h1 tabIndex={-1}>Resources</h1>
        <p className="summary">What you may still start, and what the cluster has free.</p>
      </div>
      <div className="grid panels">
        <QuotaPanel quota={me.quota} />
        {capacity ? <CapacityPanel capacity={capacity} /> : <p className="muted">Loading capacity…</p>}
      </div>
    </>
  );
}
