// The client side of the sessions benchmark, in its own process so that the service under test has its
// thread to itself (as the apiserver has its own process): runs `total` requests with `concurrency` in flight
// and reports each latency (ms) and the wall time over IPC.
//   job 'graphql': POST a query to the service with a bearer token.
//   job 'raw':     GET a path from the apiserver (kubeconfig file), impersonating a user.
import { KubeConfig } from '@kubernetes/client-node';
import { KubeClient } from '../src/kube/client.ts';
import { load } from './support.ts';

type Job =
  | { kind: 'graphql'; url: string; token: string; query: string; total: number; concurrency: number }
  | { kind: 'raw'; kubeconfig: string; path: string; as: { username: string; groups: string[] }; total: number; concurrency: number };

process.on('message', async (job: Job) => {
  let one: () => Promise<void>;
  if (job.kind === 'graphql') {
    const body = JSON.stringify({ query: job.query });
    one = async () => {
      const res = await fetch(job.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${job.token}` },
        body,
      });
      const parsed = (await res.json()) as { errors?: unknown };
      if (parsed.errors) throw new Error(JSON.stringify(parsed.errors));
    };
  } else {
    const kc = new KubeConfig();
    kc.loadFromFile(job.kubeconfig);
    const client = new KubeClient(kc);
    one = async () => void (await client.request({ path: job.path, as: job.as }));
  }
  const result = await load(job.total, job.concurrency, one);
  process.send!(result);
});
