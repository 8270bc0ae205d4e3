// The two etcd v3 calls the harness makes of its datastore (the current revision, and a compaction at it), spoken
// as gRPC over HTTP/2 so that they reach etcd and kine alike: kine serves the etcd gRPC API but not etcd's JSON
// gateway. The messages are tiny, so they are encoded by hand (protobuf varints) rather than through a gRPC stack.
import http2 from 'node:http2';

function varint(n: bigint): number[] {
  const out: number[] = [];
  let v = n;
  do {
    let byte = Number(v & 0x7fn);
    v >>= 7n;
    if (v) byte |= 0x80;
    out.push(byte);
  } while (v);
  return out;
}

function readVarint(buf: Buffer, at: number): [bigint, number] {
  let result = 0n;
  let shift = 0n;
  let i = at;
  for (;;) {
    const byte = buf[i++]!;
    result |= BigInt(byte & 0x7f) << shift;
    if (!(byte & 0x80)) return [result, i];
    shift += 7n;
  }
}

/** The fields of one protobuf message: number → varint value or length-delimited bytes (last one wins). */
export function decodeFields(buf: Buffer): Map<number, bigint | Buffer> {
  const fields = new Map<number, bigint | Buffer>();
  let i = 0;
  while (i < buf.length) {
    const [key, next] = readVarint(buf, i);
    i = next;
    const field = Number(key >> 3n);
    const wire = Number(key & 7n);
    if (wire === 0) {
      const [v, after] = readVarint(buf, i);
      fields.set(field, v);
      i = after;
    } else if (wire === 2) {
      const [len, after] = readVarint(buf, i);
      fields.set(field, buf.subarray(after, after + Number(len)));
      i = after + Number(len);
    } else if (wire === 1) i += 8;
    else if (wire === 5) i += 4;
    else throw new Error(`unsupported protobuf wire type ${wire}`);
  }
  return fields;
}

async function unary(endpoint: string, method: string, message: number[]): Promise<Buffer> {
  const session = http2.connect(endpoint);
  try {
    return await new Promise<Buffer>((resolve, reject) => {
      session.once('error', reject);
      const frame = Buffer.alloc(5 + message.length);
      frame.writeUInt32BE(message.length, 1);
      Buffer.from(message).copy(frame, 5);
      const req = session.request({ ':method': 'POST', ':path': method, 'content-type': 'application/grpc', te: 'trailers' });
      const chunks: Buffer[] = [];
      let status: string | undefined;
      let detail: string | undefined;
      req.on('trailers', (t) => {
        status = String(t['grpc-status']);
        detail = t['grpc-message'] as string | undefined;
      });
      req.on('response', (h) => {
        if (h['grpc-status'] !== undefined) {
          status = String(h['grpc-status']);
          detail = h['grpc-message'] as string | undefined;
        }
      });
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('error', reject);
      req.on('end', () => {
        if (status !== '0') return reject(new Error(`${method}: grpc-status ${status} ${decodeURIComponent(detail ?? '')}`));
        const body = Buffer.concat(chunks);
        resolve(body.subarray(5, 5 + body.readUInt32BE(1)));
      });
      req.end(frame);
    });
  } finally {
    session.close();
  }
}

/** The datastore's current revision (from a one-key Range's response header). */
export async function currentRevision(endpoint: string): Promise<number> {
  const key = Buffer.from('/registry/health');
  const body = await unary(endpoint, '/etcdserverpb.KV/Range', [0x0a, ...varint(BigInt(key.length)), ...key]);
  const header = decodeFields(body).get(1) as Buffer;
  return Number(decodeFields(header).get(3) as bigint);
}

/** Compacts the datastore at `revision`: watches resuming from before it get "compacted" (410 from the apiserver). */
export async function compact(endpoint: string, revision: number): Promise<void> {
  await unary(endpoint, '/etcdserverpb.KV/Compact', [0x08, ...varint(BigInt(revision)), 0x10, 0x01]);
}
