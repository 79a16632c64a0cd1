import { describeValue } from '../manifest/describe.js';
import { ABSOLUTE_PATH_RE, hasNoControlChars, isHostname } from '../manifest/patterns.js';
import { DEFAULT_SECRETS_DIR, type ManifestIssue } from '../manifest/validate.js';
import { parseDuration } from './duration.js';

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

type Kind = 'string' | 'path' | 'list' | 'count' | 'duration' | 'boolean' | 'host' | 'format';

interface Spec {
  key: keyof DeployerSettings;
  flag: string;
  env: string;
  kind: Kind;
  default?: unknown;
  required?: boolean;
}

/**
 * Every setting once: its flag, environment variable, config-file key (the setting's own name) and default.
 * Precedence is flag, then environment, then config file, then default.
 */
export const SETTINGS: readonly Spec[] = [
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
export interface SettingsSources {
  /** Parsed flags by flag name (`{ 'state-dir': '/x', 'trusted-public-key': ['a', 'b'] }`). */
  flags: Record<string, string | boolean | string[] | undefined>;
  env: Record<string, string | undefined>;
  /** The parsed config file, if any (a JSON object keyed by setting name, e.g. `{ "stateDir": "/x" }`). */
  config: unknown;
  /** Where the config came from, for messages. */
  configName?: string;
  /** Default for `host`: this machine's name. */
  hostname: string;
  /**
   * Check that a tick could run (manifest location and a trusted key present). Default true; commands that only
   * read local state (`deployer status`) pass false.
   */
  complete?: boolean;
}

/** The outcome of {@link resolveSettings}. */
export type SettingsResult =
  | { ok: true; settings: DeployerSettings }
  | { ok: false; issues: ManifestIssue[] };

/**
 * Resolves the deployer's settings: flag, then environment variable, then config file, then default. Every
 * value is checked; all problems are returned at once, each naming where the value came from
 * (`--keep`, `DEPLOYER_KEEP`, `deployer.json: keep`).
 */
export function resolveSettings(sources: SettingsSources): SettingsResult {
  const issues: ManifestIssue[] = [];
  const configName = sources.configName ?? 'config';
  const config = sources.config ?? {};
  if (typeof config !== 'object' || config === null || Array.isArray(config)) {
    return {
      ok: false,
      issues: [
        { path: configName, message: `expected a JSON object of settings, found ${describeValue(config)}` },
      ],
    };
  }
  const known = new Set(SETTINGS.map((s) => s.key as string));
  for (const key of Object.keys(config)) {
    if (!known.has(key))
      issues.push({
        path: `${configName}: ${key}`,
        message: `unknown setting; known: ${[...known].join(', ')}`,
      });
  }
  const settings: Record<string, unknown> = {};
  for (const spec of SETTINGS) {
    const fromFlag = sources.flags[spec.flag];
    const fromEnv = sources.env[spec.env];
    const fromConfig = (config as Record<string, unknown>)[spec.key];
    const [where, raw] =
      fromFlag !== undefined && !(Array.isArray(fromFlag) && fromFlag.length === 0)
        ? [`--${spec.flag}`, fromFlag]
        : fromEnv !== undefined && fromEnv !== ''
          ? [spec.env, fromEnv]
          : fromConfig !== undefined
            ? [`${configName}: ${spec.key}`, fromConfig]
            : [undefined, undefined];
    if (where === undefined) {
      if (spec.key === 'host') settings.host = sources.hostname;
      else if (spec.required && sources.complete !== false)
        issues.push({
          path: `--${spec.flag}`,
          message: `required (or ${spec.env}, or "${spec.key}" in the config file)`,
        });
      else settings[spec.key] = spec.default;
      continue;
    }
    const value = convert(spec.kind, raw);
    if (value.ok) settings[spec.key] = value.value;
    else
      issues.push({
        path: where,
        message: `expected ${value.expected}, found ${describeValue('found' in value ? value.found : raw)}`,
      });
  }
  if (
    sources.complete !== false &&
    issues.length === 0 &&
    settings.trustedPublicKeys instanceof Array &&
    settings.trustedPublicKeys.length === 0 &&
    !settings.insecureAllowUnsigned
  ) {
    issues.push({
      path: '--trusted-public-key',
      message:
        'at least one trusted public key is required, so unsigned closures are refused (or pass --insecure-allow-unsigned explicitly)',
    });
  }
  return issues.length
    ? { ok: false, issues }
    : { ok: true, settings: settings as unknown as DeployerSettings };
}

type Converted = { ok: true; value: unknown } | { ok: false; expected: string; found?: unknown };

const PUBLIC_KEY_RE = /^[A-Za-z0-9._+-]+:[A-Za-z0-9+/]{43}=$/;

function convert(kind: Kind, raw: unknown): Converted {
  const text = typeof raw === 'string' ? raw : undefined;
  switch (kind) {
    case 'string':
      return text !== undefined && text !== '' && hasNoControlChars(text)
        ? { ok: true, value: text }
        : { ok: false, expected: 'a non-empty string without control characters' };
    case 'path':
      return text !== undefined && ABSOLUTE_PATH_RE.test(text)
        ? { ok: true, value: text }
        : { ok: false, expected: 'an absolute path without ".."' };
    case 'host':
      return text !== undefined && isHostname(text)
        ? { ok: true, value: text }
        : { ok: false, expected: 'an RFC 1123 host name' };
    case 'format':
      return text === 'auto' || text === 'text' || text === 'json'
        ? { ok: true, value: text }
        : { ok: false, expected: 'auto, text or json' };
    case 'boolean':
      if (typeof raw === 'boolean') return { ok: true, value: raw };
      if (text === 'true' || text === '1' || text === 'yes') return { ok: true, value: true };
      if (text === 'false' || text === '0' || text === 'no') return { ok: true, value: false };
      return { ok: false, expected: 'true or false' };
    case 'count': {
      const n =
        typeof raw === 'number' ? raw : text !== undefined && /^\d+$/.test(text) ? Number(text) : Number.NaN;
      return Number.isInteger(n) && n >= 1 && n <= 1000
        ? { ok: true, value: n }
        : { ok: false, expected: 'an integer from 1 to 1000' };
    }
    case 'duration': {
      const ms =
        typeof raw === 'number'
          ? raw >= 0
            ? raw * 1000
            : undefined
          : text !== undefined
            ? parseDuration(text)
            : undefined;
      return ms !== undefined
        ? { ok: true, value: ms }
        : { ok: false, expected: 'a duration such as 500ms, 5s, 1m30s (a bare number is seconds)' };
    }
    case 'list': {
      const items = Array.isArray(raw)
        ? raw
        : text !== undefined
          ? text.split(/[\s,]+/).filter(Boolean)
          : undefined;
      const bad =
        items === undefined ? raw : items.find((k) => typeof k !== 'string' || !PUBLIC_KEY_RE.test(k));
      if (items === undefined || bad !== undefined) {
        return {
          ok: false,
          expected: 'Nix public keys "name:base64" (as nix-store --generate-binary-cache-key writes them)',
          found: bad,
        };
      }
      return { ok: true, value: [...new Set(items)] };
    }
  }
}
