// A stand-in for the apiserver's socket that records the raw bytes of each request's impersonation headers, so a
// test sees exactly what leaves the process (Node's header encoding included), before any server decodes it.
import http from 'node:http';
import { KubeConfig } from '@kubernetes/client-node';
import { KubeClient } from '../../src/kube/client.ts';

export interface ImpersonationRecorder {
  client: KubeClient;
  seen: { user: Buffer[]; groups: Buffer[] }[];
  close(): Promise<void>;
}

export async function impersonationRecorder(): Promise<ImpersonationRecorder> {
  const seen: { user: Buffer[]; groups: Buffer[] }[] = [];
  const server = http.createServer((req, res) => {
    // rawHeaders holds each value as Node read it: one character per byte.
    const bytes = (name: string) =>
      req.rawHeaders.flatMap((v, i) => (i % 2 === 0 && v.toLowerCase() === name ? [Buffer.from(req.rawHeaders[i + 1]!, 'latin1')] : []));
    seen.push({ user: bytes('impersonate-user'), groups: bytes('impersonate-group') });
    res.setHeader('content-type', 'application/json');
    res.end('{}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromOptions({
    clusters: [{ name: 'c', server: `http://127.0.0.1:${(server.address() as { port: number }).port}`, skipTLSVerify: true }],
    users: [{ name: 'u' }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
  return { client: new KubeClient(kubeConfig), seen, close: () => new Promise((resolve) => server.close(() => resolve())) };
}
