// What a browser meets through a real Traefik v3: the IngressRoute and Middlewares our reconciler wrote for a
// session take the owner to the desktop (a stand-in Selkies on the pod's IP) with the desktop's Basic header
// injected and the portal cookie removed, hand another user our 403 and an anonymous browser our login redirect.
// The scenario runs in a network namespace of its own with its own control plane (see traefik-scenario.ts);
// this file checks what it observed.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MANAGER } from '../../operator/v1alpha1.ts';
import { ensureTraefik } from '../../dev/control-plane.ts';
import { chartObject, renderChart } from '../support/chart.ts';
import {
  INTERNAL_PATH_SPELLINGS,
  runTraefikScenario,
  scenarioPrerequisiteProblem,
  type ScenarioRecord,
  type ScenarioRun,
} from '../support/traefik-scenario.ts';

let run: ScenarioRun | undefined;
let outcome: { record: ScenarioRecord } | { error: unknown } = { error: new Error('the scenario did not run') };

// A failure here fails every test with its message (rather than skipping them): CI runs as root, and a machine
// that cannot make a network namespace cannot show what this file is about.
beforeAll(async () => {
  try {
    const problem = scenarioPrerequisiteProblem();
    if (problem) throw new Error(problem);
    // Built once (about 5 minutes cold) outside the namespace, where the Go module proxy is reachable.
    const traefikBinary = await ensureTraefik((line) => console.log(`[traefik] ${line}`));
    // The portal route exactly as the chart renders it (its entry point aside), for the portal's own checks.
    const objects = await renderChart('vdi', 'vdi-system', ['--set', 'desktops.domain=vdi.test']);
    const portalRoute = chartObject(objects, 'IngressRoute', 'vdi-vdi-operator-portal');
    run = runTraefikScenario({ traefikBinary, timeoutMs: 240_000, portalRoute });
    outcome = { record: await run.result };
  } catch (error) {
    outcome = { error };
  }
}, 600_000);

afterAll(async () => {
  await run?.stop();
});

/** What the scenario observed (or its failure, thrown). */
function seen(): ScenarioRecord {
  if ('error' in outcome) throw outcome.error;
  return outcome.record;
}

const desktopUrl = () => `http://${seen().host}/index.html?x=1`;

describe('the route our reconciler wrote, served by Traefik v3.6', () => {
  it('is an enabled router on the web entry point for the session host, through the forwardAuth middleware', () => {
    expect(seen().router.rule).toBe(`Host(\`${seen().host}\`)`);
    expect(seen().router.status).toBe('enabled');
    expect(seen().router.entryPoints).toEqual(['web']);
    expect(seen().router.middlewares?.map((m) => m.replace(/@kubernetescrd$/, ''))).toEqual([expect.stringMatching(/-auth$/)]);
  });

  it('balances to the desktop pod IP on 8080 (from the EndpointSlice)', () => {
    expect(seen().serverUrls).toEqual([`http://${seen().podIP}:8080`]);
  });

  it("comes from objects the reconciler applied: the session's route, and the namespace's auth Middleware", () => {
    expect(seen().routingObjects.map((o) => o.kind)).toEqual(['IngressRoute', 'Middleware']);
    for (const object of seen().routingObjects) expect(object.managers, object.name).toEqual([MANAGER]);
    const [route, middleware] = seen().routingObjects;
    expect(route!.ownerKinds).toEqual(['VDISession']);
    // Shared by the namespace's sessions: owned by none, it stays while they come and go.
    expect(middleware!.ownerKinds).toEqual([]);
  });
});

