import { describeValue, formatPath } from '../manifest/describe.js';
import { servicePorts } from '../manifest/ports.js';
import type { Service } from '../manifest/schema.js';
import { unitNameFor } from '../systemd/unit-name.js';
import {
  deniedLocationsFor,
  deployerLocations,
  isUnder,
  otherServiceStates,
  STATE_ROOT,
  touches,
  unitPrefixOf,
} from './paths.js';
import { type HostPolicy, type PolicyContext, STARTING_DEPENDENCIES, WELL_KNOWN_TARGETS } from './policy.js';
import type { PolicyIssue, PolicyRule } from './rules.js';

/**
 * The unit name other services use to depend on service `name` (`wants`/`requires`): the service's own unit
 * (`deploy-web.service`). Blue/green and overlap updates keep it the live instance at rest (the new version runs
 * in `deploy-web@next.service` only while an update is under way), so this name always works; this function is
 * the one place that says which it is.
 */
export function serviceDependencyUnit(name: string, unitPrefix?: string): string {
  return unitNameFor(name, unitPrefix);
}

/** Every port a service of ours gets on its host: `http.internalPort`, and its second port under blue/green. */
export { servicePorts } from '../manifest/ports.js';

/** True when `domain` (lower case) is allowed by one of the allowlist `entries`. */
export function domainAllowed(domain: string, entries: readonly string[]): boolean {
  const d = domain.toLowerCase();
  return entries.some((entry) => {
    const e = entry.toLowerCase();
    if (e.startsWith('*.')) return d.endsWith(e.slice(1));
    return d === e;
  });
}

/** True when the service may load `envFile`: its own file or directory under `secretsDir`, or a grant. */
export function envFileAllowed(
  service: string,
  envFile: string,
  secretsDir: string,
  grants: HostPolicy['envFileGrants'],
): boolean {
  const dir = secretsDir.length > 1 ? secretsDir.replace(/\/+$/, '') : secretsDir;
  if (envFile === `${dir}/${service}.env`) return true;
  const own = `${dir}/${service}`;
  if (envFile !== own && isUnder(envFile, own)) return true;
  return Object.hasOwn(grants, envFile) && (grants[envFile] ?? []).includes(service);
}

/** True when the service may load credential `file`: a file under `<secretsDir>/<service>/`, or a grant. */
export function credentialAllowed(
  service: string,
  file: string,
  secretsDir: string,
  grants: HostPolicy['credentialGrants'] = {},
): boolean {
  const own = `${secretsDir.length > 1 ? secretsDir.replace(/\/+$/, '') : secretsDir}/${service}`;
  if (file !== own && isUnder(file, own)) return true;
  return Object.hasOwn(grants, file) && (grants[file] ?? []).includes(service);
}

/**
 * Checks one service against the host policy: everything that can be judged from the manifest and the policy
 * (user and group names, state directories, writable paths, dependencies, env file, credentials, domain, port
 * range). Pure.
 * `at` prefixes every issue's path (e.g. `services[2]`). What needs the host itself (numeric ids, listeners,
 * real paths, owners) is {@link checkHostFacts}'s job at pre-flight.
 */
