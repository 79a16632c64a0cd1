import type { HostChecks, HostPathInfo } from '../deployer/host-checks.js';
import type { PortListener } from '../policy/host-facts.js';

/** The ids of a fake account. */
export interface FakeAccount {
  uid: number;
  /** Primary group id. */
  gid: number;
  /** Every group id, primary included. Default `[gid]`. */
  groups?: number[];
}

/** A {@link HostChecks} over tables the test fills in. */
export interface FakeHostChecks extends HostChecks {
  /** Names of the users that exist. */
  users: Set<string>;
  /** Names of the groups that exist. */
  groups: Set<string>;
  paths: Map<string, HostPathInfo>;
  /**
   * Ids of users. A user in `users` without an entry gets uid = gid = the next free id from 1000 on its first
   * lookup (root: 0), remembered here.
   */
  accounts: Map<string, FakeAccount>;
  /** Ids of groups, filled the same way (root: 0). */
  gids: Map<string, number>;
  /** Symlinks: path → target (absolute). `realPath` follows them, also as prefixes of longer paths. */
  links: Map<string, string>;
  /** Listeners by port. */
  ports: Map<number, PortListener[]>;
  /** The variable names each env file assigns (default for a file not listed: none). */
  envFiles: Map<string, string[]>;
}

/** Options of {@link createFakeHostChecks}. */
export interface FakeHostChecksInit {
  users?: string[];
  groups?: string[];
  paths?: Record<string, HostPathInfo>;
  /** Users with fixed ids (added to `users`). */
  accounts?: Record<string, FakeAccount>;
  /** Groups with fixed ids (added to `groups`). */
  gids?: Record<string, number>;
  links?: Record<string, string>;
  ports?: Record<number, PortListener[]>;
  /** The variable names each env file assigns. */
  envFiles?: Record<string, string[]>;
}

/** Creates a {@link FakeHostChecks}; user and group `root` (ids 0) exist from the start. */
export function createFakeHostChecks(init: FakeHostChecksInit = {}): FakeHostChecks {
  const accounts = new Map<string, FakeAccount>([
    ['root', { uid: 0, gid: 0 }],
    ...Object.entries(init.accounts ?? {}),
  ]);
  const gids = new Map<string, number>([['root', 0], ...Object.entries(init.gids ?? {})]);
  const users = new Set(['root', ...(init.users ?? []), ...accounts.keys()]);
  const groups = new Set(['root', ...(init.groups ?? []), ...gids.keys()]);
  const paths = new Map(Object.entries(init.paths ?? {}));
  const links = new Map(Object.entries(init.links ?? {}));
  const ports = new Map(Object.entries(init.ports ?? {}).map(([port, l]) => [Number(port), l]));
  const envFiles = new Map(Object.entries(init.envFiles ?? {}));
  let nextId = 1000;
  const freeId = () => {
    const taken = new Set([...[...accounts.values()].flatMap((a) => [a.uid, a.gid]), ...gids.values()]);
    while (taken.has(nextId)) nextId++;
    return nextId++;
  };

  const resolve = (path: string): string | undefined => {
    let current = path;
    // A bound on hops, as the kernel has (ELOOP): a cycle of links resolves to nothing.
    for (let hop = 0; hop < 40; hop++) {
      const link = [...links.keys()]
        .filter((l) => current === l || current.startsWith(`${l}/`))
        .sort((a, b) => a.length - b.length)[0];
      if (link === undefined) return paths.has(current) ? current : undefined;
      current = `${links.get(link)}${current.slice(link.length)}`;
    }
    return undefined;
  };

  return {
    users,
    groups,
    paths,
    accounts,
    gids,
    links,
    ports,
    userExists: async (name) => users.has(name),
    groupExists: async (name) => groups.has(name),
    pathInfo: async (path) => {
      const real = resolve(path);
      return real === undefined ? undefined : paths.get(real);
    },
    async lookupUser(name) {
      if (!users.has(name)) return undefined;
      let account = accounts.get(name);
      if (!account) {
        const id = freeId();
        account = { uid: id, gid: id };
        accounts.set(name, account);
      }
      return { name, uid: account.uid, gid: account.gid, groups: [...(account.groups ?? [account.gid])] };
    },
    async lookupGroups(names) {
      return names
        .filter((name, i) => groups.has(name) && names.indexOf(name) === i)
        .map((name) => {
          let gid = gids.get(name);
          if (gid === undefined) {
            gid = freeId();
            gids.set(name, gid);
          }
          return { name, gid };
        });
    },
    realPath: async (path) => resolve(path),
    listeners: async (port) => (ports.get(port) ?? []).map((l) => ({ ...l })),
    envFiles,
    envFileNames: async (path) => [...(envFiles.get(path) ?? [])],
  };
}
