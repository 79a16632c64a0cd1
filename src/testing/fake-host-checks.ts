import type { HostChecks, HostPathInfo } from '../deployer/host-checks.js';

/** A {@link HostChecks} over tables the test fills in. */
export interface FakeHostChecks extends HostChecks {
  users: Set<string>;
  groups: Set<string>;
  paths: Map<string, HostPathInfo>;
}

/** Creates a {@link FakeHostChecks}; `root`/`root` exist from the start. */
export function createFakeHostChecks(
  init: { users?: string[]; groups?: string[]; paths?: Record<string, HostPathInfo> } = {},
): FakeHostChecks {
  const users = new Set(['root', ...(init.users ?? [])]);
  const groups = new Set(['root', ...(init.groups ?? [])]);
  const paths = new Map(Object.entries(init.paths ?? {}));
  return {
    users,
    groups,
    paths,
    userExists: async (name) => users.has(name),
    groupExists: async (name) => groups.has(name),
    pathInfo: async (path) => paths.get(path),
  };
}
