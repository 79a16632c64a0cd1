/**
 * The host policy: what the host, not the manifest, lets a service be given. The defaults need no
 * configuration; a host widens or narrows them in the deployer's config file under the key `policy` (see
 * {@link parseHostPolicy}).
 */

/**
 * Groups no service may run in, by default. Each one grants access beyond the service's own files: root and
 * wheel/sudo/admin (administration), adm and systemd-journal (every log), shadow (password hashes), disk and
 * kmem (raw disks and kernel memory), tty and input (other users' terminals and keyboards), video (frame
 * buffers, cameras), docker, lxd, libvirt and kvm (root-equivalent container and VM control), systemd-network
 * (network configuration). Closed: a host adds with `denyGroups` and removes with `allowGroups`.
 */
export const DEFAULT_PRIVILEGED_GROUPS: readonly string[] = Object.freeze([
  'root',
  'wheel',
  'sudo',
  'admin',
  'adm',
  'shadow',
  'disk',
  'kmem',
  'tty',
  'input',
  'video',
  'docker',
  'lxd',
  'libvirt',
  'kvm',
  'systemd-journal',
  'systemd-network',
]);

/**
 * Locations no writable path (`hardening.readWritePaths`) may be, lie under or contain, by default. `/` counts
 * only as itself (everything lies under it). The deployer's own directories and other services' state are
 * protected apart (from the {@link PolicyContext}) and cannot be allowed. A host adds with `denyPaths` and
 * exempts a prefix with `allowPaths`.
 */
export const DEFAULT_DENIED_PATHS: readonly string[] = Object.freeze([
  '/',
  '/etc',
  '/usr',
  '/boot',
  '/root',
  '/nix',
  // Debian 12 links these into /usr; systemd follows the link, the check of the written path would not.
  '/bin',
  '/sbin',
  '/lib',
  '/lib32',
  '/lib64',
  '/libx32',
  // Kernel interfaces: a writable /sys or /proc undoes ProtectKernelTunables.
  '/proc',
  '/sys',
  '/dev',
  '/run/systemd',
  '/var/lib/systemd',
  // Every DynamicUser= service's state (systemd keeps it in /var/lib/private/<name>).
  '/var/lib/private',
  // Caddy's data (certificates, keys) on Debian and NixOS.
  '/var/lib/caddy',
]);

/**
 * Targets any service may want or require: synchronisation points that start nothing of consequence (at most
 * the wait-online helper). `multi-user.target` and friends are not here: starting them starts every unit they
 * pull in, including units an administrator stopped.
 */
export const WELL_KNOWN_TARGETS: readonly string[] = Object.freeze([
  'network.target',
  'network-online.target',
  'nss-lookup.target',
  'time-sync.target',
  'remote-fs.target',
]);

/** The systemd fields of a service that start the units they name (ordering fields start nothing). */
export const STARTING_DEPENDENCIES = ['wants', 'requires'] as const;

/**
 * The uids systemd gives dynamic users (DynamicUser=yes), fixed at build time (61184–65519 on Debian and
 * NixOS). A state directory owned by one of them belongs to some dynamic service, not to a host account.
 */
export const DYNAMIC_UID_RANGE = Object.freeze({ min: 61184, max: 65519 });

/** The effective host policy (the defaults with a host's changes applied). */
export interface HostPolicy {
  /** Group names no service may run in ({@link DEFAULT_PRIVILEGED_GROUPS} + `denyGroups` − `allowGroups`). */
  privilegedGroups: readonly string[];
  /** When set, the only `exec.user` names allowed. */
  users?: readonly string[];
  /** When set, the only `exec.group` names allowed. */
  groups?: readonly string[];
  /** Locations writable paths keep out of ({@link DEFAULT_DENIED_PATHS} + `denyPaths`). */
  deniedPaths: readonly string[];
  /** Prefixes exempt from `deniedPaths` (`allowPaths`). */
  allowedPaths: readonly string[];
  /** Units besides the well-known targets and this deployer's services that `wants`/`requires` may name. */
  allowedUnits: readonly string[];
  /** Env files shared on purpose: absolute file path → the services that may load it. */
  envFileGrants: Readonly<Record<string, readonly string[]>>;
  /** Credential files shared on purpose: absolute file path → the services that may load it. Absent: none. */
  credentialGrants?: Readonly<Record<string, readonly string[]>>;
  /** Whether `http.domain` may be a wildcard (`*.example.com`). */
  wildcardDomains: boolean;
  /** When set, the only domains routed: `example.com` (that name), `*.example.com` (any name below it). */
  domains?: readonly string[];
  /** When set, the only ports a service may get (inclusive). */
  ports?: { readonly min: number; readonly max: number };
}

/** The policy of a host that configures none: every rule at its secure default. */
export const DEFAULT_HOST_POLICY: Readonly<HostPolicy> = Object.freeze({
  privilegedGroups: DEFAULT_PRIVILEGED_GROUPS,
  deniedPaths: DEFAULT_DENIED_PATHS,
  allowedPaths: Object.freeze([]) as readonly string[],
  allowedUnits: Object.freeze([]) as readonly string[],
  envFileGrants: Object.freeze({}),
  credentialGrants: Object.freeze({}),
  wildcardDomains: false,
});

/**
 * What the policy needs to know about the deployer that applies it. `DeployerSettings` fits as it is; add
 * `serviceNames`.
 */
export interface PolicyContext {
  secretsDir: string;
  stateDir: string;
  profilesDir: string;
  gcrootsDir: string;
  /** Where the deployer writes unit files (protected when it lies outside /run/systemd and /etc). */
  unitsDir?: string;
  /** Caddy's admin address; a `unix//path` socket is protected from writable paths. */
  caddyAdmin?: string;
  /** The deployer's Prometheus textfile, protected from writable paths. */
  metricsFile?: string;
  /** Prefix of the deployer's unit names. Default `deploy-`. */
  unitPrefix?: string;
  /**
   * Every service of this deployer whose state must stay its own: the manifest's services (all hosts) and,
   * at apply time, the services in the deployer's state. Default: the manifest's.
   */
  serviceNames?: readonly string[];
}
