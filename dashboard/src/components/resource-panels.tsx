// My quota (from the namespace's ResourceQuota) and the cluster's free GPU slices per node.
import type { CapacityQuery, MeQuery } from '../__generated__/graphql.ts';

type Quota = MeQuery['me']['quota'];
type Capacity = CapacityQuery['capacity'];

/** `1 of 2`, or `1 (no limit)` where the quota sets none (or is not provisioned yet: before a first launch). */
export function usageText(used: number, limit?: number | null): string {
  return limit != null ? `${used} of ${limit}` : `${used} (no limit)`;
}

function Usage({ label, used, limit }: { label: string; used: number; limit?: number | null }) {
  return (
    <div className="usage">
      <div className="usage-label">
        <span>{label}</span>
        <span data-testid={`quota-${label.toLowerCase().replaceAll(' ', '-')}`}>{usageText(used, limit)}</span>
      </div>
      {limit != null && <meter min={0} max={Math.max(limit, 1)} value={Math.min(used, Math.max(limit, 1))} aria-label={`${label} used`} />}
    </div>
  );
}

export function QuotaPanel({ quota }: { quota: Quota }) {
  return (
    <section className="panel" aria-labelledby="quota-title">
      <h2 id="quota-title">My quota</h2>
      <Usage label="Desktops" used={quota.sessions.used} limit={quota.sessions.limit} />
      <Usage label="GPU slices" used={quota.gpus.used} limit={quota.gpus.limit} />
    </section>
  );
}

export function CapacityPanel({ capacity }: { capacity: Capacity }) {
  return (
    <section className="panel" aria-labelledby="capacity-title">
      <h2 id="capacity-title">Free GPU slices</h2>
      <p className="big-number">
        <span data-testid="free-slices">{capacity.freeSlices}</span> <span className="muted">of {capacity.totalSlices} free</span>
      </p>
      {capacity.freeSlices === 0 && capacity.totalSlices > 0 && (
        <p className="warning">Every GPU slice is in use: a new GPU desktop waits until one is free.</p>
      )}
      <div className="table-wrap">
        <table className="nodes">
          <caption className="visually-hidden">GPU slices per node</caption>
          <thead>
            <tr>
              <th scope="col">Node</th>
              <th scope="col">GPU</th>
              <th scope="col">State</th>
              <th scope="col" className="num">
                Free
              </th>
              <th scope="col" className="num">
                Total
              </th>
            </tr>
          </thead>
          <tbody>
            {capacity.nodes.map((n) => (
              <tr key={n.name} data-node={n.name}>
                <th scope="row">{n.name}</th>
                <td>{n.product ?? '—'}</td>
                <td>{n.ready ? 'Ready' : 'Not ready'}</td>
                <td className="num" data-testid="node-free">
                  {n.slicesFree}
                </td>
                <td className="num">{n.slicesTotal}</td>
              </tr>
            ))}
            {capacity.nodes.length === 0 && (
              <tr>
                <td colSpan={5}>No GPU nodes in the cluster.</td>
              </tr>
            )}
          </tbody>
        </table>
      </div>
    </section>
  );
}
