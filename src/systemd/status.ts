import { DeployError } from '../errors.js';
import type { UnitStatus } from './types.js';

/** The properties {@link parseUnitStatus} reads, in `systemctl show -p` form. */
export const STATUS_PROPERTIES = [
  'LoadState',
  'ActiveState',
  'SubState',
  'Result',
  'ExecMainStatus',
  'NRestarts',
  'MainPID',
  'NeedDaemonReload',
  'UnitFileState',
] as const;

/**
 * Parses the output of `systemctl show -p <STATUS_PROPERTIES> <unit>` (`Key=value` lines, any order) into a
 * {@link UnitStatus}. Throws `SYSTEMD_STATUS` when a property is missing or a number is not a number, naming
 * the unit and the property: a status nobody can trust must not pass for "healthy".
 */
export function parseUnitStatus(unit: string, text: string): UnitStatus {
  const values = new Map<string, string>();
  for (const line of text.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) values.set(line.slice(0, eq), line.slice(eq + 1));
  }
  const get = (key: (typeof STATUS_PROPERTIES)[number]): string => {
    const value = values.get(key);
    if (value === undefined)
      throw new DeployError(
        'SYSTEMD_STATUS',
        `systemctl show ${unit}: expected a ${key}= line, found none in ${JSON.stringify(text.slice(0, 200))}`,
        { details: { unit, key, text } },
      );
    return value;
  };
  const int = (key: 'ExecMainStatus' | 'NRestarts' | 'MainPID'): number => {
    const value = get(key);
    if (!/^\d+$/.test(value))
      throw new DeployError(
        'SYSTEMD_STATUS',
        `systemctl show ${unit}: expected ${key} to be a non-negative integer, found ${JSON.stringify(value)}`,
        { details: { unit, key, text } },
      );
    return Number(value);
  };
  return {
    unit,
    loadState: get('LoadState'),
    activeState: get('ActiveState'),
    subState: get('SubState'),
    result: get('Result'),
    execMainStatus: int('ExecMainStatus'),
    nRestarts: int('NRestarts'),
    mainPid: int('MainPID'),
    needDaemonReload: get('NeedDaemonReload') === 'yes',
    unitFileState: get('UnitFileState'),
  };
}
