import { DeployError } from '../errors.js';
import type {
  HostAccount,
  HostFacts,
  HostFactsQuery,
  HostGroup,
  PortListener,
} from '../policy/host-facts.js';
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
 * The host facts the deployer checks before touching a service: do its user and group exist and with which
 * ids, is its env file there and private, where do its paths really lead, who listens on its port. Through a
 * Shell (`getent`, `id`, `stat`, `realpath`, `ss`, `/proc`), so NSS users (LDAP, systemd-userdb) count and
 * tests can point it at a booted container.
 */
export interface HostChecks {
  userExists(name: string): Promise<boolean>;
  groupExists(name: string): Promise<boolean>;
  /** `undefined` when the path does not exist. Symlinks are followed. */
  pathInfo(path: string): Promise<HostPathInfo | undefined>;
  /** The account `name` with its uid, primary gid and every group id; `undefined` when there is none. */
  lookupUser(name: string): Promise<HostAccount | undefined>;
  /** The groups among `names` that exist, with their ids (one lookup for all). */
  lookupGroups(names: readonly string[]): Promise<HostGroup[]>;
  /** The path with every symlink resolved; `undefined` when it (or a link on the way) does not exist. */
  realPath(path: string): Promise<string | undefined>;
  /** The TCP sockets listening on `port` (any address), each with its process and unit when known. */
  listeners(port: number): Promise<PortListener[]>;
  /**
   * The names of the variables an environment file (systemd's `EnvironmentFile=` syntax: `NAME=value` lines,
   * `#`/`;` comments) assigns, in file order; never their values, which stay in the file. Throws a
   * `DeployError` when the file cannot be read.
   */
  envFileNames(path: string): Promise<string[]>;
}

const TIMEOUT = { timeoutMs: 10_000 };

function failure(what: string, r: { exitCode: number | null; signal: string | null; stderr: string }) {
  return new DeployError(
    'HOST_CHECK',
    `${what}: ${r.stderr.trim() || `exit status ${r.exitCode ?? r.signal}`}`,
  );
}

