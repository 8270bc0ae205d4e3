// A TCP proxy in front of the apiserver whose client-to-server direction a test can stall: while stalled, the
// bytes a client sends are held instead of forwarded (its requests hang, as on a partitioned network), and on
// resume they go on to the apiserver, unless the client closed the connection meanwhile, in which case they are
// dropped, as a cancelled request's bytes that never left the machine would be. TLS passes through untouched.
import net from 'node:net';

export interface StallProxy {
  /** The address to put in a kubeconfig instead of the apiserver's (same host, so its certificate still fits). */
  url: string;
  stall(): void;
  resume(): void;
  /** Connections closed by their client while holding stalled bytes: requests that were cancelled before they left. */
  readonly dropped: number;
  close(): Promise<void>;
}

interface Connection {
  client: net.Socket;
  upstream: net.Socket;
  held: Buffer[];
}

export async function startStallProxy(target: URL): Promise<StallProxy> {
  const connections = new Set<Connection>();
  let stalled = false;
  let dropped = 0;
  const server = net.createServer((client) => {
    const upstream = net.connect(Number(target.port), target.hostname);
    const conn: Connection = { client, upstream, held: [] };
    connections.add(conn);
    const end = () => {
      if (!connections.delete(conn)) return;
      if (conn.held.length) dropped++;
      conn.held = [];
      client.destroy();
      upstream.destroy();
    };
    client.on('data', (chunk: Buffer) => (stalled || conn.held.length ? conn.held.push(chunk) : upstream.write(chunk)));
    upstream.on('data', (chunk: Buffer) => client.write(chunk));
    for (const socket of [client, upstream]) {
      socket.on('end', end);
      socket.on('close', end);
      socket.on('error', end);
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `${target.protocol}//127.0.0.1:${port}`,
    stall: () => void (stalled = true),
    resume() {
      stalled = false;
      for (const conn of connections) {
        if (conn.held.length) conn.upstream.write(Buffer.concat(conn.held.splice(0)));
      }
    },
    get dropped() {
      return dropped;
    },
    async close() {
      for (const conn of connections) {
        conn.client.destroy();
        conn.upstream.destroy();
      }
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
