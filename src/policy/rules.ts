/**
 * The rules of the host policy, each with a stable id. A refusal carries the id so that scripts and the docs
 * can name a rule without matching message text.
 */
export const POLICY_RULES = {
  'user.root':
    'a service never runs as uid 0: not as "root", not as another account with uid 0, not without a user and without a dynamic user',
  'user.not-allowed': 'exec.user is not in the host\'s "users" allowlist',
  'group.root': "a service never runs with gid 0, as its group or as one of its user's groups",
  'group.privileged':
    'a service never runs in a privileged group (root, wheel, sudo, docker, disk, shadow, ...), by name or by id',
  'group.not-allowed': 'exec.group is not in the host\'s "groups" allowlist',
  'state-directory.other-service':
    "a state directory is the service's own name or below it (web, web/cache), never another name",
  'state-directory.system':
    "a state directory never lands on a system location or the deployer's own (biz-secrets, biz-deployer, systemd, private, caddy, ...)",
  'state-directory.owner':
    'an existing state directory belongs to this service (its user, or a dynamic user), not to another account',
  'read-write-paths.system':
    'a writable path is never a system location or a directory containing one (/, /etc, /usr, /nix, ...)',
  'read-write-paths.deployer':
    "a writable path never covers the deployer's state, secrets, profiles, GC roots, units or Caddy's admin socket",
  'read-write-paths.other-service': "a writable path never covers another service's state directory",
  'dependency.unit':
    'wants/requires name only well-known targets, services of this deployer, or units the host allows',
  'env-file.not-own':
    'an envFile is <secretsDir>/<service>.env or under <secretsDir>/<service>/, or granted to the service by the host',
  'credential.not-own':
    'a credential file is under <secretsDir>/<service>/, or granted to the service by the host (credentialGrants)',
  'domain.wildcard': 'a wildcard domain needs the host\'s "wildcardDomains": true',
  'domain.not-allowed': 'the domain is not in the host\'s "domains" allowlist',
  'route.foreign-host':
    "a domain that a route of someone else's names exactly (on an overlapping path) is not routed for us",
  'port.range': 'the port is outside the host\'s "ports" range',
  'port.in-use': "something other than this service's own units listens on its port",
} as const;

/** The id of one policy rule, e.g. `user.root`. */
export type PolicyRule = keyof typeof POLICY_RULES;

/** One refusal: where (`services[2].exec.user`), which rule, and what was found and expected. */
export interface PolicyIssue {
  /** The field, e.g. `services[2].hardening.readWritePaths[0]`. */
  path: string;
  rule: PolicyRule;
  message: string;
}

/** Renders refusals one per line as `path: message (rule id)`. */
export function formatPolicyIssues(issues: readonly PolicyIssue[]): string {
  return issues.map((issue) => `${issue.path}: ${issue.message} (rule ${issue.rule})`).join('\n');
}
