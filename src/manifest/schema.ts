import * as v from 'valibot';
import { isObject } from '../runtime/json.js';
import { describeValue } from './describe.js';
import {
  ABSOLUTE_PATH_RE,
  ARCHIVE_ID_RE,
  CREDENTIAL_NAME_RE,
  DOMAIN_RE,
  ENV_KEY_RE,
  HEALTH_PATH_RE,
  HOSTNAME_RE,
  hasNoControlChars,
  isUtcTimestamp,
  MAX_HOSTNAME_LENGTH,
  POSIX_NAME_RE,
  RELATIVE_PATH_RE,
  RESTART_VALUES,
  ROUTE_PATH_RE,
  SERVICE_NAME_RE,
  UNIT_NAME_RE,
  UTC_TIMESTAMP_RE,
} from './patterns.js';
import { STORE_PATH_RE } from './store-path.js';

/** The manifest version this library reads and writes. */
export const MANIFEST_VERSION = 1;

type AnyIssue = v.BaseIssue<unknown>;

/** A message function: "expected <what>, found <value>". */
function expected(what: string): (issue: AnyIssue) => string {
  return (issue) => `expected ${what}, found ${describeValue(issue.input)}`;
}

/**
 * A strict object: unknown keys are errors (a typo like `enviroment` must not silently drop configuration),
 * and the message names the allowed keys.
 */
function strict<const TEntries extends v.ObjectEntries>(entries: TEntries, what: string) {
  const allowed = Object.keys(entries).join(', ');
  return v.pipe(
    jsonObject(what),
    v.strictObject(entries, (issue) => {
      if (issue.expected === 'never')
        return `unknown key ${describeValue(issue.input)}; allowed keys: ${allowed}`;
      if (issue.input === undefined && issue.expected?.startsWith('"')) return 'required, but missing';
      return expected(what)(issue);
    }),
  );
}

/** A JSON object and not an array (valibot's object schemas accept arrays). */
function jsonObject(what: string) {
  return v.custom<Record<string, unknown>>(isObject, expected(what));
}

/** A string that matches `re` and holds no control characters. */
function pattern(re: RegExp, what: string) {
  const message = expected(what);
  // The description carries into the generated JSON Schema, so editors explain each field on hover.
  return v.pipe(v.string(message), v.regex(re, message), v.description(what.replace(/^an? /, '')));
}

/** A host name or domain: {@link pattern} plus DNS's length limit. */
function hostPattern(re: RegExp, what: string) {
  const message = expected(what);
  return v.pipe(
    v.string(message),
    v.maxLength(MAX_HOSTNAME_LENGTH, message),
    v.regex(re, message),
    v.description(what.replace(/^an? /, '')),
  );
}

/** Any string without control characters (newlines in unit file values are injection attempts). */
function plainText(what: string) {
  const message = expected(`${what} without control characters (newline, tab, escape, ...)`);
  return v.pipe(v.string(message), v.check(hasNoControlChars, message));
}

/** A list of `item`s. */
function list<TItem extends v.GenericSchema>(item: TItem, what: string) {
  return v.array(item, expected(`a list of ${what}`));
}

const SERVICE_NAME =
  'a service name: lowercase letters, digits and "-", starting with a letter, at most 63 characters';
const STORE_PATH =
  'a store path: /nix/store/ + 32 characters of Nix base32 + "-" + a store name, nothing after it';
const COMMAND =
  'a program inside the closure: a name in its bin/ (e.g. "web"), a relative path (e.g. "libexec/web"), or an absolute path under the storePath; no ".." segments';
const UNIT_NAME =
  'a systemd unit name with a type suffix (e.g. "postgresql.service", "network-online.target")';
const ABSOLUTE_PATH = 'an absolute path of letters, digits and . _ + - without ".." segments';
const RELATIVE_PATH = 'a relative path of letters, digits and . _ + - without ".." segments';

/** `artifact`: what to run, a Nix closure identified by its top-level store path. */
export const ArtifactSchema = strict(
  {
    type: v.literal('nix-closure', expected('"nix-closure"')),
    storePath: pattern(STORE_PATH_RE, STORE_PATH),
  },
  'an object { type, storePath }',
);

/** `exec`: the program and the account it runs as. */
export const ExecSchema = strict(
  {
    command: v.union(
      [
        pattern(RELATIVE_PATH_RE, COMMAND),
        pattern(/^\/nix\/store\/[0123456789abcdfghijklmnpqrsvwxyz]{32}-[A-Za-z0-9+._?=-]+\/.+$/, COMMAND),
      ],
      expected(COMMAND),
    ),
    args: v.optional(list(plainText('a string'), 'arguments (strings)')),
    user: v.optional(
      pattern(POSIX_NAME_RE, 'a POSIX user name (letters, digits, "_", "-"; at most 32 characters)'),
    ),
    group: v.optional(
      pattern(POSIX_NAME_RE, 'a POSIX group name (letters, digits, "_", "-"; at most 32 characters)'),
    ),
  },
  'an object { command, args?, user?, group? }',
);