/** The real {@link HostChecks}. */
export function createHostChecks(shell: Shell = createShell()): HostChecks {
  const getent = async (database: 'passwd' | 'group', keys: readonly string[]) => {
    const r = await shell.run('getent', [database, '--', ...keys], TIMEOUT);
    if (r.exitCode === 0 || r.exitCode === 2) return r; // 2: (some) key not found
    throw new DeployError(
      'HOST_CHECK',
      `getent ${database} ${keys.join(' ')}: expected exit status 0 or 2, found ${r.exitCode ?? r.signal}: ${r.stderr.trim()}`,
    );
  };
  return {
    userExists: async (name) => (await getent('passwd', [name])).exitCode === 0,
    groupExists: async (name) => (await getent('group', [name])).exitCode === 0,
    async pathInfo(path) {
      // LC_ALL=C: the "No such file" test below reads stat's message, which is translated otherwise.
      const r = await shell.run('stat', ['-L', '-c', '%F|%u|%g|%a', '--', path], {
        ...TIMEOUT,
        env: { LC_ALL: 'C' },
      });
      if (r.exitCode !== 0) {
        if (/No such file or directory/.test(r.stderr)) return undefined;
        throw failure(`stat ${path}`, r);
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
    async lookupUser(name) {
      const r = await getent('passwd', [name]);
      // getent answers a numeric key by uid ("0" is root): only an entry of that very name counts.
      const entry = r.stdout.split('\n').find((line) => line.split(':')[0] === name);
      if (r.exitCode !== 0 || entry === undefined) return undefined;
      const [, , uid, gid] = entry.split(':');
      const ids = await shell.run('id', ['-G', '--', name], { ...TIMEOUT, env: { LC_ALL: 'C' } });
      if (ids.exitCode !== 0) throw failure(`id -G ${name}`, ids);
      return {
        name,
        uid: parseId(uid, `getent passwd ${name}`),
        gid: parseId(gid, `getent passwd ${name}`),
        groups: ids.stdout
          .trim()
          .split(/\s+/)
          .filter(Boolean)
          .map((id) => parseId(id, `id -G ${name}`)),
      };
    },
    async lookupGroups(names) {
      if (names.length === 0) return [];
      const r = await getent('group', names);
      const found: HostGroup[] = [];
      for (const line of r.stdout.split('\n')) {
        const [name, , gid] = line.split(':');
        if (name !== undefined && names.includes(name) && !found.some((g) => g.name === name))
          found.push({ name, gid: parseId(gid, `getent group ${name}`) });
      }
      return found;
    },
    async envFileNames(path) {
      // sed prints only each assignment's name: the values (secrets) never reach the deployer.
      const r = await shell.run(
        'sed',
        [
          '-n',
          '-E',
          's/^[[:space:]]*(export[[:space:]]+)?([A-Za-z_][A-Za-z0-9_]*)[[:space:]]*=.*/\\2/p',
          '--',
          path,
        ],
        { ...TIMEOUT, env: { LC_ALL: 'C' } },
      );
      if (r.exitCode !== 0) throw failure(`sed (names assigned in ${path})`, r);
      return r.stdout.split('\n').filter(Boolean);
    },
    async realPath(path) {
      // -z: NUL-terminated, so no file name can fake a second line.
      const r = await shell.run('realpath', ['-e', '-z', '--', path], { ...TIMEOUT, env: { LC_ALL: 'C' } });
      if (r.exitCode === 0) return r.stdout.replace(/\0$/, '');
      if (/No such file or directory/.test(r.stderr)) return undefined;
      throw failure(`realpath ${path}`, r);
    },
    async listeners(port) {
      if (!Number.isInteger(port) || port < 1 || port > 65535)
        throw new DeployError('HOST_CHECK', `listeners: expected a port from 1 to 65535, found ${port}`);
      const r = await shell.run('ss', ['-H', '-t', '-l', '-n', '-p', 'sport', '=', `:${port}`], TIMEOUT);
      if (r.exitCode !== 0) throw failure(`ss -tlnp sport = :${port}`, r);
      const found = parseSsListeners(r.stdout);
      for (const listener of found) {
        if (listener.pid === undefined) continue;
        const cgroup = await shell.run('cat', [`/proc/${listener.pid}/cgroup`], TIMEOUT);
        // A process that exited since ss looked has no unit to report; its socket is gone with it.
        const unit = cgroup.exitCode === 0 ? unitFromCgroup(cgroup.stdout) : undefined;
        if (unit !== undefined) listener.unit = unit;
      }
      return found;
    },
  };
}

function parseId(text: string | undefined, where: string): number {
  if (text === undefined || !/^\d+$/.test(text))
    throw new DeployError('HOST_CHECK', `${where}: expected a numeric id, found ${JSON.stringify(text)}`);
  return Number(text);
}

/**
 * The listeners in `ss -H -t -l -n -p` output: one entry per (socket, process). A process name is printed
 * raw and could imitate `",pid=N,fd=M),("`; it can only add entries, never hide the real `pid=` that ends its
 * own, so a check that refuses when any entry is foreign stays sound. Pure.
 */
export function parseSsListeners(text: string): PortListener[] {
  const out: PortListener[] = [];
  for (const line of text.split('\n')) {
    const fields = line.trim().split(/\s+/);
    if (fields[0] !== 'LISTEN' || fields.length < 5) continue;
    const address = fields[3] as string;
    const at = line.indexOf('users:(');
    const processes = [...(at === -1 ? '' : line.slice(at)).matchAll(/\("(.*?)",pid=(\d+),fd=\d+\)/g)];
    if (processes.length === 0) out.push({ address });
    for (const [, process, pid] of processes)
      out.push({ address, pid: Number(pid), ...(process !== undefined ? { process } : {}) });
  }
  return out;
}

/** Unit name suffixes a cgroup directory can carry. */
const UNIT_CGROUP_RE = /\.(?:service|scope|socket|mount|swap)$/;

/**
 * The systemd unit of a process from its `/proc/<pid>/cgroup`: the first path component that is not a slice
 * (`/system.slice/deploy-web.service/…` → `deploy-web.service`, `/init.scope` → `init.scope`). The unified
 * (`0::`) hierarchy first, then systemd's named v1 hierarchy; `undefined` outside any unit. Pure.
 */
export function unitFromCgroup(text: string): string | undefined {
  const lines = text.split('\n');
  const paths = [
    lines.find((l) => l.startsWith('0::'))?.slice(3),
    lines.find((l) => /^\d+:name=systemd:/.test(l))?.replace(/^\d+:name=systemd:/, ''),
  ];
  for (const path of paths) {
    if (!path) continue;
    for (const part of path.split('/')) {
      if (part === '' || part.endsWith('.slice')) continue;
      if (UNIT_CGROUP_RE.test(part)) return part;
      break;
    }
  }
  return undefined;
}

/**
 * Asks the host what {@link checkHostFacts} (src/policy) needs for one service: its account and group with
 * their ids, the ids of the privileged groups, the real location of its paths, the owners of its state
 * directories and the listeners on its ports. Throws `HOST_CHECK` when a lookup cannot be made.
 */
export async function gatherHostFacts(query: HostFactsQuery, checks: HostChecks): Promise<HostFacts> {
  const user = await checks.lookupUser(query.user);
  const wanted = [...new Set([...query.privilegedGroups, ...(query.group ? [query.group] : [])])];
  const groups = await checks.lookupGroups(wanted);
  const realPaths: Record<string, string | undefined> = {};
  for (const path of query.paths) realPaths[path] = await checks.realPath(path);
  const stateOwners: Record<string, number | undefined> = {};
  for (const dir of query.stateDirectories) stateOwners[dir] = (await checks.pathInfo(dir))?.uid;
  const listeners: Record<number, PortListener[]> = {};
  for (const port of query.ports) listeners[port] = await checks.listeners(port);
  const facts: HostFacts = {
    privilegedGroups: groups.filter((g) => query.privilegedGroups.includes(g.name)),
    realPaths,
    stateOwners,
    listeners,
  };
  const group = query.group !== undefined ? groups.find((g) => g.name === query.group) : undefined;
  if (user) facts.user = user;
  if (group) facts.group = group;
  return facts;
}
