import { describe, expect, it } from 'vitest';
import { formatLine, logFormat } from './log.ts';

describe('logFormat', () => {
  it('is text on a terminal and JSON when piped, unless LOG_FORMAT says otherwise', () => {
    expect(logFormat({}, true)).toBe('text');
    expect(logFormat({}, false)).toBe('json');
    expect(logFormat({ LOG_FORMAT: 'json' }, true)).toBe('json');
    expect(logFormat({ LOG_FORMAT: 'text' }, false)).toBe('text');
  });
});

describe('formatLine', () => {
  it('shows time, level, message and the other fields as key=value', () => {
    const line = JSON.stringify({
      level: 30,
      time: '2026-12-06T12:03:04.123Z',
      service: 'vdi-operator',
      msg: 'ready',
      url: 'http://vdi.localhost:8080',
      n: 2,
    });
    expect(formatLine(line)).toBe('12:03:04 INFO  ready url=http://vdi.localhost:8080 n=2');
  });

  it('quotes values with spaces and objects', () => {
    const line = JSON.stringify({ level: 50, time: '2026-12-06T12:03:04.123Z', msg: 'failed', error: 'a b', detail: { code: 1 } });
    expect(formatLine(line)).toBe('12:03:04 ERROR failed error="a b" detail={"code":1}');
  });

  it('passes through a line that is not JSON', () => {
    expect(formatLine('plain')).toBe('plain');
  });
});
