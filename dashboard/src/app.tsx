// The shell: who is signed in, the navigation, the live-updates banner and the page for the current path.
// My sessions are subscribed to once here, so every page sees them change; quota and capacity are re-read
// when they do (the schema has no subscription for capacity).
import { useEffect, useRef, type MouseEvent } from 'react';
import { useQuery } from 'urql';
import { CapacityQuery, MeQuery } from './api/documents.ts';
import { useLiveSessions } from './api/live-sessions.ts';
import { ConnectionBanner } from './components/connection-banner.tsx';
import { ErrorMessage } from './components/error-message.tsx';
import { describeError } from './lib/errors.ts';
import { AdminPage } from './pages/admin-page.tsx';
import { ResourcesPage } from './pages/resources-page.tsx';
import { SessionsPage } from './pages/sessions-page.tsx';
import { TemplatesPage } from './pages/templates-page.tsx';
import { navigate, PATHS, routeOf, useLocation, type Route } from './router.ts';

const NAV: { route: Route; label: string; admin?: boolean }[] = [
  { route: 'templates', label: 'Templates' },
  { route: 'sessions', label: 'My desktops' },
  { route: 'resources', label: 'Resources' },
  { route: 'admin', label: 'All desktops', admin: true },
];

export function App() {
  const { pathname, state } = useLocation();
  const route = routeOf(pathname);
  const [me, refetchMe] = useQuery({ query: MeQuery });
  const [capacity, refetchCapacity] = useQuery({ query: CapacityQuery, requestPolicy: 'cache-and-network' });
  const live = useLiveSessions(false);
  const main = useRef<HTMLElement>(null);
  const launched = (state as { launched?: string } | null)?.launched;

  // My sessions changed: my quota and the free slices may have too.
  useEffect(() => {
    if (live.version === 0) return;
    const timer = setTimeout(() => {
      refetchMe({ requestPolicy: 'network-only' });
      refetchCapacity({ requestPolicy: 'network-only' });
    }, 250);
    return () => clearTimeout(timer);
  }, [live.version, refetchMe, refetchCapacity]);

  // A page change moves focus to the new page's heading (unless a launched desktop takes it).
  const first = useRef(true);
  useEffect(() => {
    if (first.current) {
      first.current = false;
      return;
    }
    refetchCapacity({ requestPolicy: 'network-only' });
    if (!launched) main.current?.querySelector<HTMLElement>('h1')?.focus();
  }, [pathname, launched, refetchCapacity]);

  const go = (path: string) => (e: MouseEvent<HTMLAnchorElement>) => {
    if (e.metaKey || e.ctrlKey || e.shiftKey || e.button !== 0) return;
    e.preventDefault();
    navigate(path);
  };

  const user = me.data?.me;
  const page = (() => {
    if (me.error) return <ErrorMessage error={describeError(me.error)} />;
    if (!user) return <p className="muted">Loading…</p>;
    switch (route) {
      case 'templates':
        return <TemplatesPage me={user} capacity={capacity.data?.capacity} />;
      case 'sessions':
        return <SessionsPage live={live} launched={launched} />;
      case 'resources':
        return <ResourcesPage me={user} capacity={capacity.data?.capacity} />;
      case 'admin':
        return user.isAdmin ? <AdminPage /> : <ErrorMessage error={{ code: 'FORBIDDEN', title: 'This page is for administrators.' }} />;
      default:
        return (
          <>
            <h1 tabIndex={-1}>Not found</h1>
            <p>
              There is no page at this address.{' '}
              <a href="/" onClick={go('/')}>
                Go to the templates
              </a>
              .
            </p>
          </>
        );
    }
  })();

  return (
    <>
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <header className="top">
        <a className="brand" href="/" onClick={go('/')}>
          Desktops
        </a>
        <nav aria-label="Main">
          <ul>
            {NAV.filter((n) => !n.admin || user?.isAdmin).map((n) => (
              <li key={n.route}>
                <a href={PATHS[n.route]} onClick={go(PATHS[n.route])} aria-current={route === n.route ? 'page' : undefined}>
                  {n.label}
                  {n.route === 'sessions' && live.sessions.length > 0 && <span className="count"> ({live.sessions.length})</span>}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        {user && (
          <div className="who">
            <span className="user" data-testid="user">
              {user.name}
            </span>
            <a className="button small" href="/logout">
              Sign out
            </a>
          </div>
        )}
      </header>
      <ConnectionBanner />
      <main id="main" ref={main} tabIndex={-1}>
        {/* Only while the launched desktop is there: it may be ended, by its user or an administrator. */}
        {launched && route === 'sessions' && live.sessions.some((s) => s.id === launched) && (
          <p className="notice" role="status">
            {(state as { displayName?: string }).displayName ?? 'Your desktop'} launched: this page follows it live.
          </p>
        )}
        {page}
      </main>
    </>
  );
}