/** `env`: plain environment variables. Secrets go to `envFile`. */
export const EnvSchema = v.pipe(
  jsonObject('an object of environment variables (name: string value)'),
  v.record(
    pattern(ENV_KEY_RE, 'an environment variable name matching [A-Za-z_][A-Za-z0-9_]*'),
    plainText('a string'),
  ),
);

/**
 * `credentials`: secret files systemd hands to this service alone (`LoadCredential=`), by credential name. The
 * service reads `$CREDENTIALS_DIRECTORY/<name>`; unlike `envFile`, no child process inherits the secret.
 */
export const CredentialsSchema = v.pipe(
  jsonObject('an object of credentials (name: absolute path of a file in the secrets directory)'),
  v.record(
    pattern(
      CREDENTIAL_NAME_RE,
      'a credential name: letters, digits, "_", "-" and ".", not starting with "-" or ".", at most 64 characters',
    ),
    pattern(ABSOLUTE_PATH_RE, `an absolute path to a file in the secrets directory (${ABSOLUTE_PATH})`),
  ),
);

/** `http`: the route Caddy serves for this service, and the loopback port the service listens on. */
export const HttpSchema = strict(
  {
    domain: hostPattern(
      DOMAIN_RE,
      'a domain name without scheme or port, optionally starting with "*." (e.g. "example.com")',
    ),
    path: pattern(
      ROUTE_PATH_RE,
      'a path prefix starting with "/" (e.g. "/" or "/api"), no trailing "/", no "." or ".." segments, no wildcards or query',
    ),
    internalPort: v.pipe(
      v.number(expected('an integer port from 1024 to 65535')),
      v.integer(expected('an integer port from 1024 to 65535')),
      v.minValue(1024, expected('an integer port from 1024 to 65535 (ports below 1024 need privileges)')),
      v.maxValue(65535, expected('an integer port from 1024 to 65535')),
    ),
    healthCheck: v.optional(
      pattern(HEALTH_PATH_RE, 'a request path starting with "/" (e.g. "/healthz"), visible ASCII, no "#"'),
    ),
    portEnv: v.optional(
      pattern(
        ENV_KEY_RE,
        'the name of the environment variable the service reads its port from (default "PORT"), matching [A-Za-z_][A-Za-z0-9_]*',
      ),
    ),
    secondPort: v.optional(
      v.pipe(
        v.number(expected('an integer port from 1024 to 65535')),
        v.integer(expected('an integer port from 1024 to 65535')),
        v.minValue(1024, expected('an integer port from 1024 to 65535 (ports below 1024 need privileges)')),
        v.maxValue(65535, expected('an integer port from 1024 to 65535')),
        v.description(
          'the port the new version listens on during a blue/green update (default internalPort + 10000, or internalPort - 10000 above 55535)',
        ),
      ),
    ),
  },
  'an object { domain, path, internalPort, healthCheck?, portEnv?, secondPort? }',
);

/** How a changed service is replaced: see docs/manifest.md#updates. */
export const UPDATE_STRATEGIES = ['restart', 'blue-green', 'overlap'] as const;

/** `systemd`: ordering and restart policy of the generated unit. */
export const SystemdSchema = strict(
  {
    after: v.optional(list(pattern(UNIT_NAME_RE, UNIT_NAME), 'unit names')),
    requires: v.optional(list(pattern(UNIT_NAME_RE, UNIT_NAME), 'unit names')),
    wants: v.optional(list(pattern(UNIT_NAME_RE, UNIT_NAME), 'unit names')),
    restart: v.optional(v.picklist(RESTART_VALUES, expected(`one of ${RESTART_VALUES.join(', ')}`))),
    restartSec: v.optional(
      v.pipe(
        v.number(expected('a number of seconds >= 0')),
        v.finite(expected('a number of seconds >= 0')),
        v.minValue(0, expected('a number of seconds >= 0')),
        v.maxValue(86_400, expected('a number of seconds from 0 to 86400 (one day)')),
      ),
    ),
  },
  'an object { after?, requires?, wants?, restart?, restartSec? }',
);

/** Socket address families `hardening.restrictAddressFamilies` may list (systemd's `RestrictAddressFamilies=`). */
export const ADDRESS_FAMILIES = ['AF_UNIX', 'AF_INET', 'AF_INET6', 'AF_NETLINK', 'AF_PACKET'] as const;

