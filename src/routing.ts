// Routes match exactly: letter case and a trailing slash count. Express matches case-insensitively by
// default, so /METRICS, /AUTH/forward and /TURN/… answered like their lower-case forms, while the portal's
// IngressRoute (Traefik matches paths case-sensitively) keeps out only the lower-case ones.
import express from 'express';

/** Sets exact matching on an app: it applies to the routes and mounts made on the app itself. */
export function matchRoutesExactly(app: express.Express): express.Express {
  app.set('case sensitive routing', true);
  app.set('strict routing', true);
  return app;
}

/** A Router that matches exactly (a Router does not inherit its app's settings). */
export function exactRouter(): express.Router {
  return express.Router({ caseSensitive: true, strict: true });
}
