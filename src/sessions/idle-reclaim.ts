// What idle stops give back, computed from the sessions as they are now: the figures of the admin page
// (GraphQL idleReclaim) and of the vdi_idle_* gauges (src/metrics.ts), so both always agree.
import type { ReconcilerConfig } from '../../operator/config.ts';
import { CONDITION_IDLE_WARNING } from '../../operator/idle.ts';
import { sessionGpuSlices } from '../../operator/resolve.ts';
import type { VDISession, VDITemplate } from '../../operator/v1alpha1.ts';

export interface IdleReclaimFigures {
  /** Running desktops with nobody connected, or that have not reported (unknown counts as idle). */
  idleSessions: number;
  warnedSessions: number;
  stoppedSessions: { reason: string; count: number }[];
  /** GPU slices the stopped desktops would otherwise hold. */
  slicesReclaimed: number;
  /** Slice-hours not held by the sessions stopped now, from each stop until now (or the session's expiry). */
  gpuHoursSaved: number;
}

export function idleReclaimFigures(
  sessions: readonly VDISession[],
  templateOf: (name: string) => VDITemplate | undefined,
  config: ReconcilerConfig,
  now: Date,
): IdleReclaimFigures {
  let idleSessions = 0;
  let warnedSessions = 0;
  let slicesReclaimed = 0;
  let sliceMs = 0;
  const stopped = new Map<string, number>();
  for (const session of sessions) {
    const status = session.status;
    if (session.metadata.deletionTimestamp || !status) continue;
    if (status.phase === 'Running') {
      if (!status.presence?.connected) idleSessions++;
      if (status.conditions?.some((c) => c.type === CONDITION_IDLE_WARNING && c.status === 'True')) warnedSessions++;
    } else if (status.phase === 'Stopped') {
      const reason = status.reason ?? 'Suspended';
      stopped.set(reason, (stopped.get(reason) ?? 0) + 1);
      const slices = sessionGpuSlices(session, templateOf(session.spec.template), config);
      slicesReclaimed += slices;
      const from = Date.parse(status.stoppedAt ?? '');
      const until = Math.min(now.getTime(), Date.parse(status.expiresAt ?? '') || Infinity);
      if (!Number.isNaN(from) && until > from) sliceMs += slices * (until - from);
    }
  }
  return {
    idleSessions,
    warnedSessions,
    stoppedSessions: [...stopped].sort(([a], [b]) => a.localeCompare(b)).map(([reason, count]) => ({ reason, count })),
    slicesReclaimed,
    gpuHoursSaved: sliceMs / 3_600_000,
  };
}
