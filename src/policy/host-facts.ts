import { describeValue, formatPath } from '../manifest/describe.js';
import type { Service } from '../manifest/schema.js';
import { resolveHardening } from '../systemd/hardening.js';
import { STATE_ROOT } from './paths.js';
import { DYNAMIC_UID_RANGE, type HostPolicy, type PolicyContext } from './policy.js';
import type { PolicyIssue, PolicyRule } from './rules.js';
import { checkWritablePath, credentialAllowed, envFileAllowed, servicePorts } from './service.js';

/** A user account as the host resolves it (NSS: /etc/passwd, LDAP, systemd-userdb, ...). */
export interface HostAccount {
  name: string;
  uid: number;
  /** Primary group. */
  gid: number;
  /** Every group id the account is in, primary included (`id -G`). */
  groups: readonly number[];
}

/** A group as the host resolves it. */
export interface HostGroup {
  name: string;
  gid: number;
}

/** One TCP socket listening on a port, and who holds it (when the host can tell). */
export interface PortListener {
  /** The local address as `ss` prints it, e.g. `127.0.0.1:8000`, `[::]:8000`, `*:8000`. */
  address: string;
  pid?: number;
  /** The process name (`comm`). */
  process?: string;
  /** The systemd unit the process belongs to (from its cgroup), e.g. `deploy-web.service`, `init.scope`. */
  unit?: string;
}

/** What {@link checkHostFacts} needs the host to look up for one service (see {@link hostFactsQuery}). */
export interface HostFactsQuery {
  /** The account the unit runs as if it exists statically: `exec.user`, or the dynamic user's name. */
  user: string;
  /** `exec.group`, if any. */
  group?: string;
  /** Group names whose ids count as privileged (the policy's, and root). */
  privilegedGroups: readonly string[];
  /** Paths whose real location matters: writable paths, the env file and the credential files. */
  paths: readonly string[];
  /** State directory roots (`/var/lib/<name>`) whose owner matters. */
  stateDirectories: readonly string[];
  /** Ports the service gets. */
  ports: readonly number[];
}

/** The host's answers to a {@link HostFactsQuery}. */
export interface HostFacts {
  /** The static account of `query.user`; absent when the host has none (a dynamic user is allocated). */
  user?: HostAccount;
  /** `exec.group` as the host resolves it; absent when it does not exist. */
  group?: HostGroup;
  /** The privileged groups that exist on this host, with their ids. */
  privilegedGroups: readonly HostGroup[];
  /** Where each path of `query.paths` really leads (symlinks resolved); `undefined` when it does not exist. */
  realPaths: Readonly<Record<string, string | undefined>>;
  /** The owner uid of each state directory root that exists (symlinks followed). */
  stateOwners: Readonly<Record<string, number | undefined>>;
  /** The listeners on each port of `query.ports`. */
  listeners: Readonly<Record<number, readonly PortListener[]>>;
}

/** The context of {@link checkHostFacts}: the policy context plus who may listen on the service's ports. */
export interface HostFactsContext extends PolicyContext {
  /** This service's own units (today its one unit, e.g. `deploy-web.service`). */
  ownUnits: readonly string[];
  /**
   * Every unit of this deployer on this host → the ports the new manifest gives it there (`[]` for a unit
   * that goes). Our unit on a port that the manifest moves it off (a swap, a removal in the same tick) is not
   * "something else". Default: none.
   */
  deployerUnits?: ReadonlyMap<string, readonly number[]>;
}

/**
 * The account a service's unit runs as: `exec.user`; without it the dynamic user systemd names after the unit
 * (`deploy-web`), or root when the service also turns the dynamic user off. With DynamicUser=yes systemd still
 * uses a static account of that name if one exists, which is why the host is asked in every case.
 */
export function accountName(service: Pick<Service, 'exec' | 'hardening'>, unitName: string): string {
  if (service.exec.user !== undefined) return service.exec.user;
  const dynamic = resolveHardening(service.hardening, false).dynamicUser;
  return dynamic ? unitName.replace(/\.service$/, '') : 'root';
}

/** What to look up on the host to check `service` (pure; the adapter answers it, see `gatherHostFacts`). */
export function hostFactsQuery(service: Service, policy: HostPolicy, unitName: string): HostFactsQuery {
  const tops = (service.hardening?.stateDirectory ?? []).map((e) => `${STATE_ROOT}/${e.split('/')[0]}`);
  const query: HostFactsQuery = {
    user: accountName(service, unitName),
    privilegedGroups: [...new Set(['root', ...policy.privilegedGroups])],
    paths: [
      ...(service.hardening?.readWritePaths ?? []),
      ...(service.envFile ? [service.envFile] : []),
      ...Object.values(service.credentials ?? {}),
    ],
    stateDirectories: [...new Set(tops)],
    ports: servicePorts(service),
  };
  if (service.exec.group !== undefined) query.group = service.exec.group;
  return query;
}

