import { DeployError } from '../errors.js';
import type { Systemd, UnitFile, UnitStatus } from '../systemd/types.js';
import {
  assertOwnedUnit,
  assertUnitPrefix,
  DEFAULT_UNIT_PREFIX,
  serviceNameOf,
} from '../systemd/unit-name.js';

/** What a fake unit's program does when started. */
export type FakeOutcome =
  /** Runs until stopped (a healthy service). */
  | 'runs'
  /** Cannot be executed (no such file): the start fails with status 203, as with `Type=exec`. */
  | 'missing'
  /** Starts, then exits with this status; the unit's `Restart=` decides what follows. */
  | { exits: number };

/** What {@link FakeSystemdOptions.behaviour} sees of a unit being started. */
export interface FakeStart {
  name: string;
  /** The unit text systemd has loaded (the old text if the file changed without a daemon-reload). */
  text: string;
  /** `ExecStart=` split and unescaped as systemd does: program path, then each argument. */
  argv: string[];
}

/** Options of {@link createFakeSystemd}. */
export interface FakeSystemdOptions {
  unitsDir?: string;
  unitPrefix?: string;
  /** Decides each start's outcome. Default: every program runs. */
  behaviour?: (start: FakeStart) => FakeOutcome;
}

/** An in-memory {@link Systemd} with controls for tests. */
export interface FakeSystemd extends Systemd {
  /**
   * Every call in order, as `verb unit` (`install deploy-web.service`, `daemon-reload`, `start ...`,
   * `status ...`), so a test can assert "exactly one restart" or "no systemctl call at all".
   */
  readonly calls: string[];
  /** The units directory: file name → text. Tests may edit it to simulate drift. */
  readonly files: Map<string, string>;
  /** The running program of `name` exits now with `status` (a crash); `Restart=` applies. */
  exit(name: string, status: number): void;
  /** Makes the next call whose `verb unit` text matches fail with `SYSTEMD_COMMAND` (e.g. to simulate a crash). */
  failOn(match: string | RegExp, error?: Error): void;
}

interface UnitRecord {
  text: string;
  activeState: string;
  subState: string;
  result: string;
  execMainStatus: number;
  nRestarts: number;
  mainPid: number;
  /** A failing program in a `Restart=` loop: each status read is one more restart. */
  looping: boolean;
}

/**
 * Splits a command line the way systemd.service(5) does for what the renderer writes: whitespace-separated
 * words, double- or single-quoted with C escapes, then `%%` → `%` and `$$` → `$` in each word.
 */
function splitCommandLine(line: string): string[] {
  const words: string[] = [];
  let i = 0;
  const escapes: Record<string, string> = {
    n: '\n',
    t: '\t',
    r: '\r',
    '\\': '\\',
    '"': '"',
    "'": "'",
    ' ': ' ',
  };
  while (i < line.length) {
    while (line[i] === ' ' || line[i] === '\t') i++;
    if (i >= line.length) break;
    let word = '';
    let quote: string | undefined;
    for (; i < line.length; i++) {
      const c = line[i] as string;
      if (!quote && (c === ' ' || c === '\t')) break;
      if (c === '\\' && i + 1 < line.length) {
        const next = line[++i] as string;
        word += escapes[next] ?? next;
      } else if (quote && c === quote) quote = undefined;
      else if (!quote && (c === '"' || c === "'")) quote = c;
      else word += c;
    }
    words.push(word.replaceAll('%%', '%').replaceAll('$$', '$'));
  }
  return words;
}

/** The last value of `key=` in a unit's text. */
function directive(text: string, key: string): string | undefined {
  let value: string | undefined;
  for (const line of text.split('\n')) if (line.startsWith(`${key}=`)) value = line.slice(key.length + 1);
  return value;
}

