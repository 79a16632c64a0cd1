import * as v from 'valibot';
import { describeValue, formatPath } from '../manifest/describe.js';
import {
  ABSOLUTE_PATH_RE,
  DOMAIN_RE,
  MAX_HOSTNAME_LENGTH,
  POSIX_NAME_RE,
  SERVICE_NAME_RE,
  UNIT_NAME_RE,
} from '../manifest/patterns.js';
import {
  DEFAULT_DENIED_PATHS,
  DEFAULT_HOST_POLICY,
  DEFAULT_PRIVILEGED_GROUPS,
  type HostPolicy,
} from './policy.js';

/** A problem in the policy configuration: where (`deployer.json: policy.denyGroups[2]`) and what. */
export interface PolicyConfigIssue {
  path: string;
  message: string;
}

/** The outcome of {@link parseHostPolicy}. */
export type HostPolicyResult = { ok: true; policy: HostPolicy } | { ok: false; issues: PolicyConfigIssue[] };

type AnyIssue = v.BaseIssue<unknown>;

const expected =
  (what: string) =>
  (issue: AnyIssue): string =>
    `expected ${what}, found ${describeValue(issue.input)}`;

function text(re: RegExp, what: string, maxLength = 4096) {
  const message = expected(what);
  return v.pipe(v.string(message), v.maxLength(maxLength, message), v.regex(re, message));
}

function list<T extends v.GenericSchema>(item: T, what: string) {
  return v.pipe(
    v.array(item, expected(`a list of ${what}`)),
    v.maxLength(1000, expected('at most 1000 items')),
  );
}

const POSIX_NAME = text(
  POSIX_NAME_RE,
  'a user or group name (letters, digits, "_", "-"; at most 32 characters)',
);
const ABSOLUTE_PATH = text(
  ABSOLUTE_PATH_RE,
  'an absolute path of plain segments without "..", no trailing "/"',
);
const UNIT_NAME = text(UNIT_NAME_RE, 'a systemd unit name with its type (e.g. "postgresql.service")');
const SERVICE_NAME = text(SERVICE_NAME_RE, 'a service name (lowercase letters, digits, "-")');
const DOMAIN = text(
  DOMAIN_RE,
  'a domain such as "example.com", or "*.example.com" for every name below it',
  MAX_HOSTNAME_LENGTH,
);
const PORT = v.pipe(
  v.number(expected('an integer port from 1024 to 65535')),
  v.integer(expected('an integer port from 1024 to 65535')),
  v.minValue(1024, expected('an integer port from 1024 to 65535')),
  v.maxValue(65535, expected('an integer port from 1024 to 65535')),
);

function strict<const T extends v.ObjectEntries>(entries: T, what: string) {
  const allowed = Object.keys(entries).join(', ');
  return v.pipe(
    v.custom<Record<string, unknown>>(
      (input) => typeof input === 'object' && input !== null && !Array.isArray(input),
      expected(what),
    ),
    v.strictObject(entries, (issue) =>
      issue.expected === 'never'
        ? `unknown key ${describeValue(issue.input)}; allowed keys: ${allowed}`
        : expected(what)(issue),
    ),
  );
}

/** Files shared on purpose (`envFileGrants`, `credentialGrants`): file path → the services that may load it. */
function grants(what: string) {
  return v.pipe(
    v.custom<Record<string, unknown>>(
      (input) => typeof input === 'object' && input !== null && !Array.isArray(input),
      expected(`an object: ${what} path → list of service names`),
    ),
    v.record(
      ABSOLUTE_PATH,
      v.pipe(list(SERVICE_NAME, 'service names'), v.minLength(1, expected('at least one service name'))),
    ),
  );
}

/** The `policy` object of the deployer's config file, as written. */
const PolicyConfigSchema = strict(
  {
    denyGroups: v.optional(list(POSIX_NAME, 'group names')),
    allowGroups: v.optional(list(POSIX_NAME, 'group names')),
    users: v.optional(list(POSIX_NAME, 'user names')),
    groups: v.optional(list(POSIX_NAME, 'group names')),
    denyPaths: v.optional(list(ABSOLUTE_PATH, 'absolute paths')),
    allowPaths: v.optional(list(ABSOLUTE_PATH, 'absolute paths')),
    allowUnits: v.optional(list(UNIT_NAME, 'unit names')),
    envFileGrants: v.optional(grants('env file')),
    credentialGrants: v.optional(grants('credential file')),
    wildcardDomains: v.optional(v.boolean(expected('true or false'))),
    domains: v.optional(list(DOMAIN, 'domains')),
    ports: v.optional(strict({ min: PORT, max: PORT }, 'an object { min, max } of ports')),
  },
  'an object of policy settings',
);