/**
 * Checks what only the host can tell, at pre-flight: the numeric ids of the service's account and groups (uid
 * 0 under any name, gid 0, a privileged group by id or by one of the user's groups), where writable paths, the
 * env file and the credential files really lead (the rules again on the resolved path), who owns an existing state directory, and
 * who listens on the service's ports. Pure; `facts` come from `gatherHostFacts` (src/deployer/host-checks.ts).
 */
export function checkHostFacts(
  service: Service,
  facts: HostFacts,
  policy: HostPolicy,
  ctx: HostFactsContext,
  at = 'service',
): PolicyIssue[] {
  const issues: PolicyIssue[] = [];
  const add = (path: string, rule: PolicyRule, message: string) =>
    issues.push({ path: `${at}.${path}`, rule, message });
  const userField = service.exec.user !== undefined ? 'exec.user' : 'hardening.dynamicUser';
  const privileged = new Map(facts.privilegedGroups.filter((g) => g.gid !== 0).map((g) => [g.gid, g.name]));

  const { user, group } = facts;
  if (user) {
    const who = `account ${describeValue(user.name)}`;
    if (user.uid === 0) add(userField, 'user.root', `${who} has uid 0 on this host`);
    const gids = [user.gid, ...user.groups];
    if (gids.includes(0)) add(userField, 'group.root', `${who} is in group id 0 on this host`);
    const named = [...new Set(gids.filter((gid) => privileged.has(gid)))].map(
      (gid) => `${privileged.get(gid)} (${gid})`,
    );
    if (named.length)
      add(userField, 'group.privileged', `${who} is in privileged group(s) ${named.join(', ')} on this host`);
  }
  if (group) {
    const what = `group ${describeValue(group.name)}`;
    if (group.gid === 0) add('exec.group', 'group.root', `${what} has gid 0 on this host`);
    else if (privileged.has(group.gid) && privileged.get(group.gid) !== group.name)
      add(
        'exec.group',
        'group.privileged',
        `${what} has gid ${group.gid} on this host, the id of privileged group ${privileged.get(group.gid)}`,
      );
  }

  (service.hardening?.readWritePaths ?? []).forEach((p, k) => {
    const real = facts.realPaths[p];
    if (real === undefined || real === p) return;
    for (const issue of checkWritablePath(real, service.name, policy, ctx, p))
      add(`hardening.readWritePaths[${k}]`, issue.rule, issue.message);
  });
  if (service.envFile !== undefined) {
    const real = facts.realPaths[service.envFile];
    if (
      real !== undefined &&
      real !== service.envFile &&
      !envFileAllowed(service.name, real, ctx.secretsDir, policy.envFileGrants)
    )
      add(
        'envFile',
        'env-file.not-own',
        `${describeValue(service.envFile)} resolves to ${real}, which is not this service's env file`,
      );
  }

  for (const [name, file] of Object.entries(service.credentials ?? {})) {
    const real = facts.realPaths[file];
    if (
      real !== undefined &&
      real !== file &&
      !credentialAllowed(service.name, real, ctx.secretsDir, policy.credentialGrants)
    )
      add(
        formatPath(['credentials', name]),
        'credential.not-own',
        `${describeValue(file)} resolves to ${real}, which is not this service's credential file`,
      );
  }

  (service.hardening?.stateDirectory ?? []).forEach((entry, k) => {
    const root = `${STATE_ROOT}/${entry.split('/')[0]}`;
    const owner = facts.stateOwners[root];
    if (owner === undefined) return;
    const dynamic = owner >= DYNAMIC_UID_RANGE.min && owner <= DYNAMIC_UID_RANGE.max;
    if (dynamic || (user !== undefined && owner === user.uid)) return;
    add(
      `hardening.stateDirectory[${k}]`,
      'state-directory.owner',
      `${root} exists and belongs to uid ${owner}, not to this service's account; systemd would hand it over (remove or rename it if it is a leftover)`,
    );
  });

  for (const port of servicePorts(service)) {
    const others = (facts.listeners[port] ?? []).filter((l) => {
      if (l.unit !== undefined && ctx.ownUnits.includes(l.unit)) return false;
      const moving = l.unit !== undefined ? ctx.deployerUnits?.get(l.unit) : undefined;
      return !(moving && !moving.includes(port));
    });
    if (others.length)
      add(
        // The other is the second port of a blue/green update.
        port === service.http?.internalPort ? 'http.internalPort' : 'http.secondPort',
        'port.in-use',
        `port ${port} is taken on this host by ${others.map(describeListener).join('; ')}; a public route must not reach another program`,
      );
  }
  return issues;
}

function describeListener(l: PortListener): string {
  const who = l.unit
    ? `unit ${l.unit}`
    : l.pid !== undefined
      ? 'a process outside any unit'
      : 'a socket without a visible process';
  const process = l.pid !== undefined ? ` (${l.process ?? 'pid'} ${l.pid})` : '';
  return `${who}${process} on ${l.address}`;
}