/**
 * `hardening`: relaxations of (or additions to) the default sandbox of the generated unit. Absent fields take
 * the deployer's strong defaults. The fields are the directives that break some runtime (measured: V8's JIT
 * dies under memoryDenyWriteExecute, procSubset "pid" empties Node's os.cpus(), listing network interfaces
 * needs AF_NETLINK) or some deployment (users, writable paths).
 */
export const HardeningSchema = strict(
  {
    dynamicUser: v.optional(v.boolean(expected('true or false'))),
    privateTmp: v.optional(v.boolean(expected('true or false'))),
    protectSystem: v.optional(
      v.union([v.boolean(), v.picklist(['full', 'strict'])], expected('true, false, "full" or "strict"')),
    ),
    protectHome: v.optional(
      v.union(
        [v.boolean(), v.picklist(['read-only', 'tmpfs'])],
        expected('true, false, "read-only" or "tmpfs"'),
      ),
    ),
    privateDevices: v.optional(v.boolean(expected('true or false'))),
    memoryDenyWriteExecute: v.optional(v.boolean(expected('true or false'))),
    readWritePaths: v.optional(list(pattern(ABSOLUTE_PATH_RE, ABSOLUTE_PATH), 'absolute paths')),
    stateDirectory: v.optional(
      list(pattern(RELATIVE_PATH_RE, RELATIVE_PATH), 'directory names under /var/lib'),
    ),
    procSubset: v.optional(
      v.pipe(
        v.picklist(['all', 'pid'], expected('"all" or "pid"')),
        v.description('"pid" hides /proc/cpuinfo, /proc/meminfo, ...: Node.js then sees os.cpus() as empty'),
      ),
    ),
    restrictAddressFamilies: v.optional(
      v.pipe(
        list(
          v.picklist(ADDRESS_FAMILIES, expected(`one of ${ADDRESS_FAMILIES.join(', ')}`)),
          'socket address families',
        ),
        v.description(
          'socket families the service may use (default AF_UNIX, AF_INET, AF_INET6); AF_NETLINK lists network interfaces',
        ),
      ),
    ),
  },
  'an object of hardening settings',
);

/** One service of the manifest. */
export const ServiceSchema = strict(
  {
    name: pattern(SERVICE_NAME_RE, SERVICE_NAME),
    artifact: ArtifactSchema,
    hosts: v.pipe(
      list(hostPattern(HOSTNAME_RE, 'an RFC 1123 host name (e.g. "biz", "web-1.example.com")'), 'host names'),
      v.minLength(1, expected('at least one host name')),
    ),
    exec: ExecSchema,
    env: v.optional(EnvSchema),
    envFile: v.optional(
      pattern(ABSOLUTE_PATH_RE, `an absolute path to a file in the secrets directory (${ABSOLUTE_PATH})`),
    ),
    credentials: v.optional(CredentialsSchema),
    http: v.optional(HttpSchema),
    systemd: v.optional(SystemdSchema),
    hardening: v.optional(HardeningSchema),
    revision: v.optional(plainText('a revision string')),
    update: v.optional(
      v.pipe(
        v.picklist(UPDATE_STRATEGIES, expected(`one of ${UPDATE_STRATEGIES.join(', ')}`)),
        v.description(
          'how a new version replaces the running one: "restart" in place, "blue-green" (http: started beside the old one on a second port, then Caddy switches), "overlap" (no http: started beside the old one, which stops once the new one is healthy); default blue-green when env sets the port variable to internalPort, else restart',
        ),
      ),
    ),
  },
  'a service object { name, artifact, hosts, exec, ... }',
);

const UTC_TIMESTAMP = 'an ISO-8601 UTC timestamp such as "2025-01-15T12:34:56Z"';

/** An ISO-8601 UTC timestamp that is a real date and time. */
function timestamp(what = UTC_TIMESTAMP) {
  return v.pipe(
    pattern(UTC_TIMESTAMP_RE, what),
    v.check(
      isUtcTimestamp,
      expected('a real date and time (month 01-12, day within the month, 00:00:00-23:59:59)'),
    ),
  );
}

/** A whole number from `min` to `max`. */
function integer(min: number, max: number, what: string) {
  const message = expected(`${what}: an integer from ${min} to ${max}`);
  return v.pipe(v.number(message), v.integer(message), v.minValue(min, message), v.maxValue(max, message));
}

const HOST = 'an RFC 1123 host name (e.g. "biz", "web-1.example.com")';

/**
 * The states of a staged rollout: `in-progress` and `halted` are open (the service may appear twice, one version
 * per host); `done`, `reverted` (halted, and the switched hosts put back) and `rolled-back` (ended by push
 * rollback) are over.
 */
export const ROLLOUT_STATES = ['in-progress', 'halted', 'done', 'reverted', 'rolled-back'] as const;

