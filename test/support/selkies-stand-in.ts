// A stand-in for a Selkies desktop pod's only entry point, nginx on 8080 with basic auth on: every request,
// WebSocket upgrades included, must carry `Authorization: Basic <user:password>` (SELKIES_BASIC_AUTH_USER and
// _PASSWORD) or gets nginx's 401. It answers each authorised request with a JSON echo of what it received, and
// keeps a list of every request, so a test can see exactly which headers reached the desktop.
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';

export interface SeenRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  upgrade: boolean;
  authorised: boolean;
}

/** The body of every authorised answer. */
export interface StandInEcho {
  server: 'selkies-stand-in';
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
}

export interface SelkiesStandIn {
  url: string;
  /** Every request that reached the stand-in, in order. */
  seen: SeenRequest[];
  close(): Promise<void>;
}

/** The WebSocket paths of the Selkies web client: its signalling and the data channel fallback. */
const WEBSOCKET_PATHS = ['/ws', '/webrtc/signalling'];

export async function startSelkiesStandIn(opts: { host: string; port?: number; user: string; password: string }): Promise<SelkiesStandIn> {
  const expected = `Basic ${Buffer.from(`${opts.user}:${opts.password}`).toString('base64')}`;
  const seen: SeenRequest[] = [];
  const record = (method: string, url: string, headers: IncomingHttpHeaders, upgrade: boolean) => {
    const authorised = headers.authorization === expected;
    seen.push({ method, url, headers: { ...headers }, upgrade, authorised });
    return authorised;
  };
  const echo = (method: string, url: string, headers: IncomingHttpHeaders): StandInEcho => ({ server: 'selkies-stand-in', method, url, headers });

  const server: Server = createServer((req, res) => {
    if (!record(req.method ?? 'GET', req.url ?? '/', req.headers, false)) {
      res
        .writeHead(401, { 'WWW-Authenticate': 'Basic realm="Selkies"', 'Content-Type': 'text/html' })
        .end('<html><body>401 Authorization Required</body></html>\n');
      return;
    }
    res
      .writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' })
      .end(JSON.stringify(echo(req.method ?? 'GET', req.url ?? '/', req.headers)));
  });

  const sockets = new WebSocketServer({ noServer: true });
  server.on('upgrade', (req, socket: Duplex, head: Buffer) => {
    const url = req.url ?? '/';
    const authorised = record(req.method ?? 'GET', url, req.headers, true);
    const known = WEBSOCKET_PATHS.some((p) => url === p || url.startsWith(`${p}/`) || url.startsWith(`${p}?`));
    if (!authorised || !known) {
      socket.end(
        authorised
          ? 'HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n'
          : 'HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm="Selkies"\r\nContent-Length: 0\r\n\r\n',
      );
      return;
    }
    sockets.handleUpgrade(req, socket, head, (ws) => {
      // The first message says who is speaking, the way Selkies' signalling greets a peer; then every message comes back.
      ws.send(JSON.stringify(echo('GET', url, req.headers)));
      ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
    });
  });

  const port = opts.port ?? 8080;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, opts.host, () => resolve());
  });
  return {
    url: `http://${opts.host}:${port}`,
    seen,
    async close() {
      for (const client of sockets.clients) client.terminate();
      sockets.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
