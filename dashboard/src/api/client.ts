// The GraphQL client: queries and mutations over HTTP with the session cookie (and the header that proves to
// the service's CSRF protection that this is not a form post), subscriptions over graphql-ws on the same
// origin, which retries with backoff for as long as the page is open. Any UNAUTHENTICATED answer sends the
// browser to the login page, which returns here afterwards.
import { Client, cacheExchange, fetchExchange, mapExchange, subscriptionExchange } from 'urql';
import { createClient as createWsClient, type Client as WsClient } from 'graphql-ws/client';
import { isUnauthenticated } from '../lib/errors.ts';
import { connection, setConnection } from './connection.ts';

const MAX_BACKOFF_MS = 30_000;

/** 1 s, 2 s, 4 s … up to 30 s, each with up to a third of random spread so clients do not return in step. */
export function backoffMs(attempt: number, random = Math.random()): number {
  const base = Math.min(MAX_BACKOFF_MS, 1000 * 2 ** attempt);
  return Math.round(base * (1 - random / 3));
}

let redirecting = false;
export function redirectToLogin(): void {
  if (redirecting) return;
  redirecting = true;
  const here = `${window.location.pathname}${window.location.search}${window.location.hash}`;
  window.location.assign(`/login?return_to=${encodeURIComponent(here)}`);
}

function createWs(onUnauthorized: () => void): WsClient {
  const url = new URL('/graphql', window.location.href);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  return createWsClient({
    url: url.href,
    // The browser sends the session cookie with the upgrade; the service checks the Origin.
    lazy: true,
    keepAlive: 15_000,
    retryAttempts: Infinity,
    shouldRetry: () => true,
    retryWait: async (retries) => {
      setConnection({ status: 'reconnecting', attempt: retries + 1 });
      await new Promise((resolve) => setTimeout(resolve, backoffMs(retries)));
    },
    on: {
      connecting: () => {
        if (connection().status !== 'reconnecting') setConnection({ status: 'connecting' });
      },
      connected: () => setConnection({ status: 'connected', attempt: 0, generation: connection().generation + 1 }),
      closed: (event) => {
        const code = (event as { code?: number }).code;
        // 4401: the cookie is missing, expired or from the wrong origin. graphql-ws treats it as final.
        if (code === 4401) onUnauthorized();
        else if (connection().status === 'connected') setConnection({ status: 'reconnecting', attempt: 1 });
      },
    },
  });
}

export function createGraphQLClient(opts: { onUnauthorized?: () => void } = {}): Client {
  const onUnauthorized = opts.onUnauthorized ?? redirectToLogin;
  let ws: WsClient | undefined;
  const client: Client = new Client({
    url: '/graphql',
    preferGetMethod: false,
    fetchOptions: {
      credentials: 'same-origin',
      headers: { 'content-type': 'application/json', 'apollo-require-preflight': 'true' },
    },
    exchanges: [
      mapExchange({
        onError(error) {
          if (isUnauthenticated(error)) onUnauthorized();
        },
      }),
      cacheExchange,
      fetchExchange,
      subscriptionExchange({
        forwardSubscription(request) {
          ws ??= createWs(() => {
            // The WebSocket was refused: ask over HTTP, which renews an expired access token from the refresh
            // token or answers UNAUTHENTICATED (and so goes to login). When renewed, reconnect.
            void fetch('/graphql', {
              method: 'POST',
              credentials: 'same-origin',
              headers: { 'content-type': 'application/json', 'apollo-require-preflight': 'true' },
              body: JSON.stringify({ query: '{ me { name } }' }),
            })
              .then((r) => r.json() as Promise<{ errors?: { extensions?: { code?: string } }[] }>)
              .then((body) => {
                if (body.errors?.some((e) => e.extensions?.code === 'UNAUTHENTICATED')) onUnauthorized();
                else setConnection({ status: 'reconnecting', attempt: 1, generation: connection().generation + 1 });
              })
              .catch(() => setConnection({ status: 'reconnecting', attempt: 1 }));
          });
          const input = { ...request, query: request.query ?? '' };
          return {
            subscribe(sink) {
              const dispose = ws!.subscribe(input, sink);
              return { unsubscribe: dispose };
            },
          };
        },
      }),
    ],
  });
  return client;
}
