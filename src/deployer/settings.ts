import { AUTO_CADDY_SERVER, DEFAULT_CADDY_LISTEN, listenPortRange } from '../caddy/server.js';
import { DEFAULT_SECRETS_DIR, type ManifestIssue } from '../manifest/validate.js';
import { type OptionSources, type OptionSpec, resolveOptions } from '../options.js';
import { parseHostPolicy } from '../policy/parse.js';
import type { HostPolicy } from '../policy/policy.js';

/** Everything the deployer needs to know about its host, resolved from flags, environment and config file. */
export interface DeployerSettings {
  /** Where the manifest lives: `s3://bucket/key?region=&endpoint=&profile=`, `file:///path` or a path. */
  manifest: string;
  /**
   * Where this host writes its status, `<host>.json` under this directory or prefix (`s3://bucket/prefix/?...`,
   * `file:///dir`, a path); `undefined`: `status/` beside the manifest. Another bucket or prefix lets the
   * manifest's bucket be read-only for hosts.
   */
  status: string | undefined;
  /** Nix substituter the closures are copied from (`s3://...`, `http://...`, `file://...`). */
  substituter: string | undefined;
  /** Public keys closures and manifests must be signed with (`name:base64`); several during a key rotation. */
  trustedPublicKeys: string[];
  /** Accept closures without a trusted signature. Only for tests and air-gapped experiments. */
  insecureAllowUnsigned: boolean;
  /**
   * Accept a manifest that carries no signature at all (migration from unsigned manifests only). Signed ones are
   * still verified: a bad or untrusted signature is refused even with it.
   */
  insecureAllowUnsignedManifest: boolean;
  /** This host's name: selects the manifest's services. */
  host: string;
  stateDir: string;
  unitsDir: string;
  profilesDir: string;
  gcrootsDir: string;
  secretsDir: string;
  /** Caddy admin address: `http://127.0.0.1:2019` or `unix//run/caddy/admin.sock`; `off` disables routes. */
  caddyAdmin: string;
  /**
   * Name of the Caddy HTTP server (under `apps.http.servers`) that holds our routes, or `auto` (the default):
   * the one that holds them already, else `omni`, else the first listening on :443, else on :80, else `omni`
   * is created (see `chooseCaddyServer`).
   */
  caddyServer: string;
  /** Listen addresses of the server created when the one to use does not exist (default `:443`). */
  caddyListen: string[];
  /** Profile generations kept per service. */
  keep: number;
  /** How long a restarted service must stay active without restarting before it counts as healthy. */
  healthSettleMs: number;
  /** Timeout of one health-check request. */
  healthTimeoutMs: number;
  /** Pause between health-check attempts. */
  healthIntervalMs: number;
  /** Longest wait for one service to become healthy before it is rolled back. */
  deployTimeoutMs: number;
  /**
   * How long the new instance of a blue/green update must stay active, answering its health check, before
   * Caddy switches to it (the rest of --health-settle is watched while it serves, the old one still running).
   */
  switchSettleMs: number;
  /** After a switch, the longest wait for Caddy's requests in flight to the old instance before it stops. */
  drainTimeoutMs: number;
  /** `watch`: time between polls (a little random jitter is added). */
  intervalMs: number;
  /** Commands run after a successful / failed tick, with the outcome in environment variables. */
  onSuccess: string | undefined;
  onFailure: string | undefined;
  /** Prometheus textfile to write after every tick. */
  metricsFile: string | undefined;
  /** `text` for people (default on a TTY), `json` lines for journald. */
  logFormat: 'auto' | 'text' | 'json';
  /**
   * What the host lets a service be given (accounts, groups, paths, units, env files, domains, ports): the
   * config file's `policy` object over the secure defaults (see `parseHostPolicy`). Config file only: no flag.
   */
  policy: HostPolicy;
}

/** The config-file key of the host policy, which is no flag and no environment variable (see docs/security.md). */
export const POLICY_KEY = 'policy';

/**
 * Every setting once: its flag, environment variable, config-file key (the setting's own name), default and
 * description (the help text and docs/cli.md are generated from it). Precedence is flag, then environment, then
 * config file, then default.
 */
