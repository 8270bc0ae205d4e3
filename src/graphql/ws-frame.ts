// One socket write per fan-out message. `ws` sends every message as two buffers, the frame header and the
// payload, through cork/uncork: a `writev` and a stream round per message. At 10,000 subscribers that loop is
// the whole cost of an event (profiled: 88 % of the fan-out), and one `write` of a frame built in a single
// buffer costs about 15–20 % less. The frame a server sends is fixed by RFC 6455 (FIN, opcode, length, no
// mask), so we build it ourselves and hand it to the connection's socket, but only while `ws` has no extension
// negotiated and nothing of its own queued; otherwise (or if a `ws` release changes the fields we rely on)
// the message goes through `ws.send`, which gives the same bytes on the wire.
import type { WebSocket } from 'ws';

const FIN_TEXT = 0x81;

/** An unmasked, final text frame (RFC 6455 §5.2) whose payload is the parts' bytes in order. */
export function textFrame(parts: readonly Uint8Array[]): Buffer {
  let length = 0;
  for (const part of parts) length += part.length;
  const header = length < 126 ? 2 : length < 0x10000 ? 4 : 10;
  const frame = Buffer.allocUnsafe(header + length);
  frame[0] = FIN_TEXT;
  if (header === 2) {
    frame[1] = length;
  } else if (header === 4) {
    frame[1] = 126;
    frame.writeUInt16BE(length, 2);
  } else {
    frame[1] = 127;
    frame.writeUInt32BE(0, 2); // messages here are far below 4 GiB
    frame.writeUInt32BE(length, 6);
  }
  let at = header;
  for (const part of parts) {
    frame.set(part, at);
    at += part.length;
  }
  return frame;
}

/** The `ws` internals the single write relies on; all checked before use. */
interface WsInternals {
  _socket?: { write?: (chunk: Uint8Array) => boolean } | null;
  _sender?: { _state?: number; _queue?: unknown[] };
}

/** ws's Sender state when it is writing frames straight through (not deflating, not reading a Blob). */
const SENDER_IDLE = 0;

/** True when a frame written to the socket now lands exactly where `ws.send` would put it. */
function canWriteDirectly(ws: WebSocket): boolean {
  const { _socket: socket, _sender: sender } = ws as unknown as WsInternals;
  return (
    typeof socket?.write === 'function' &&
    sender?._state === SENDER_IDLE &&
    Array.isArray(sender._queue) &&
    sender._queue.length === 0 &&
    ws.extensions === ''
  );
}

/**
 * Sends a text message made of the parts (UTF-8 bytes) to an open connection, in order with everything else
 * sent on it. Returns whether the single-write path was taken (for tests and the benchmark).
 */
export function sendText(ws: WebSocket, parts: readonly Uint8Array[]): boolean {
  if (canWriteDirectly(ws)) {
    (ws as unknown as Required<WsInternals>)._socket!.write!(textFrame(parts));
    return true;
  }
  ws.send(parts.length === 1 ? parts[0]! : Buffer.concat(parts), { binary: false });
  return false;
}
