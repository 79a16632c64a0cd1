import { DeployError } from '../errors.js';
import { createShell } from '../shell/shell.js';
import type { Shell } from '../shell/types.js';

/** What `stat` says about a path. */
export interface HostPathInfo {
  type: 'file' | 'directory' | 'other';
  uid: number;
  gid: number;
  /** Permission bits, e.g. `0o640`. */
  mode: number;
}

/**
 * The host facts the deployer checks before touching a service: do its user and group exist, is its env
 * file there and private, do its writable paths exist. Through a Shell (`getent`, `stat`), so NSS users
 * (LDAP, systemd-userdb) count and tests can point it at a booted container.
 */
export interface HostChecks {
  userExists(name: string): Promise<boolean>;
  groupExists(name: string): Promise<boolean>;
  /** `undefined` when the path does not exist. Symlinks are followed. */
  pathInfo(path: string): Promise<HostPathInfo | undefined>;
}

/** The real {@link HostChecks}. */
export function createHostChecks(shell: Shell = createShell()): HostChecks {
  const getent = async (database: 'passwd' | 'group', name: string) => {
    const r = await shell.run('getent', [database, '--', name], { timeoutMs: 10_000 });
    if (r.exitCode === 0) return true;
    if (r.exitCode === 2) return false; // getent: key not found
    throw new DeployError(
      'HOST_CHECK',
      `getent ${database} ${name}: expected exit status 0 or 2, found ${r.exitCode ?? r.signal}: ${r.stderr.trim()}`,
    );
  };
  return {
    userExists: (name) => getent('passwd', name),
    groupExists: (name) => getent('group', name),
    async pathInfo(path) {
      // LC_ALL=C: the "No such file" test below reads stat's message, which is translated otherwise.
      const r = await shell.run('stat', ['-L', '-c', '%F|%u|%g|%a', '--', path], {
        timeoutMs: 10_000,
        env: { LC_ALL: 'C' },
      });
      if (r.exitCode !== 0) {
        if (/No such file or directory/.test(r.stderr)) return undefined;
        throw new DeployError(
          'HOST_CHECK',
          `stat ${path}: ${r.stderr.trim() || `exit status ${r.exitCode}`}`,
        );
      }
      const [kind, uid, gid, mode] = r.stdout.trim().split('|');
      const type =
        kind === 'regular file' || kind === 'regular empty file'
          ? 'file'
          : kind === 'directory'
            ? 'directory'
            : 'other';
      return { type, uid: Number(uid), gid: Number(gid), mode: Number.parseInt(mode ?? '', 8) };
    },
  };
}