export const SETTINGS: readonly (OptionSpec & { key: keyof DeployerSettings })[] = [
  {
    key: 'manifest',
    flag: 'manifest',
    env: 'DEPLOYER_MANIFEST',
    kind: 'location',
    required: true,
    value: 'LOCATION',
    description:
      'where the manifest lives: s3://bucket/manifest.json?region=&endpoint=&profile=, file:///path/manifest.json or a path',
  },
  {
    key: 'status',
    flag: 'status',
    env: 'DEPLOYER_STATUS',
    kind: 'location',
    value: 'LOCATION',
    defaultText: 'status/ beside the manifest',
    description:
      "where this host writes its status, <host>.json in this directory or prefix (s3://bucket/prefix/?region=&endpoint=&profile=, file:///dir or a path): another bucket or prefix lets the manifest's bucket stay read-only for hosts; push status and --wait must read the same place",
  },
  {
    key: 'substituter',
    flag: 'substituter',
    env: 'DEPLOYER_SUBSTITUTER',
    kind: 'string',
    value: 'URL',
    description:
      'the Nix binary cache closures are copied from (s3://bucket?region=&endpoint=&scheme=, http://..., file:///dir); needed as soon as a closure is missing',
  },
  {
    key: 'trustedPublicKeys',
    flag: 'trusted-public-key',
    env: 'DEPLOYER_TRUSTED_PUBLIC_KEYS',
    kind: 'list',
    default: [],
    value: 'KEY',
    description:
      'a public key closures and manifests must be signed with (name:base64); several during a key rotation: the flag may be repeated, the environment variable and config key take a list',
  },
  {
    key: 'insecureAllowUnsigned',
    flag: 'insecure-allow-unsigned',
    env: 'DEPLOYER_INSECURE_ALLOW_UNSIGNED',
    kind: 'boolean',
    default: false,
    description:
      'accept closures without a trusted signature (tests and air-gapped experiments only; without it a trusted key is required)',
  },
  {
    key: 'insecureAllowUnsignedManifest',
    flag: 'insecure-allow-unsigned-manifest',
    env: 'DEPLOYER_INSECURE_ALLOW_UNSIGNED_MANIFEST',
    kind: 'boolean',
    default: false,
    description:
      'also apply a manifest that carries no signature (migration only: anyone who can write the bucket can then decide what runs here); a signed manifest is still verified, a bad or untrusted signature still refused',
  },
  {
    key: 'host',
    flag: 'host',
    env: 'DEPLOYER_HOST',
    kind: 'host',
    value: 'NAME',
    defaultText: "this machine's host name",
    description: "this host's name: selects the manifest's services that run here",
  },
  {
    key: 'stateDir',
    flag: 'state-dir',
    env: 'DEPLOYER_STATE_DIR',
    kind: 'path',
    default: '/var/lib/biz-deployer',
    value: 'DIR',
    description: "the deployer's state (what runs, last known-good versions) and its lock file",
  },
  {
    key: 'unitsDir',
    flag: 'units-dir',
    env: 'DEPLOYER_UNITS_DIR',
    kind: 'path',
    default: '/run/systemd/system',
    value: 'DIR',
    description:
      'where unit files are written (the default is emptied at boot; the first tick restores the units)',
  },
  {
    key: 'profilesDir',
    flag: 'profiles-dir',
    env: 'DEPLOYER_PROFILES_DIR',
    kind: 'path',
    default: '/nix/var/nix/profiles/biz',
    value: 'DIR',
    description: 'one Nix profile per service, whose generations are the versions kept for rollback',
  },
  {
    key: 'gcrootsDir',
    flag: 'gcroots-dir',
    env: 'DEPLOYER_GCROOTS_DIR',
    kind: 'path',
    default: '/nix/var/nix/gcroots/biz',
    value: 'DIR',
    description: 'garbage-collector roots of the running closures',
  },
  {
    key: 'secretsDir',
    flag: 'secrets-dir',
    env: 'DEPLOYER_SECRETS_DIR',
    kind: 'path',
    default: DEFAULT_SECRETS_DIR,
    value: 'DIR',
    description: "the directory every service's envFile and credentials must be inside",
  },
  {
    key: 'caddyAdmin',
    flag: 'caddy-admin',
    env: 'DEPLOYER_CADDY_ADMIN',
    kind: 'string',
    default: 'http://127.0.0.1:2019',
    value: 'ADDRESS',
    description: "Caddy's admin API: http://host:port, unix//run/caddy/admin.sock, or off (no routes)",
  },
  {
    key: 'caddyServer',
    flag: 'caddy-server',
    env: 'DEPLOYER_CADDY_SERVER',
    kind: 'string',
    default: AUTO_CADDY_SERVER,
    value: 'NAME',
    description:
      'the Caddy HTTP server (under apps.http.servers) that holds the routes; auto: the one holding them already, else one named omni, else the first listening on :443, else on :80, else a server omni is created on --caddy-listen',
  },
  {
    key: 'caddyListen',
    flag: 'caddy-listen',
    env: 'DEPLOYER_CADDY_LISTEN',
    kind: 'strings',
    default: [...DEFAULT_CADDY_LISTEN],
    value: 'ADDRESS',
    description:
      "where the server that holds the routes listens when the deployer creates it (Caddy has none to use, or --caddy-server names one it lacks): :443 gets Caddy's automatic HTTPS and the HTTP-to-HTTPS redirect, :80 plain HTTP (behind a load balancer); the flag may be repeated",
  },
  {
    key: 'keep',
    flag: 'keep',
    env: 'DEPLOYER_KEEP',
    kind: 'count',
    default: 5,
    value: 'N',
    description: 'versions kept per service (at least 2: the one a rollback returns to)',
  },
  {
    key: 'healthSettleMs',
    flag: 'health-settle',
    env: 'DEPLOYER_HEALTH_SETTLE',
    kind: 'duration',
    default: 5_000,
    value: 'DURATION',
    description:
      'how long a restarted service must stay active without restarting to count as healthy (less than --deploy-timeout)',
  },
  {
    key: 'healthTimeoutMs',
    flag: 'health-timeout',
    env: 'DEPLOYER_HEALTH_TIMEOUT',
    kind: 'duration',
    default: 5_000,
    value: 'DURATION',
    description: 'timeout of one health-check request',
  },
  {
    key: 'healthIntervalMs',
    flag: 'health-interval',
    env: 'DEPLOYER_HEALTH_INTERVAL',
    kind: 'duration',
    default: 1_000,
    value: 'DURATION',
    description: 'pause between health-check attempts',
  },
  {
    key: 'deployTimeoutMs',
    flag: 'deploy-timeout',
    env: 'DEPLOYER_DEPLOY_TIMEOUT',
    kind: 'duration',
    default: 30_000,
    value: 'DURATION',
    description: 'longest wait for one service to become healthy before it is rolled back',
  },
  {
    key: 'switchSettleMs',
    flag: 'switch-settle',
    env: 'DEPLOYER_SWITCH_SETTLE',
    kind: 'duration',
    default: 1_000,
    value: 'DURATION',
    description:
      'blue/green updates: how long the new instance must stay active, answering its health check, before Caddy switches to it; the rest of --health-settle is watched while it serves, with the old instance still running (a value above --health-settle counts as --health-settle)',
  },
  {
    key: 'drainTimeoutMs',
    flag: 'drain-timeout',
    env: 'DEPLOYER_DRAIN_TIMEOUT',
    kind: 'duration',
    default: 30_000,
    value: 'DURATION',
    description:
      'blue/green updates: after Caddy switched away from an instance, the longest wait for the requests it still serves before it is stopped',
  },
  {
    key: 'intervalMs',
    flag: 'interval',
    env: 'DEPLOYER_INTERVAL',
    kind: 'duration',
    default: 300_000,
    value: 'DURATION',
    description: 'time between polls of the manifest (a little random jitter is added)',
  },
  {
    key: 'onSuccess',
    flag: 'on-success',
    env: 'DEPLOYER_ON_SUCCESS',
    kind: 'string',
    value: 'COMMAND',
    description:
      'shell command run after a tick that converged, with DEPLOYER_OUTCOME, DEPLOYER_HOST, DEPLOYER_GENERATION, DEPLOYER_MESSAGE, DEPLOYER_CHANGED and DEPLOYER_FAILED in its environment',
  },
  {
    key: 'onFailure',
    flag: 'on-failure',
    env: 'DEPLOYER_ON_FAILURE',
    kind: 'string',
    value: 'COMMAND',
    description: 'shell command run after a tick that failed (same environment as --on-success)',
  },
  {
    key: 'metricsFile',
    flag: 'metrics-file',
    env: 'DEPLOYER_METRICS_FILE',
    kind: 'path',
    value: 'FILE',
    description: "a Prometheus textfile written after every tick (for node_exporter's textfile collector)",
  },
  {
    key: 'logFormat',
    flag: 'log-format',
    env: 'DEPLOYER_LOG_FORMAT',
    kind: 'format',
    default: 'auto',
    value: 'FORMAT',
    description: 'auto, text or json: text lines on a terminal, JSON lines otherwise (journald)',
  },
];

