import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { get as httpGet } from 'node:http';
import type http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dashboardRouter, findDashboardDir } from './dashboard-static.ts';

let dir: string;
let server: http.Server;
let base: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'dashboard-'));
  await mkdir(path.join(dir, 'assets'));
  await writeFile(path.join(dir, 'index.html'), '<!doctype html><title>app</title>');
  await writeFile(path.join(dir, 'assets', 'index-abc123.js'), 'console.log(1)');
  const app = express();
  app.get('/healthz', (_req, res) => void res.json({ status: 'ok' }));
  app.use(dashboardRouter(dir));
  server = app.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});

afterAll(async () => {
  server.close();
  await rm(dir, { recursive: true, force: true });
});

const get = (p: string, accept = 'text/html') => fetch(`${base}${p}`, { headers: { accept } });

describe('dashboardRouter', () => {
  it('serves index.html at / and revalidates it every time', async () => {
    const res = await get('/');
    expect(res.status).toBe(200);
    expect(await res.text()).toContain('<title>app</title>');
    expect(res.headers.get('cache-control')).toBe('no-cache');
  });

  it('caches hashed assets for a year, immutably', async () => {
    const res = await get('/assets/index-abc123.js', '*/*');
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
  });

  it('answers the app’s own routes with index.html', async () => {
    for (const p of ['/sessions', '/resources', '/admin', '/admin/']) {
      const res = await get(p);
      expect(res.status, p).toBe(200);
      expect(res.headers.get('cache-control')).toBe('no-cache');
      expect(await res.text()).toContain('<title>app</title>');
    }
  });

  it('never shadows the service’s paths, missing assets or non-HTML requests', async () => {
    for (const p of [
      '/graphql',
      '/graphql/x',
      '/login',
      '/callback',
      '/logout',
      '/auth/forward',
      '/turn/credentials',
      '/readyz',
      '/metrics',
      '/assets/missing.js',
    ]) {
      expect((await get(p)).status, p).toBe(404);
    }
    expect((await get('/healthz')).status).toBe(200);
    expect((await get('/sessions', 'application/json')).status).toBe(404);
    expect((await get('/favicon.ico')).status).toBe(404);
  });
});

describe('findDashboardDir', () => {
  it('finds dashboard/dist from src/ and from the compiled dist/src/, and dist/dashboard from the image’s dist/src/', async () => {
    const root = await mkdtemp(path.join(os.tmpdir(), 'layout-'));
    try {
      await mkdir(path.join(root, 'dashboard', 'dist'), { recursive: true });
      await writeFile(path.join(root, 'dashboard', 'index.html'), 'vite source, never served');
      expect(findDashboardDir(path.join(root, 'src'))).toBeUndefined();
      expect(findDashboardDir(path.join(root, 'dist', 'src'))).toBeUndefined();
      await writeFile(path.join(root, 'dashboard', 'dist', 'index.html'), 'built');
      expect(findDashboardDir(path.join(root, 'src'))).toBe(path.join(root, 'dashboard', 'dist'));
      // `npm run build && node dist/src/main.js` in the repository.
      expect(findDashboardDir(path.join(root, 'dist', 'src'))).toBe(path.join(root, 'dashboard', 'dist'));

      await mkdir(path.join(root, 'dist', 'dashboard'), { recursive: true });
      await writeFile(path.join(root, 'dist', 'dashboard', 'index.html'), 'built');
      expect(findDashboardDir(path.join(root, 'dist', 'src'))).toBe(path.join(root, 'dist', 'dashboard'));
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });

  it('sends a page opened under another host name to the public URL, path and query kept', async () => {
    const app = express();
    app.use(dashboardRouter(dir, 'http://vdi.localhost:8080'));
    const other = app.listen(0, '127.0.0.1');
    await new Promise((r) => other.once('listening', r));
    try {
      const url = `http://127.0.0.1:${(other.address() as { port: number }).port}`;
      const res = await fetch(`${url}/sessions?x=1`, { headers: { accept: 'text/html' }, redirect: 'manual' });
      expect(res.status).toBe(302);
      expect(res.headers.get('location')).toBe('http://vdi.localhost:8080/sessions?x=1');
      // fetch sets Host itself; a raw request names the public host as a browser there would.
      const sameStatus = await new Promise<number | undefined>((resolve, reject) =>
        httpGet(`${url}/sessions`, { headers: { accept: 'text/html', host: 'vdi.localhost:8080' } }, (res) => {
          res.resume();
          resolve(res.statusCode);
        }).on('error', reject),
      );
      expect(sameStatus).toBe(200);
      for (const p of ['/graphql', '/login', '/auth/forward', '/assets/index-abc123.js']) {
        expect((await fetch(`${url}${p}`, { headers: { accept: 'text/html' }, redirect: 'manual' })).status, p).not.toBe(302);
      }
    } finally {
      other.close();
    }
  });
});
