// The live-updates connection's state, for the "reconnecting" banner and for subscribers that must start
// over (refetch what they missed) after a reconnect.
import { useSyncExternalStore } from 'react';

export interface ConnectionState {
  status: 'idle' | 'connecting' | 'connected' | 'reconnecting';
  /** Failed attempts since the last successful connection. */
  attempt: number;
  /** Incremented on every successful (re)connection. */
  generation: number;
}

let state: ConnectionState = { status: 'idle', attempt: 0, generation: 0 };
const listeners = new Set<() => void>();

export function setConnection(next: Partial<ConnectionState>): void {
  state = { ...state, ...next };
  for (const l of listeners) l();
}

export function connection(): ConnectionState {
  return state;
}

export function useConnection(): ConnectionState {
  return useSyncExternalStore(
    (l) => {
      listeners.add(l);
      return () => listeners.delete(l);
    },
    () => state,
  );
}