/** The host policy as written in the config file (every key optional). */
export type HostPolicyConfig = v.InferOutput<typeof PolicyConfigSchema>;

/**
 * Reads the `policy` object of the deployer's config file into the effective {@link HostPolicy}: the defaults
 * with the host's changes. `undefined` gives {@link DEFAULT_HOST_POLICY}. Every problem is returned at once,
 * each with its path under `where` (e.g. `deployer.json: policy`). Pure.
 *
 * Keys: `denyGroups`/`allowGroups` (add to / remove from the privileged groups; gid 0 can never be allowed),
 * `users`/`groups` (allowlists of exec.user / exec.group), `denyPaths`/`allowPaths` (add / exempt prefixes of
 * the system locations writable paths keep out of), `allowUnits` (units wants/requires may name),
 * `envFileGrants` and `credentialGrants` (file → services that may share it), `wildcardDomains`, `domains` (allowlist) and
 * `ports: { min, max }`.
 */
export function parseHostPolicy(raw: unknown, where = 'policy'): HostPolicyResult {
  if (raw === undefined) return { ok: true, policy: DEFAULT_HOST_POLICY };
  const at = (keys: readonly (string | number)[]) =>
    keys.length === 0 ? where : `${where}${formatPath(['x', ...keys]).slice(1)}`;
  const parsed = v.safeParse(PolicyConfigSchema, raw, { abortPipeEarly: true });
  if (!parsed.success) {
    return {
      ok: false,
      issues: parsed.issues.map((issue) => ({
        path: at((issue.path ?? []).map((item) => item.key as string | number)),
        message: issue.message,
      })),
    };
  }
  const config = parsed.output;
  const issues: PolicyConfigIssue[] = [];
  const deny = config.denyGroups ?? [];
  const allow = config.allowGroups ?? [];
  allow.forEach((name, i) => {
    if (name === 'root')
      issues.push({ path: at(['allowGroups', i]), message: 'gid 0 (root) can never be allowed' });
    else if (deny.includes(name))
      issues.push({ path: at(['allowGroups', i]), message: `${describeValue(name)} is also in denyGroups` });
    else if (!DEFAULT_PRIVILEGED_GROUPS.includes(name))
      issues.push({
        path: at(['allowGroups', i]),
        message: `${describeValue(name)} is not a privileged group, nothing to allow; privileged by default: ${DEFAULT_PRIVILEGED_GROUPS.join(', ')}`,
      });
  });
  const privilegedGroups = [...new Set([...DEFAULT_PRIVILEGED_GROUPS, ...deny])].filter(
    (name) => !allow.includes(name) || name === 'root',
  );
  config.users?.forEach((name, i) => {
    if (name === 'root')
      issues.push({ path: at(['users', i]), message: 'no service runs as root; remove it from the list' });
  });
  config.groups?.forEach((name, i) => {
    if (privilegedGroups.includes(name))
      issues.push({
        path: at(['groups', i]),
        message: `${describeValue(name)} is a privileged group; list it in allowGroups to allow it`,
      });
  });
  const denyPaths = config.denyPaths ?? [];
  (config.allowPaths ?? []).forEach((path, i) => {
    if (denyPaths.includes(path))
      issues.push({ path: at(['allowPaths', i]), message: `${describeValue(path)} is also in denyPaths` });
  });
  if (config.ports && config.ports.min > config.ports.max)
    issues.push({
      path: at(['ports']),
      message: `expected min <= max, found min ${config.ports.min} and max ${config.ports.max}`,
    });
  if (issues.length) return { ok: false, issues };

  const policy: HostPolicy = {
    privilegedGroups,
    deniedPaths: [...new Set([...DEFAULT_DENIED_PATHS, ...denyPaths])],
    allowedPaths: config.allowPaths ?? [],
    allowedUnits: config.allowUnits ?? [],
    envFileGrants: config.envFileGrants ?? {},
    credentialGrants: config.credentialGrants ?? {},
    wildcardDomains: config.wildcardDomains ?? false,
  };
  if (config.users) policy.users = config.users;
  if (config.groups) policy.groups = config.groups;
  if (config.domains) policy.domains = config.domains.map((d) => d.toLowerCase());
  if (config.ports) policy.ports = { min: config.ports.min, max: config.ports.max };
  return { ok: true, policy };
}
