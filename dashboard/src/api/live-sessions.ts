// Sessions kept current by the sessionEvents subscription: the list query gives the starting point, every
// event after it is applied on top (an event is newer than any list), and a reconnection starts both over so
// nothing that happened while offline is missed. No polling.
import { useEffect, useState } from 'react';
import { useClient, type CombinedError } from 'urql';
import type { SessionFieldsFragment } from '../__generated__/graphql.ts';
import { useConnection } from './connection.ts';
import { SessionEventsSubscription, SessionsQuery } from './documents.ts';

export type Session = SessionFieldsFragment;

export interface LiveSessions {
  sessions: Session[];
  loaded: boolean;
  error?: CombinedError;
  /** Incremented on every event: a cue for views derived from sessions (quota, capacity) to refresh. */
  version: number;
}

export function applyEvent(current: Map<string, Session>, type: string, session: Session): Map<string, Session> {
  const next = new Map(current);
  if (type === 'DELETED') next.delete(session.id);
  else next.set(session.id, session);
  return next;
}

export function sortSessions(sessions: Iterable<Session>): Session[] {
  return [...sessions].sort((a, b) => b.createdAt.localeCompare(a.createdAt) || a.id.localeCompare(b.id));
}

export function useLiveSessions(allUsers = false): LiveSessions {
  const client = useClient();
  const { generation } = useConnection();
  const restarts = Math.max(0, generation - 1);
  const [state, setState] = useState<LiveSessions>({ sessions: [], loaded: false, version: 0 });

  useEffect(() => {
    let current = new Map<string, Session>();
    // What the subscription said before the list arrived; `null` is a deletion.
    const early = new Map<string, Session | null>();
    let listed = false;
    let version = 0;
    const publish = (error?: CombinedError) =>
      setState({ sessions: sortSessions(current.values()), loaded: listed, version: ++version, ...(error && { error }) });

    const subscription = client.subscription(SessionEventsSubscription, { allUsers }).subscribe((result) => {
      if (result.error) return publish(result.error);
      const event = result.data?.sessionEvents;
      if (!event) return;
      if (!listed) early.set(event.session.id, event.type === 'DELETED' ? null : event.session);
      current = applyEvent(current, event.type, event.session);
      publish();
    });
    let stopped = false;
    void client
      .query(SessionsQuery, { allUsers }, { requestPolicy: 'network-only' })
      .toPromise()
      .then((result) => {
        if (stopped) return;
        if (result.error || !result.data) return publish(result.error);
        const next = new Map(result.data.sessions.map((s) => [s.id, s] as const));
        for (const [id, s] of early) {
          if (s) next.set(id, s);
          else next.delete(id);
        }
        early.clear();
        listed = true;
        current = next;
        publish();
      });
    return () => {
      stopped = true;
      subscription.unsubscribe();
    };
  }, [client, allUsers, restarts]);

  return state;
}
