// Serves the built dashboard (dashboard/dist) at `/`: hashed assets with a year-long immutable cache, and
// index.html, revalidated every time, for any other GET that asks for HTML (the SPA's own routes). The
// service's own paths are never answered with the SPA, so a typo under /auth or /graphql stays a 404.
import { existsSync } from 'node:fs';
import path from 'node:path';
import express from 'express';

const RESERVED = ['/graphql', '/login', '/callback', '/logout', '/auth', '/turn', '/healthz', '/readyz', '/metrics', '/assets'];

/**
 * The built dashboard, wherever this module runs from: the repository's sources (src/ → dashboard/dist), the
 * image (dist/src/ → dist/dashboard, where the Dockerfile copies it) or the repository's compiled dist/
 * (dist/src/ → dashboard/dist, after `npm run build` and `npm run dashboard:build`).
 */
export function findDashboardDir(moduleDir = import.meta.dirname): string | undefined {
  const root = path.resolve(moduleDir, '..');
  const candidates =
    path.basename(root) === 'dist'
      ? [path.join(root, 'dashboard'), path.join(root, '..', 'dashboard', 'dist')]
      : [path.join(root, 'dashboard', 'dist')];
  return candidates.find((dir) => existsSync(path.join(dir, 'index.html')));
}

function reserved(urlPath: string): boolean {
  return RESERVED.some((p) => urlPath === p || urlPath.startsWith(`${p}/`));
}

/**
 * @param publicUrl the portal's public origin. Login works only there (the issuer knows that callback, and the
 * cookie is scoped to it), so a page opened under another name of the same service (`localhost`, a
 * port-forward, the pod's address) is sent there, path and query kept.
 */
export function dashboardRouter(dir: string, publicUrl?: string): express.Router {
  const router = express.Router();
  if (publicUrl) {
    const publicOrigin = new URL(publicUrl);
    router.use((req, res, next) => {
      if (req.method !== 'GET' || req.headers.host === publicOrigin.host || reserved(req.path) || path.extname(req.path) || !req.accepts('html'))
        return next();
      res.redirect(302, `${publicOrigin.origin}${req.originalUrl}`);
    });
  }
  router.use('/assets', express.static(path.join(dir, 'assets'), { immutable: true, maxAge: '365d', index: false, fallthrough: false }));
  router.use(express.static(dir, { index: 'index.html', maxAge: 0, setHeaders: (res) => res.setHeader('Cache-Control', 'no-cache') }));
  router.get(/.*/, (req, res, next) => {
    if (reserved(req.path) || path.extname(req.path) || !req.accepts('html')) return next();
    res.set('Cache-Control', 'no-cache');
    res.sendFile(path.join(dir, 'index.html'));
  });
  return router;
}