/**
 * Creates an in-memory {@link Systemd} that follows real systemd's rules where the deployer can see them (checked
 * by the same contract suite as the real adapter): a new unit file is loaded on first use, a changed one keeps
 * its old text until `daemonReload()` (and reports `needDaemonReload`), a start of a program that cannot run
 * fails with status 203, `Restart=` decides whether a crashed program loops (each status read counts one
 * restart, standing in for time passing), stopping a failed unit leaves it `failed`.
 */
export function createFakeSystemd(options: FakeSystemdOptions = {}): FakeSystemd {
  const prefix = options.unitPrefix ?? DEFAULT_UNIT_PREFIX;
  assertUnitPrefix(prefix);
  const runtime = (options.unitsDir ?? '/run/systemd/system').startsWith('/run/');
  const behaviour = options.behaviour ?? (() => 'runs' as const);
  const files = new Map<string, string>();
  const units = new Map<string, UnitRecord>();
  const enabled = new Set<string>();
  const calls: string[] = [];
  const failures: { match: string | RegExp; error?: Error }[] = [];
  let nextPid = 1000;

  const fail = (args: string, exitCode: number, message: string) =>
    new DeployError(
      'SYSTEMD_COMMAND',
      `systemctl ${args}: expected exit status 0, found exit status ${exitCode}: ${message}`,
      {
        details: { args: args.split(' '), exitCode, signal: null, stderr: message },
      },
    );

  /** Records a call and throws an injected failure for it. */
  function call(verb: string, name?: string): void {
    const text = name === undefined ? verb : `${verb} ${name}`;
    calls.push(text);
    const index = failures.findIndex(({ match }) =>
      typeof match === 'string' ? match === text : match.test(text),
    );
    if (index < 0) return;
    const [failure] = failures.splice(index, 1);
    throw failure?.error ?? fail(text, 1, `injected failure of "${text}"`);
  }

  const owned = (name: string) => {
    assertOwnedUnit(name, prefix);
    return name;
  };

  const fresh = (text: string): UnitRecord => ({
    text,
    activeState: 'inactive',
    subState: 'dead',
    result: 'success',
    execMainStatus: 0,
    nRestarts: 0,
    mainPid: 0,
    looping: false,
  });

  /** The loaded unit, loading the file on first use as systemd does; undefined when there is none. */
  function load(name: string): UnitRecord | undefined {
    let unit = units.get(name);
    // systemd forgets an inactive unit whose file is gone.
    if (unit && !files.has(name) && (unit.activeState === 'inactive' || unit.activeState === 'failed')) {
      units.delete(name);
      unit = undefined;
    }
    const text = files.get(name);
    if (!unit && text !== undefined) {
      unit = fresh(text);
      units.set(name, unit);
    }
    return unit;
  }

  /** The program exited with `status`: dead, failed or (by `Restart=`) looping. */
  function exited(unit: UnitRecord, status: number): void {
    const restart = directive(unit.text, 'Restart') ?? 'no';
    const loops =
      restart === 'always' ||
      (restart === 'on-failure' && status !== 0) ||
      (restart === 'on-success' && status === 0);
    unit.mainPid = 0;
    unit.execMainStatus = status;
    unit.result = status === 0 ? 'success' : 'exit-code';
    unit.looping = loops;
    if (loops) [unit.activeState, unit.subState] = ['activating', 'auto-restart'];
    else if (status === 0) [unit.activeState, unit.subState] = ['inactive', 'dead'];
    else [unit.activeState, unit.subState] = ['failed', 'failed'];
  }

  function run(name: string, unit: UnitRecord): void {
    const argv = splitCommandLine(directive(unit.text, 'ExecStart') ?? '');
    const outcome = behaviour({ name, text: unit.text, argv });
    unit.nRestarts = 0;
    if (outcome === 'runs') {
      Object.assign(unit, { activeState: 'active', subState: 'running', result: 'success' });
      Object.assign(unit, { execMainStatus: 0, mainPid: nextPid++, looping: false });
    } else if (outcome === 'missing') {
      Object.assign(unit, { activeState: 'failed', subState: 'failed', result: 'exit-code' });
      Object.assign(unit, { execMainStatus: 203, mainPid: 0, looping: false });
      throw fail(
        `start -- ${name}`,
        1,
        `Job for ${name} failed because the control process exited with error code.`,
      );
    } else exited(unit, outcome.exits);
  }

  function stopUnit(unit: UnitRecord): void {
    if (unit.looping) {
      // systemd reports a loop that is stopped as failed with the program's last status.
      Object.assign(unit, { activeState: 'failed', subState: 'failed', looping: false, mainPid: 0 });
    } else if (unit.activeState === 'active' || unit.activeState === 'activating') {
      Object.assign(unit, { activeState: 'inactive', subState: 'dead', result: 'success', mainPid: 0 });
    }
  }

  return {
    unitsDir: (options.unitsDir ?? '/run/systemd/system').replace(/\/+$/, ''),
    calls,
    files,
    exit(name, status) {
      const unit = units.get(owned(name));
      if (unit?.activeState !== 'active')
        throw new Error(`fake systemd: ${name} is not running, it cannot exit`);
      exited(unit, status);
    },
    failOn(match, error) {
      failures.push({ match, ...(error ? { error } : {}) });
    },
    async listUnits() {
      call('list');
      return [...files.keys()].filter((n) => serviceNameOf(n, prefix) !== undefined).sort();
    },
    async readUnit(name) {
      call('read', owned(name));
      return files.get(name);
    },
    async installUnit(unit: UnitFile) {
      call('install', owned(unit.name));
      files.set(unit.name, unit.text);
    },
    async removeUnit(name) {
      call('remove', owned(name));
      enabled.delete(name);
      files.delete(name);
    },
    async daemonReload() {
      call('daemon-reload');
      for (const [name, unit] of units) {
        const text = files.get(name);
        if (text !== undefined) unit.text = text;
        else if (unit.activeState === 'inactive' || unit.activeState === 'failed') units.delete(name);
      }
    },
    async start(name) {
      call('start', owned(name));
      const unit = load(name);
      if (!unit) throw fail(`start -- ${name}`, 5, `Failed to start ${name}: Unit ${name} not found.`);
      if (unit.activeState === 'active' || unit.looping) return;
      run(name, unit);
    },
    async restart(name) {
      call('restart', owned(name));
      const unit = load(name);
      if (!unit) throw fail(`restart -- ${name}`, 5, `Failed to restart ${name}: Unit ${name} not found.`);
      stopUnit(unit);
      run(name, unit);
    },
    async stop(name) {
      call('stop', owned(name));
      const unit = load(name);
      if (unit) stopUnit(unit);
    },
    async enable(name) {
      call('enable', owned(name));
      if (!files.has(name))
        throw fail(`enable -- ${name}`, 1, `Failed to enable unit: Unit file ${name} does not exist.`);
      enabled.add(name);
    },
    async disable(name) {
      call('disable', owned(name));
      enabled.delete(name);
    },
    async status(name): Promise<UnitStatus> {
      call('status', owned(name));
      const unit = load(name);
      const file = files.get(name);
      const unitFileState =
        file === undefined ? '' : enabled.has(name) ? (runtime ? 'enabled-runtime' : 'enabled') : 'disabled';
      if (!unit)
        return {
          unit: name,
          loadState: 'not-found',
          activeState: 'inactive',
          subState: 'dead',
          result: 'success',
          execMainStatus: 0,
          nRestarts: 0,
          mainPid: 0,
          needDaemonReload: false,
          unitFileState,
        };
      const status: UnitStatus = {
        unit: name,
        loadState: file === undefined ? 'not-found' : 'loaded',
        activeState: unit.activeState,
        subState: unit.subState,
        result: unit.result,
        execMainStatus: unit.execMainStatus,
        nRestarts: unit.nRestarts,
        mainPid: unit.mainPid,
        needDaemonReload: file !== undefined && file !== unit.text,
        unitFileState,
      };
      if (unit.looping) unit.nRestarts++;
      return status;
    },
  };
}
