// Structured logs, one line per event: JSON for machines (the image, CI, anything piped), readable text when a
// person runs the service in a terminal. Credentials never reach a log line: the redaction list covers every
// place a token, cookie or password could sit in the objects we log, and it applies before either format.
import { pino, type DestinationStream, type Logger } from 'pino';

export type { Logger };

export type LogFormat = 'json' | 'text';

const LEVELS: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };
const OMITTED = new Set(['level', 'time', 'msg', 'service', 'pid', 'hostname']);

/** `LOG_FORMAT` when set, otherwise text on a terminal and JSON everywhere else. */
export function logFormat(env: Record<string, string | undefined> = process.env, isTTY = Boolean(process.stdout.isTTY)): LogFormat {
  const v = env.LOG_FORMAT;
  if (v === 'json' || v === 'text') return v;
  return isTTY ? 'text' : 'json';
}

/** One JSON log line as a person reads it: `12:03:04 INFO  message key=value …`. */
export function formatLine(json: string): string {
  let entry: Record<string, unknown>;
  try {
    entry = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json;
  }
  const time = typeof entry.time === 'string' ? entry.time.slice(11, 19) : '';
  const level = (LEVELS[entry.level as number] ?? String(entry.level)).padEnd(5);
  const fields = Object.entries(entry)
    .filter(([k]) => !OMITTED.has(k))
    .map(([k, v]) => `${k}=${typeof v === 'string' && !/\s/.test(v) ? v : JSON.stringify(v)}`);
  return [time, level, entry.msg ?? '', ...fields].filter((p) => p !== '').join(' ');
}

function textDestination(out: NodeJS.WritableStream): DestinationStream {
  return {
    write(chunk: string) {
      for (const line of chunk.split('\n')) if (line) out.write(`${formatLine(line)}\n`);
    },
  };
}

export function createLogger(level = process.env.LOG_LEVEL ?? 'info', format: LogFormat = logFormat()): Logger {
  const options = {
    level,
    base: { service: 'vdi-operator' },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: {
      paths: [
        'token',
        'password',
        'authorization',
        'cookie',
        '*.token',
        '*.password',
        '*.authorization',
        '*.cookie',
        'req.headers.authorization',
        'req.headers.cookie',
        'headers.authorization',
        'headers.cookie',
      ],
      censor: '[redacted]',
    },
  };
  return format === 'text' ? pino(options, textDestination(process.stdout)) : pino(options);
}
