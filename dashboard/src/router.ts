// Four pages on plain history.pushState: enough routing for this app without a router library.
import { useEffect, useSyncExternalStore } from 'react';

export type Route = 'templates' | 'sessions' | 'resources' | 'admin';

export const PATHS: Record<Route, string> = { templates: '/', sessions: '/sessions', resources: '/resources', admin: '/admin' };

export function routeOf(pathname: string): Route | undefined {
  const path = pathname.replace(/\/+$/, '') || '/';
  return (Object.keys(PATHS) as Route[]).find((r) => PATHS[r] === path);
}

const listeners = new Set<() => void>();
const notify = () => listeners.forEach((l) => l());
if (typeof window !== 'undefined') window.addEventListener('popstate', notify);

export function navigate(path: string, state?: unknown): void {
  window.history.pushState(state ?? null, '', path);
  notify();
}

export function useLocation(): { pathname: string; state: unknown } {
  const pathname = useSyncExternalStore(
    (l) => {
      listeners.add(l);
      return () => listeners.delete(l);
    },
    () => window.location.pathname,
  );
  return { pathname, state: window.history.state as unknown };
}

export function useDocumentTitle(title: string): void {
  useEffect(() => {
    document.title = `${title} · Desktops`;
  }, [title]);
}
