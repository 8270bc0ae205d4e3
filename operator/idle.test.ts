import { describe, expect, it } from 'vitest';
import { clientConnectedCondition, idleSchedule, idleVerdict, idleWarningCondition } from './idle.ts';
import type { IdlePolicy } from './resolve.ts';
import { ANNOTATION_EXTENDED_AT, type SessionPresence, type VDISession, type VDISessionStatus } from './v1alpha1.ts';

const MIN = 60_000;
const T0 = Date.parse('2030-01-01T10:00:00Z');
const at = (minutes: number) => new Date(T0 + minutes * MIN);
const iso = (minutes: number) => at(minutes).toISOString();
const policy: IdlePolicy = { timeoutMs: 30 * MIN, warningMs: 5 * MIN, maxAgeMs: undefined };

function running(presence?: SessionPresence, status: VDISessionStatus = {}, annotations?: Record<string, string>): VDISession {
  return {
    apiVersion: 'vdi.kasm.io/v1alpha1',
    kind: 'VDISession',
    metadata: { name: 'desk', namespace: 'ns', generation: 1, ...(annotations && { annotations }) },
    spec: { user: 'alice@example.com', template: 'ubuntu' },
    status: { phase: 'Running', startTime: iso(0), ...(presence && { presence }), ...status },
  };
}

describe('idleSchedule', () => {
  it('counts a desktop that never reported as idle from the moment it was Running (unknown is not busy)', () => {
    const s = idleSchedule(running(), policy, at(1));
    expect(s).toEqual({ idleSince: at(0), stopAt: at(30), reason: 'Idle', warnAt: at(25) });
  });

  it('never schedules a stop for idleness while a client is connected', () => {
    const s = idleSchedule(running({ connected: true, lastActivity: iso(2) }), policy, at(500));
    expect(s.stopAt).toBeUndefined();
    expect(s.idleSince).toBeUndefined();
  });

  it('restarts the clock when the last client leaves', () => {
    const s = idleSchedule(running({ connected: false, lastActivity: iso(40), idleSince: iso(40) }), policy, at(41));
    expect(s).toMatchObject({ idleSince: at(40), stopAt: at(70), warnAt: at(65) });
  });

  it('ignores a report older than the current run (a resumed desktop starts its clock afresh)', () => {
    const s = idleSchedule(running({ connected: false, lastActivity: iso(-90), idleSince: iso(-90) }), policy, at(1));
    expect(s.stopAt).toEqual(at(30));
  });

  it('restarts the clock on an extend, but not on one stamped in the future', () => {
    expect(idleSchedule(running(undefined, {}, { [ANNOTATION_EXTENDED_AT]: iso(20) }), policy, at(21)).stopAt).toEqual(at(50));
    expect(idleSchedule(running(undefined, {}, { [ANNOTATION_EXTENDED_AT]: iso(900) }), policy, at(21)).stopAt).toEqual(at(30));
  });

  it('stops at the maximum age even with a client connected, whichever comes first', () => {
    const aged = { ...policy, maxAgeMs: 60 * MIN };
    expect(idleSchedule(running({ connected: true, lastActivity: iso(1) }), aged, at(2))).toMatchObject({
      stopAt: at(60),
      reason: 'MaxAge',
      warnAt: at(55),
    });
    expect(idleSchedule(running(), aged, at(2))).toMatchObject({ stopAt: at(30), reason: 'Idle' });
  });

  it('never warns before the idle period began, even with a warning longer than the timeout', () => {
    expect(idleSchedule(running(), { ...policy, warningMs: 60 * MIN }, at(1)).warnAt).toEqual(at(0));
  });

  it('schedules nothing for a desktop that is not Running, or without a policy', () => {
    expect(idleSchedule(running(undefined, { phase: 'Starting' }), policy, at(100)).stopAt).toBeUndefined();
    expect(idleSchedule(running(undefined, { phase: 'Stopped', startTime: undefined }), policy, at(100)).stopAt).toBeUndefined();
    expect(idleSchedule(running(), { timeoutMs: undefined, warningMs: 5 * MIN, maxAgeMs: undefined }, at(100)).stopAt).toBeUndefined();
  });
});

describe('idleVerdict', () => {
  it('does nothing before the warning and asks to be looked at again then', () => {
    expect(idleVerdict(running(), policy, at(10))).toEqual({ verdict: { action: 'none' }, recheckAt: at(25) });
  });

  it('warns from the warning time until the stop, and looks again at the stop', () => {
    expect(idleVerdict(running(), policy, at(26))).toEqual({ verdict: { action: 'warn', stopAt: at(30), reason: 'Idle' }, recheckAt: at(30) });
  });

  it('stops at the deadline, with the reason', () => {
    expect(idleVerdict(running(), policy, at(30)).verdict).toEqual({ action: 'stop', reason: 'Idle' });
    expect(idleVerdict(running({ connected: true, lastActivity: iso(1) }), { ...policy, maxAgeMs: 60 * MIN }, at(61)).verdict).toEqual({
      action: 'stop',
      reason: 'MaxAge',
    });
  });

  it('keeps a desktop with a client connected forever when there is no maximum age', () => {
    expect(idleVerdict(running({ connected: true, lastActivity: iso(1) }), policy, at(100_000))).toEqual({
      verdict: { action: 'none' },
      recheckAt: undefined,
    });
  });
});

describe('conditions', () => {
  it('says Unknown until the desktop reports, then True or False', () => {
    const s = running();
    expect(clientConnectedCondition(s, undefined, at(0))).toMatchObject({
      type: 'ClientConnected',
      status: 'Unknown',
      reason: 'NoReport',
      observedGeneration: 1,
    });
    expect(clientConnectedCondition(s, { connected: true, lastActivity: iso(1) }, at(1))).toMatchObject({
      status: 'True',
      reason: 'ClientConnected',
    });
    expect(clientConnectedCondition(s, { connected: false, lastActivity: iso(1), idleSince: iso(1) }, at(1))).toMatchObject({
      status: 'False',
      reason: 'NoClient',
    });
  });

  it('warns with the stop time in the message, and is False with one constant reason otherwise', () => {
    const s = running();
    expect(idleWarningCondition(s, { action: 'warn', stopAt: at(30), reason: 'Idle' }, at(26))).toMatchObject({
      type: 'IdleWarning',
      status: 'True',
      reason: 'IdleTimeout',
      message: expect.stringContaining(iso(30)),
    });
    expect(idleWarningCondition(s, { action: 'none' }, at(1))).toMatchObject({ status: 'False', reason: 'NotDue' });
  });
});
