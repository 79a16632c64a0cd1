import { describe, expect, it } from 'vitest';
import { parseUnitStatus } from '../../src/systemd/index.js';

// As `systemctl show` printed it in the booted test host (systemd 252), properties in its own order.
const CRASH_LOOP = `MainPID=0
Result=exit-code
NRestarts=2
ExecMainStatus=3
LoadState=loaded
ActiveState=activating
SubState=auto-restart
UnitFileState=disabled
NeedDaemonReload=no
`;

describe('parseUnitStatus', () => {
  it('types every property, whatever the order', () => {
    expect(parseUnitStatus('deploy-x.service', CRASH_LOOP)).toEqual({
      unit: 'deploy-x.service',
      loadState: 'loaded',
      activeState: 'activating',
      subState: 'auto-restart',
      result: 'exit-code',
      execMainStatus: 3,
      nRestarts: 2,
      mainPid: 0,
      needDaemonReload: false,
      unitFileState: 'disabled',
    });
    const reversed = CRASH_LOOP.trim().split('\n').reverse().join('\n');
    expect(parseUnitStatus('deploy-x.service', reversed)).toEqual(
      parseUnitStatus('deploy-x.service', CRASH_LOOP),
    );
  });

  it('reads NeedDaemonReload=yes and an empty UnitFileState', () => {
    const text = CRASH_LOOP.replace('NeedDaemonReload=no', 'NeedDaemonReload=yes').replace(
      'UnitFileState=disabled',
      'UnitFileState=',
    );
    expect(parseUnitStatus('u', text)).toMatchObject({ needDaemonReload: true, unitFileState: '' });
  });

  it.each([
    ['a missing property', CRASH_LOOP.replace('NRestarts=2\n', ''), 'expected a NRestarts= line'],
    [
      'a non-number',
      CRASH_LOOP.replace('MainPID=0', 'MainPID=[not set]'),
      'MainPID to be a non-negative integer',
    ],
    ['a negative number', CRASH_LOOP.replace('ExecMainStatus=3', 'ExecMainStatus=-1'), 'ExecMainStatus'],
    ['empty output', '', 'expected a LoadState= line'],
  ])('refuses %s with SYSTEMD_STATUS', (_label, text, message) => {
    expect(() => parseUnitStatus('deploy-x.service', text)).toThrow(message);
    expect(() => parseUnitStatus('deploy-x.service', text)).toThrow(/^systemctl show deploy-x\.service: /);
  });
});
