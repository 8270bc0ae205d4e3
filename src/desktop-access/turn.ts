// TURN credentials for the desktop pods. Selkies calls `SELKIES_TURN_REST_URI` =
// `<base>/<namespace>/<session>/<token>` (it drops query strings, so the per-session token rides in the path)
// and expects an RTC configuration: `iceServers` whose `turn:`/`turns:` URLs carry explicit ports, which its
// parser splits on `:`. The credentials follow coturn's REST-API scheme (`use-auth-secret`): username
// `<unix expiry>:<user>`, password base64(HMAC-SHA1(shared secret, username)). The shared secret never
// enters the pod; only short-lived credentials derived from it do.
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type express from 'express';
import type { Caches } from '../../operator/caches.ts';
import { SECRET_KEY_TURN_TOKEN } from '../../operator/builders.ts';
import { childName } from '../../operator/naming.ts';
import type { Config } from '../config.ts';
import type { Logger } from '../log.ts';
import { exactRouter } from '../routing.ts';

export interface TurnCredential {
  username: string;
  credential: string;
  expiresAt: number;
}

/** coturn REST-API credentials for `user`, valid until now + lifetime (seconds). */
export function turnCredential(secret: string, user: string, nowSeconds: number, lifetimeSeconds: number): TurnCredential {
  const expiresAt = Math.floor(nowSeconds) + lifetimeSeconds;
  const username = `${expiresAt}:${user}`;
  const credential = createHmac('sha1', secret).update(username).digest('base64');
  return { username, credential, expiresAt };
}

export interface RtcConfiguration {
  lifetimeDuration: string;
  iceServers: { urls: string[]; username?: string; credential?: string }[];
  blockStatus: 'NOT_BLOCKED';
  iceTransportPolicy: 'all';
}

export interface TurnSettings {
  host: string;
  port: number;
  tlsPort?: number;
  credentialSeconds: number;
}

export function rtcConfiguration(settings: TurnSettings, credential: TurnCredential): RtcConfiguration {
  const { host, port, tlsPort } = settings;
  const turnUrls = [`turn:${host}:${port}?transport=udp`, `turn:${host}:${port}?transport=tcp`];
  if (tlsPort) turnUrls.push(`turns:${host}:${tlsPort}?transport=tcp`);
  return {
    lifetimeDuration: `${settings.credentialSeconds}s`,
    iceServers: [{ urls: [`stun:${host}:${port}`] }, { urls: turnUrls, username: credential.username, credential: credential.credential }],
    blockStatus: 'NOT_BLOCKED',
    iceTransportPolicy: 'all',
  };
}

/** Constant-time comparison of two strings of any length (both are hashed to equal-length digests first). */
export function sameSecret(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b) && expected.length > 0;
}

export function turnRouter(opts: { config: Config; caches: Caches; log: Logger }): express.Router {
  const { config, caches, log } = opts;
  const router = exactRouter();
  router.get('/turn/:namespace/:session/:token', (req, res) => {
    res.set('Cache-Control', 'no-store');
    const { namespace, session: name, token } = req.params;
    const session = caches.sessions.get(`${namespace}/${name}`);
    const secret = session && caches.secrets.get(`${namespace}/${childName(session)}`);
    const expected = secret?.data?.[SECRET_KEY_TURN_TOKEN];
    // One answer for an unknown session and a wrong token: the endpoint is no oracle for session names.
    if (!session || !expected || !sameSecret(token, Buffer.from(expected, 'base64').toString('utf8'))) {
      log.info({ session: `${namespace}/${name}` }, 'refused a TURN credential request');
      res.status(403).json({ error: 'forbidden' });
      return;
    }
    const [signing] = config.turn.sharedSecrets;
    if (!signing || !config.turn.host) {
      res.status(503).json({ error: 'TURN is not configured' });
      return;
    }
    const settings: TurnSettings = {
      host: config.turn.host,
      port: config.turn.port,
      tlsPort: config.turn.tlsPort,
      credentialSeconds: config.turn.credentialSeconds,
    };
    const credential = turnCredential(signing, session.spec.user, Date.now() / 1000, settings.credentialSeconds);
    log.info({ session: `${namespace}/${name}`, expiresAt: credential.expiresAt }, 'issued TURN credentials');
    res.json(rtcConfiguration(settings, credential));
  });
  return router;
}