/** One version of a rolled-out service, for people and for resuming: its store path and revision. */
export const RolloutVersionSchema = strict(
  {
    storePath: pattern(STORE_PATH_RE, STORE_PATH),
    revision: v.optional(plainText('a revision string')),
  },
  'an object { storePath, revision? }',
);

/** How a rollout proceeds, as `push deploy` was asked (recorded so that running it again resumes it the same way). */
export const RolloutParametersSchema = strict(
  {
    canary: v.optional(integer(1, 1000, 'how many hosts switch first')),
    canaryHosts: v.optional(list(hostPattern(HOSTNAME_RE, HOST), 'host names')),
    maxParallel: v.optional(integer(1, 1000, 'how many hosts switch at once after the canary')),
    minHealthyTimeMs: integer(0, 86_400_000, 'milliseconds a wave stays healthy before the next'),
    healthyDeadlineMs: integer(1, 86_400_000, 'milliseconds a host has to report healthy'),
    autoRevert: v.boolean(expected('true or false')),
  },
  'an object { canary?, canaryHosts?, maxParallel?, minHealthyTimeMs, healthyDeadlineMs, autoRevert }',
);

/**
 * `rollout`: the record of a staged rollout `push deploy --canary` drives (docs/manifest.md). Push reads it to
 * resume, `push status` and `push history` show it; a deployer only validates it and runs the entry of the
 * service that names its host, as always.
 */
export const RolloutSchema = strict(
  {
    service: pattern(SERVICE_NAME_RE, SERVICE_NAME),
    state: v.picklist(ROLLOUT_STATES, expected(`one of ${ROLLOUT_STATES.join(', ')}`)),
    from: v.optional(RolloutVersionSchema),
    to: RolloutVersionSchema,
    waves: v.pipe(
      list(
        v.pipe(
          list(hostPattern(HOSTNAME_RE, HOST), 'host names'),
          v.minLength(1, expected('at least one host name')),
        ),
        'waves (lists of host names)',
      ),
      v.minLength(1, expected('at least one wave')),
    ),
    switched: list(hostPattern(HOSTNAME_RE, HOST), 'host names'),
    rollbackPoint: v.optional(
      strict(
        {
          generation: timestamp(
            'the generation of the manifest before the rollout (an ISO-8601 UTC timestamp)',
          ),
        },
        'an object { generation }',
      ),
    ),
    startedAt: timestamp(),
    updatedAt: timestamp(),
    parameters: RolloutParametersSchema,
    message: v.optional(
      v.pipe(plainText('a message'), v.maxLength(2000, expected('a message of at most 2000 characters'))),
    ),
  },
  'a rollout object { service, state, from?, to, waves, switched, rollbackPoint?, startedAt, updatedAt, parameters, message? }',
);

/** The whole manifest, version 1. */
export const ManifestSchema = strict(
  {
    $schema: v.optional(v.string(expected('a string (URL or path of the JSON Schema)'))),
    // Other numbers are answered before schema validation ("unsupported manifest version N").
    version: v.literal(MANIFEST_VERSION, expected(String(MANIFEST_VERSION))),
    generation: timestamp(),
    services: list(ServiceSchema, 'services'),
    rollbackOf: v.optional(
      pattern(
        ARCHIVE_ID_RE,
        'an archive id such as "20250115T123456.789Z": set by push rollback to the archived manifest whose services it restored',
      ),
    ),
    rollbackService: v.optional(
      pattern(
        SERVICE_NAME_RE,
        'a service name: set by push rollback --service when only that service was restored from rollbackOf',
      ),
    ),
    rollout: v.optional(RolloutSchema),
  },
  'a manifest object { version, generation, services }',
);

/** A validated manifest. Values are exactly as written; defaults are applied by the modules that use them. */
export type Manifest = v.InferOutput<typeof ManifestSchema>;
/** One validated service of a {@link Manifest}. */
export type Service = v.InferOutput<typeof ServiceSchema>;
/** A service's `http` block. */
export type ServiceHttp = v.InferOutput<typeof HttpSchema>;
/** A service's `hardening` block. */
export type ServiceHardening = v.InferOutput<typeof HardeningSchema>;
/** A service's `systemd` block. */
export type ServiceSystemd = v.InferOutput<typeof SystemdSchema>;
/** A service's `exec` block. */
export type ServiceExec = v.InferOutput<typeof ExecSchema>;
/** A manifest's `rollout` record. */
export type Rollout = v.InferOutput<typeof RolloutSchema>;
/** The state of a {@link Rollout}. */
export type RolloutState = (typeof ROLLOUT_STATES)[number];
/** How a {@link Rollout} proceeds. */
export type RolloutParameters = v.InferOutput<typeof RolloutParametersSchema>;
/** How a changed service is replaced (`update`). */
export type UpdateStrategy = (typeof UPDATE_STRATEGIES)[number];