export function checkServicePolicy(
  service: Service,
  policy: HostPolicy,
  ctx: PolicyContext,
  at = 'service',
): PolicyIssue[] {
  const issues: PolicyIssue[] = [];
  const add = (path: string, rule: PolicyRule, message: string) =>
    issues.push({ path: `${at}.${path}`, rule, message });
  const { exec, hardening = {}, systemd = {} } = service;

  // Accounts. systemd uses a static account of the given name even under DynamicUser=yes, so names count always.
  if (exec.user === 'root') add('exec.user', 'user.root', '"root" runs the service as uid 0');
  if (exec.user === undefined && hardening.dynamicUser === false)
    add(
      'hardening.dynamicUser',
      'user.root',
      'false without exec.user runs the service as root; name an account in exec.user, or leave dynamicUser out',
    );
  if (exec.user !== undefined && exec.user !== 'root' && policy.users && !policy.users.includes(exec.user))
    add(
      'exec.user',
      'user.not-allowed',
      `${describeValue(exec.user)} is not one of the users this host allows (policy.users: ${policy.users.join(', ')})`,
    );
  if (exec.group === 'root') add('exec.group', 'group.root', '"root" runs the service with gid 0');
  else if (exec.group !== undefined && policy.privilegedGroups.includes(exec.group))
    add(
      'exec.group',
      'group.privileged',
      `${describeValue(exec.group)} is a privileged group; a host allows it with policy.allowGroups`,
    );
  else if (exec.group !== undefined && policy.groups && !policy.groups.includes(exec.group))
    add(
      'exec.group',
      'group.not-allowed',
      `${describeValue(exec.group)} is not one of the groups this host allows (policy.groups: ${policy.groups.join(', ')})`,
    );

  // systemd-managed directories: the service's own name or below it, never a protected location.
  (hardening.stateDirectory ?? []).forEach((entry, k) => {
    const path = `hardening.stateDirectory[${k}]`;
    if (entry.split('/')[0] !== service.name) {
      add(
        path,
        'state-directory.other-service',
        `${describeValue(entry)} is not this service's own directory; expected "${service.name}" or "${service.name}/..."`,
      );
      return;
    }
    const abs = `${STATE_ROOT}/${entry}`;
    const hits = [
      ...deniedLocationsFor(abs, policy),
      ...deployerLocations(ctx)
        .filter((l) => touches(abs, l.path))
        .map((l) => `${l.path} (${l.what})`),
    ];
    if (hits.length)
      add(
        path,
        'state-directory.system',
        `${abs} is a protected location: ${hits.join(', ')}; rename the service`,
      );
  });

  (hardening.readWritePaths ?? []).forEach((p, k) => {
    for (const issue of checkWritablePath(p, service.name, policy, ctx))
      add(`hardening.readWritePaths[${k}]`, issue.rule, issue.message);
  });

  // Dependencies that start units: only targets, our services, and what the host allows.
  const prefix = unitPrefixOf(ctx);
  const ours = new Set(
    [...(ctx.serviceNames ?? []), service.name].map((n) => serviceDependencyUnit(n, prefix)),
  );
  for (const field of STARTING_DEPENDENCIES) {
    (systemd[field] ?? []).forEach((unit, k) => {
      if (WELL_KNOWN_TARGETS.includes(unit) || policy.allowedUnits.includes(unit) || ours.has(unit)) return;
      add(
        `systemd.${field}[${k}]`,
        'dependency.unit',
        `starting the service would start ${describeValue(unit)}; ${field} may name ${WELL_KNOWN_TARGETS.join(', ')}, this deployer's services (${prefix}<service>.service) and units the host allows (policy.allowUnits); "after" orders without starting`,
      );
    });
  }

  if (
    service.envFile !== undefined &&
    !envFileAllowed(service.name, service.envFile, ctx.secretsDir, policy.envFileGrants)
  ) {
    const dir = ctx.secretsDir.replace(/\/+$/, '');
    add(
      'envFile',
      'env-file.not-own',
      `${describeValue(service.envFile)} is not this service's; expected ${dir}/${service.name}.env or a file under ${dir}/${service.name}/, or a host grant (policy.envFileGrants)`,
    );
  }

  for (const [name, file] of Object.entries(service.credentials ?? {})) {
    if (credentialAllowed(service.name, file, ctx.secretsDir, policy.credentialGrants)) continue;
    const dir = ctx.secretsDir.replace(/\/+$/, '');
    add(
      formatPath(['credentials', name]),
      'credential.not-own',
      `${describeValue(file)} is not this service's; expected a file under ${dir}/${service.name}/, or a host grant (policy.credentialGrants)`,
    );
  }

  if (service.http) {
    const domain = service.http.domain.toLowerCase();
    if (domain.startsWith('*.') && !policy.wildcardDomains)
      add(
        'http.domain',
        'domain.wildcard',
        `${describeValue(service.http.domain)} is a wildcard domain; a host allows them with policy.wildcardDomains: true`,
      );
    if (policy.domains && !domainAllowed(domain, policy.domains))
      add(
        'http.domain',
        'domain.not-allowed',
        `${describeValue(service.http.domain)} is not one of the domains this host serves (policy.domains: ${policy.domains.join(', ')})`,
      );
    const range = policy.ports;
    // The second port of a blue/green update is bound as much as the first.
    for (const [k, port] of servicePorts(service).entries()) {
      if (!range || (port >= range.min && port <= range.max)) continue;
      const field = k === 0 ? 'http.internalPort' : 'http.secondPort';
      const what = k === 0 ? `${port}` : `${port} (the second port of blue/green updates)`;
      add(
        field,
        'port.range',
        `${what} is outside the ports this host gives services (policy.ports: ${range.min}-${range.max})`,
      );
    }
  }
  return issues;
}

/**
 * The rules for one writable path of service `self` (also applied at pre-flight to the path it resolves to).
 * Returns one issue per rule broken, with the locations it touches.
 */
export function checkWritablePath(
  path: string,
  self: string,
  policy: HostPolicy,
  ctx: PolicyContext,
  resolvedFrom?: string,
): { rule: PolicyRule; message: string }[] {
  const out: { rule: PolicyRule; message: string }[] = [];
  const what = resolvedFrom ? `${describeValue(resolvedFrom)} resolves to ${path}, which` : path;
  const system = deniedLocationsFor(path, policy);
  if (system.length)
    out.push({
      rule: 'read-write-paths.system',
      message: `${what} is or contains a system location (${system.join(', ')}); a host exempts a prefix with policy.allowPaths`,
    });
  const deployer = deployerLocations(ctx).filter((l) => touches(path, l.path));
  if (deployer.length)
    out.push({
      rule: 'read-write-paths.deployer',
      message: `${what} is or contains ${deployer.map((l) => `${l.what} ${l.path}`).join(', ')}`,
    });
  const others = otherServiceStates(self, ctx).filter((s) => touches(path, s.path));
  if (others.length)
    out.push({
      rule: 'read-write-paths.other-service',
      message: `${what} is or contains the state of ${others.map((s) => `service ${s.service} (${s.path})`).join(', ')}`,
    });
  return out;
}