describe('the owner', () => {
  it('reaches the desktop with the portal cookie: 200 from the stand-in, for the original path', () => {
    expect(seen().owner.status).toBe(200);
    expect(seen().owner.desktopRequests).toBe(1);
    expect(seen().owner.echo?.url).toBe('/index.html?x=1');
  });

  it("gets the desktop's Basic header injected (its user and the Secret's password)", () => {
    expect(seen().desktopUser).toBe('alice@example.com');
    expect(seen().owner.echo?.headers.authorization).toBe(seen().desktopAuthorization);
  });

  it('never shows the desktop a cookie: neither the portal session nor any other', () => {
    expect(seen().owner.echo?.headers).not.toHaveProperty('cookie');
    for (const request of seen().desktopSaw) expect(request.headers, request.url).not.toHaveProperty('cookie');
  });

  it('has her own Authorization (an API bearer token) replaced by the Basic header', () => {
    expect(seen().ownerBearer.status).toBe(200);
    expect(seen().ownerBearer.echo?.headers.authorization).toBe(seen().desktopAuthorization);
    expect(JSON.stringify(seen().desktopSaw)).not.toContain('Bearer');
  });

  it("sees Traefik's forwarded headers for her desktop host at the desktop", () => {
    expect(seen().owner.echo?.headers['x-forwarded-host']).toBe(seen().host);
    expect(seen().owner.echo?.headers['x-forwarded-proto']).toBe('http');
  });

  it('opens a WebSocket to the signalling path through the route, authenticated the same way', () => {
    expect(seen().ownerWebSocket.error).toBeUndefined();
    expect(seen().ownerWebSocket.opened).toBe(true);
    expect(seen().ownerWebSocket.greeting?.headers.authorization).toBe(seen().desktopAuthorization);
    expect(seen().ownerWebSocket.greeting?.headers).not.toHaveProperty('cookie');
    expect(seen().ownerWebSocket.greeting?.headers.upgrade?.toLowerCase()).toBe('websocket');
    expect(seen().ownerWebSocket.echoed).toMatch(/^hello [0-9a-f]{8}$/);
  });
});

describe('another user', () => {
  it("gets forwardAuth's 403, and the request never reaches the desktop", () => {
    expect(seen().otherUser.status).toBe(403);
    expect(seen().otherUser.desktopRequests).toBe(0);
    expect(seen().otherUser.body).toContain('belongs to someone else');
    expect(seen().otherUser.body).not.toContain(seen().desktopAuthorization.slice('Basic '.length));
  });

  it('cannot open a WebSocket either', () => {
    expect(seen().otherUserWebSocket.opened).toBe(false);
    expect(seen().otherUserWebSocket.status).toBe(403);
  });
});

describe('an anonymous browser', () => {
  it('is redirected to the portal login with the desktop URL to return to', () => {
    expect(seen().anonymousBrowser.status).toBe(302);
    expect(seen().anonymousBrowser.desktopRequests).toBe(0);
    const location = new URL(seen().anonymousBrowser.location!);
    expect(location.pathname).toBe('/login');
    expect(location.searchParams.get('return_to')).toBe(desktopUrl());
  });

  it('comes back to the desktop URL after signing in', () => {
    expect(seen().loginReturnsTo).toBe(desktopUrl());
  });

  it('gets 401 without a redirect when it is not a page load', () => {
    expect(seen().anonymousApi.status).toBe(401);
    expect(seen().anonymousApi.location).toBeUndefined();
    expect(seen().anonymousApi.desktopRequests).toBe(0);
  });
});

describe("the chart's portal route (issue #20)", () => {
  it('reaches the service: the login page redirects to the issuer', () => {
    expect(seen().portal?.login.status).toBe(303);
    expect(seen().portal?.login.location).toMatch(/^http:\/\/127\.0\.0\.1:\d+\//);
  });

  it.each(INTERNAL_PATH_SPELLINGS)('serves nothing internal for %s', (path) => {
    const answer = seen().portal!.internal.find((a) => a.path === path)!;
    // Not the metrics, not a forwardAuth or TURN answer (both always say no-store), not a probe's 200.
    expect(answer).toMatchObject({ metrics: false, noStore: false });
    expect(answer.status).not.toBe(200);
  });
});

describe('the desktop', () => {
  it('was reached only by authorised requests', () => {
    expect(seen().desktopSaw.length).toBeGreaterThanOrEqual(3);
    for (const request of seen().desktopSaw) expect(request.authorised, request.url).toBe(true);
  });
});
