// The client side of the fan-out benchmark, in its own process: opens N WebSocket connections (graphql-ws
// protocol, or raw for the bare-broadcast baseline), reports when all are ready, and for every message
// carrying a send timestamp records the delivery latency. Talks to the parent over IPC.
import WebSocket from 'ws';

const [url, mode, countText, token] = process.argv.slice(2) as [string, 'graphql' | 'raw', string, string | undefined];
const count = Number(countText);
const now = () => performance.timeOrigin + performance.now();
const latencies: number[] = [];
let ready = 0;

const query = 'subscription { sessionEvents { type session { name status { phase message } } } }';
const stampOf = (text: string): number | undefined => {
  const m = /bench:(\d+(?:\.\d+)?)/.exec(text);
  return m ? Number(m[1]) : undefined;
};

function open(i: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, mode === 'graphql' ? 'graphql-transport-ws' : undefined);
    let isReady = false;
    const markReady = () => {
      if (isReady) return;
      isReady = true;
      ready++;
      resolve();
    };
    ws.on('error', reject);
    ws.on('open', () => {
      if (mode === 'graphql') ws.send(JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${token}` } }));
      else markReady();
    });
    ws.on('message', (data) => {
      const text = data.toString();
      const stamp = stampOf(text);
      if (stamp !== undefined) latencies.push(now() - stamp);
      if (mode === 'graphql') {
        if (text.includes('"connection_ack"')) ws.send(JSON.stringify({ id: `s${i}`, type: 'subscribe', payload: { query } }));
        else if (text.includes('"next"'))
          markReady(); // the initial ADDED event: subscribed
        else if (text.includes('"error"')) reject(new Error(text));
      }
    });
  });
}

const batch = 200;
for (let i = 0; i < count; i += batch) await Promise.all(Array.from({ length: Math.min(batch, count - i) }, (_, j) => open(i + j)));
process.send!({ type: 'ready', ready });
process.on('message', (msg: { type: string }) => {
  if (msg.type === 'report') process.send!({ type: 'latencies', latencies: latencies.splice(0) });
  if (msg.type === 'exit') process.exit(0);
});
