import type { AddressInfo } from 'node:net';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Logger } from './log.ts';
import { forwardAuthRouter, type ForwardAuth } from './desktop-access/forward-auth.ts';
import { matchRoutesExactly } from './routing.ts';

let base: string;
let close: () => void;

beforeAll(async () => {
  const app = matchRoutesExactly(express());
  app.get('/metrics', (_req, res) => void res.send('metrics'));
  const forwardAuth = { decide: async () => ({ status: 200, headers: {}, body: 'allowed', outcome: 'allowed' }) } as unknown as ForwardAuth;
  app.use(forwardAuthRouter(forwardAuth, {} as Logger));
  app.use((_req, res) => void res.status(404).send('not found'));
  const server = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  close = () => server.close();
});

afterAll(() => close());

describe('internal routes', () => {
  it.each(['/metrics', '/auth/forward'])('answer %s as written', async (path) => {
    expect((await fetch(`${base}${path}`)).status).toBe(200);
  });

  it.each(['/METRICS', '/Metrics', '/metrics/', '/AUTH/forward', '/Auth/Forward', '/auth/FORWARD', '/auth/forward/', '/auth//forward'])(
    'do not answer %s',
    async (path) => {
      const res = await fetch(`${base}${path}`);
      expect(res.status).toBe(404);
      expect(await res.text()).toBe('not found');
    },
  );
});
