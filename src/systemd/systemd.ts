import { readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { DeployError } from '../errors.js';
import { writeFileAtomic } from '../runtime/atomic-write.js';
import { createShell } from '../shell/shell.js';
import type { Shell } from '../shell/types.js';
import { parseUnitStatus, STATUS_PROPERTIES } from './status.js';
import type { Systemd, UnitFile } from './types.js';
import { assertOwnedUnit, assertUnitPrefix, DEFAULT_UNIT_PREFIX, serviceNameOf } from './unit-name.js';

/**
 * Where units go by default: systemd's runtime directory. On NixOS `/etc/systemd/system` is generated and
 * read-only; `/run` is empty after a reboot, so the deployer restores its units from its own copy at start.
 */
export const DEFAULT_UNITS_DIR = '/run/systemd/system';

/** Options of {@link createSystemd}. */
export interface SystemdOptions {
  /** Runs `systemctl`. Default: {@link createShell} (this machine). */
  shell?: Shell;
  /** Directory for unit files, as systemd sees it. Default {@link DEFAULT_UNITS_DIR}. */
  unitsDir?: string;
  /**
   * Prefix this process puts before `unitsDir` to reach the files, e.g. `/proc/<pid>/root` for a container
   * whose systemd `shell` talks to. Default `''` (the real paths). Joined as text: an absolute symlink inside
   * the container would resolve on this machine, and `/run/systemd/system` has none.
   */
  rootDir?: string;
  /** Prefix of the deployer's unit names. Default {@link DEFAULT_UNIT_PREFIX}. */
  unitPrefix?: string;
  /** `systemctl enable --runtime` (lost at reboot). Default: true when `unitsDir` is under `/run/`. */
  runtime?: boolean;
  /** Kill a `systemctl` call after this long. Default 120 s (a stop may wait out a service's stop timeout). */
  timeoutMs?: number;
}

const STOPPED = new Set(['inactive', 'failed']);

const errno = (error: unknown) => (error as NodeJS.ErrnoException).code;

/**
 * The real {@link Systemd}: unit files written to `unitsDir` with plain file operations, everything else through
 * `systemctl` run by the injected `Shell` (so tests can point it at a booted container).
 */
export function createSystemd(options: SystemdOptions = {}): Systemd {
  const shell = options.shell ?? createShell();
  const unitsDir = (options.unitsDir ?? DEFAULT_UNITS_DIR).replace(/\/+$/, '');
  const prefix = options.unitPrefix ?? DEFAULT_UNIT_PREFIX;
  const runtime = options.runtime ?? unitsDir.startsWith('/run/');
  const timeoutMs = options.timeoutMs ?? 120_000;
  const dir = `${options.rootDir ?? ''}${unitsDir}`;
  assertUnitPrefix(prefix);
  if (!unitsDir.startsWith('/') || unitsDir.split('/').includes('..'))
    throw new DeployError(
      'USAGE',
      `units directory: expected an absolute path, found ${JSON.stringify(unitsDir)}`,
    );

  const owned = (name: string) => {
    assertOwnedUnit(name, prefix);
    return name;
  };

  async function systemctl(args: string[]): Promise<string> {
    const r = await shell.run('systemctl', args, { timeoutMs });
    if (r.exitCode === 0) return r.stdout;
    const found = r.exitCode === null ? `signal ${r.signal}` : `exit status ${r.exitCode}`;
    const said = (r.stderr.trim() || r.stdout.trim()).split('\n').slice(0, 5).join(' | ');
    throw new DeployError(
      'SYSTEMD_COMMAND',
      `systemctl ${args.join(' ')}: expected exit status 0, found ${found}: ${said}`,
      {
        details: { args, exitCode: r.exitCode, signal: r.signal, stderr: r.stderr },
      },
    );
  }

  async function status(name: string) {
    const out = await systemctl(['show', '-p', STATUS_PROPERTIES.join(','), '--', owned(name)]);
    return parseUnitStatus(name, out);
  }

  async function exists(name: string): Promise<boolean> {
    return (await readUnit(name)) !== undefined;
  }

  async function readUnit(name: string): Promise<string | undefined> {
    const file = join(dir, owned(name));
    try {
      return await readFile(file, 'utf8');
    } catch (error) {
      if (errno(error) === 'ENOENT') return undefined;
      throw ioError(`read unit file ${join(unitsDir, name)}`, error);
    }
  }

  return {
    unitsDir,
    async listUnits() {
      try {
        const names = await readdir(dir);
        return names.filter((n) => serviceNameOf(n, prefix) !== undefined).sort();
      } catch (error) {
        if (errno(error) === 'ENOENT') return [];
        throw ioError(`list units directory ${unitsDir}`, error);
      }
    },
    readUnit,
    async installUnit(unit: UnitFile) {
      const target = join(dir, owned(unit.name));
      // A temp file in the same directory and a rename: systemd never reads a half-written unit.
      try {
        await writeFileAtomic(target, unit.text, { mode: 0o644, dirMode: 0o755 });
      } catch (error) {
        throw ioError(`write unit file ${join(unitsDir, unit.name)}`, error);
      }
    },
    async removeUnit(name) {
      if (!(await exists(name))) return;
      await systemctl(['disable', '--no-reload', ...(runtime ? ['--runtime'] : []), '--', name]);
      try {
        await rm(join(dir, name), { force: true });
      } catch (error) {
        throw ioError(`remove unit file ${join(unitsDir, name)}`, error);
      }
    },
    async daemonReload() {
      await systemctl(['daemon-reload']);
    },
    async start(name) {
      await systemctl(['start', '--', owned(name)]);
    },
    async restart(name) {
      await systemctl(['restart', '--', owned(name)]);
    },
    async stop(name) {
      try {
        await systemctl(['stop', '--', owned(name)]);
      } catch (error) {
        // Exit 5 is "not loaded": a unit systemd does not know is not running, so stopping it is done.
        const exit = ((error as DeployError).details as { exitCode?: number } | undefined)?.exitCode;
        if (exit !== 5 || !STOPPED.has((await status(name)).activeState)) throw error;
      }
    },
    async enable(name) {
      await systemctl(['enable', ...(runtime ? ['--runtime'] : []), '--', owned(name)]);
    },
    async disable(name) {
      if (!(await exists(name))) return;
      await systemctl(['disable', ...(runtime ? ['--runtime'] : []), '--', name]);
    },
    status,
  };
}

function ioError(what: string, cause: unknown): DeployError {
  return new DeployError('SYSTEMD_IO', `cannot ${what}: ${errno(cause) ?? (cause as Error).message}`, {
    cause,
  });
}