/** Raw inputs of {@link resolveSettings}. */
export interface SettingsSources extends Omit<OptionSources, 'defaults'> {
  /** Default for `host`: this machine's name. */
  hostname: string;
}

/** The outcome of {@link resolveSettings}. */
export type SettingsResult =
  | { ok: true; settings: DeployerSettings }
  | { ok: false; issues: ManifestIssue[] };

/**
 * Resolves the deployer's settings (see {@link resolveOptions}: flag, environment, config file, default), and
 * refuses to run without a trusted public key unless `--insecure-allow-unsigned` says so explicitly.
 */
export function resolveSettings(sources: SettingsSources): SettingsResult {
  // The policy is an object of its own, checked by its own parser; the other keys are options.
  const { config, policy: rawPolicy } = splitPolicy(sources.config);
  const policy = parseHostPolicy(rawPolicy, `${sources.configName ?? 'config'}: ${POLICY_KEY}`);
  const result = resolveOptions(SETTINGS, { ...sources, config, defaults: { host: sources.hostname } });
  if (!result.ok) return policy.ok ? result : { ok: false, issues: [...result.issues, ...policy.issues] };
  if (!policy.ok) return { ok: false, issues: policy.issues };
  const settings = { ...result.values, policy: policy.policy } as unknown as DeployerSettings;
  const issues: ManifestIssue[] = [];
  const atLeast = (key: keyof DeployerSettings, flag: string, min: number, why: string) => {
    if ((settings[key] as number) < min)
      issues.push({
        path: `--${flag}`,
        message: `expected at least ${min}${key === 'keep' ? '' : ' ms'}, found ${settings[key]} (${why})`,
      });
  };
  atLeast('keep', 'keep', 2, 'the version a rollback returns to must stay');
  atLeast('intervalMs', 'interval', 1000, 'polling faster than every second only loads the bucket');
  atLeast('healthTimeoutMs', 'health-timeout', 100, 'a zero timeout would wait forever');
  atLeast('healthIntervalMs', 'health-interval', 50, 'checking faster only loads the service');
  for (const address of settings.caddyListen ?? []) {
    if (listenPortRange(address) === undefined)
      issues.push({
        path: '--caddy-listen',
        message: `expected a Caddy listen address with a port (":443", "0.0.0.0:80", "[::]:443", "tcp/:8080"), found ${JSON.stringify(address)}`,
      });
  }
  if (settings.healthSettleMs >= settings.deployTimeoutMs) {
    issues.push({
      path: '--health-settle',
      message: `expected less than --deploy-timeout (${settings.deployTimeoutMs} ms), found ${settings.healthSettleMs} ms: every deploy would be rolled back`,
    });
  }
  if (
    sources.complete !== false &&
    // Only for commands that pull closures (they read both); `plan` reads the keys for manifests alone.
    (sources.read === undefined ||
      (sources.read.includes('trustedPublicKeys') && sources.read.includes('insecureAllowUnsigned'))) &&
    settings.trustedPublicKeys.length === 0 &&
    !settings.insecureAllowUnsigned
  ) {
    issues.push({
      path: '--trusted-public-key',
      message:
        'at least one trusted public key is required, so unsigned closures are refused (or pass --insecure-allow-unsigned explicitly)',
    });
  }
  return issues.length ? { ok: false, issues } : { ok: true, settings };
}

/** The config object without its `policy` key, and that key's value (`undefined` when absent). */
function splitPolicy(config: unknown): { config: unknown; policy: unknown } {
  if (typeof config !== 'object' || config === null || Array.isArray(config) || !(POLICY_KEY in config))
    return { config, policy: undefined };
  const { [POLICY_KEY]: policy, ...rest } = config as Record<string, unknown>;
  return { config: rest, policy };
}
