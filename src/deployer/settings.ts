import { DEFAULT_SECRETS_DIR, type ManifestIssue } from '../manifest/validate.js';
import { type OptionSources, type OptionSpec, resolveOptions } from '../options.js';

/** Everything the deployer needs to know about its host, resolved from flags, environment and config file. */
export interface DeployerSettings {
  /** Where the manifest lives: `s3://bucket/key?region=&endpoint=&profile=`, `file:///path` or a path. */
  manifest: string;
  /** Nix substituter the closures are copied from (`s3://...`, `http://...`, `file://...`). */
  substituter: string | undefined;
  /** Public keys closures must be signed with (`name:base64`). */
  trustedPublicKeys: string[];
  /** Accept closures without a trusted signature. Only for tests and air-gapped experiments. */
  insecureAllowUnsigned: boolean;
  /** This host's name: selects the manifest's services. */
  host: string;
  stateDir: string;
  unitsDir: string;
  profilesDir: string;
  gcrootsDir: string;
  secretsDir: string;
  /** Caddy admin address: `http://127.0.0.1:2019` or `unix//run/caddy/admin.sock`; `off` disables routes. */
  caddyAdmin: string;
  /** Name of the Caddy HTTP server (under `apps.http.servers`) that holds our routes. */
  caddyServer: string;
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
  /** `watch`: time between polls (a little random jitter is added). */
  intervalMs: number;
  /** Commands run after a successful / failed tick, with the outcome in environment variables. */
  onSuccess: string | undefined;
  onFailure: string | undefined;
  /** Prometheus textfile to write after every tick. */
  metricsFile: string | undefined;
  /** `text` for people (default on a TTY), `json` lines for journald. */
  logFormat: 'auto' | 'text' | 'json';
}

/**
 * Every setting once: its flag, environment variable, config-file key (the setting's own name) and default.
 * Precedence is flag, then environment, then config file, then default.
 */
export const SETTINGS: readonly (OptionSpec & { key: keyof DeployerSettings })[] = [
  { key: 'manifest', flag: 'manifest', env: 'DEPLOYER_MANIFEST', kind: 'string', required: true },
  { key: 'substituter', flag: 'substituter', env: 'DEPLOYER_SUBSTITUTER', kind: 'string' },
  {
    key: 'trustedPublicKeys',
    flag: 'trusted-public-key',
    env: 'DEPLOYER_TRUSTED_PUBLIC_KEYS',
    kind: 'list',
    default: [],
  },
  {
    key: 'insecureAllowUnsigned',
    flag: 'insecure-allow-unsigned',
    env: 'DEPLOYER_INSECURE_ALLOW_UNSIGNED',
    kind: 'boolean',
    default: false,
  },
  { key: 'host', flag: 'host', env: 'DEPLOYER_HOST', kind: 'host' },
  {
    key: 'stateDir',
    flag: 'state-dir',
    env: 'DEPLOYER_STATE_DIR',
    kind: 'path',
    default: '/var/lib/biz-deployer',
  },
  {
    key: 'unitsDir',
    flag: 'units-dir',
    env: 'DEPLOYER_UNITS_DIR',
    kind: 'path',
    default: '/run/systemd/system',
  },
  {
    key: 'profilesDir',
    flag: 'profiles-dir',
    env: 'DEPLOYER_PROFILES_DIR',
    kind: 'path',
    default: '/nix/var/nix/profiles/biz',
  },
  {
    key: 'gcrootsDir',
    flag: 'gcroots-dir',
    env: 'DEPLOYER_GCROOTS_DIR',
    kind: 'path',
    default: '/nix/var/nix/gcroots/biz',
  },
  {
    key: 'secretsDir',
    flag: 'secrets-dir',
    env: 'DEPLOYER_SECRETS_DIR',
    kind: 'path',
    default: DEFAULT_SECRETS_DIR,
  },
  {
    key: 'caddyAdmin',
    flag: 'caddy-admin',
    env: 'DEPLOYER_CADDY_ADMIN',
    kind: 'string',
    default: 'http://127.0.0.1:2019',
  },
  { key: 'caddyServer', flag: 'caddy-server', env: 'DEPLOYER_CADDY_SERVER', kind: 'string', default: 'omni' },
  { key: 'keep', flag: 'keep', env: 'DEPLOYER_KEEP', kind: 'count', default: 5 },
  {
    key: 'healthSettleMs',
    flag: 'health-settle',
    env: 'DEPLOYER_HEALTH_SETTLE',
    kind: 'duration',
    default: 5_000,
  },
  {
    key: 'healthTimeoutMs',
    flag: 'health-timeout',
    env: 'DEPLOYER_HEALTH_TIMEOUT',
    kind: 'duration',
    default: 5_000,
  },
  {
    key: 'healthIntervalMs',
    flag: 'health-interval',
    env: 'DEPLOYER_HEALTH_INTERVAL',
    kind: 'duration',
    default: 1_000,
  },
  {
    key: 'deployTimeoutMs',
    flag: 'deploy-timeout',
    env: 'DEPLOYER_DEPLOY_TIMEOUT',
    kind: 'duration',
    default: 30_000,
  },
  { key: 'intervalMs', flag: 'interval', env: 'DEPLOYER_INTERVAL', kind: 'duration', default: 300_000 },
  { key: 'onSuccess', flag: 'on-success', env: 'DEPLOYER_ON_SUCCESS', kind: 'string' },
  { key: 'onFailure', flag: 'on-failure', env: 'DEPLOYER_ON_FAILURE', kind: 'string' },
  { key: 'metricsFile', flag: 'metrics-file', env: 'DEPLOYER_METRICS_FILE', kind: 'path' },
  { key: 'logFormat', flag: 'log-format', env: 'DEPLOYER_LOG_FORMAT', kind: 'format', default: 'auto' },
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
  const result = resolveOptions(SETTINGS, { ...sources, defaults: { host: sources.hostname } });
  if (!result.ok) return result;
  const settings = result.values as unknown as DeployerSettings;
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
  if (settings.healthSettleMs >= settings.deployTimeoutMs) {
    issues.push({
      path: '--health-settle',
      message: `expected less than --deploy-timeout (${settings.deployTimeoutMs} ms), found ${settings.healthSettleMs} ms: every deploy would be rolled back`,
    });
  }
  if (
    sources.complete !== false &&
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
