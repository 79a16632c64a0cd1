import { describeValue } from './manifest/describe.js';
import { ABSOLUTE_PATH_RE, hasNoControlChars, isHostname } from './manifest/patterns.js';
import type { ManifestIssue } from './manifest/validate.js';
import { parseDuration } from './runtime/duration.js';

/** How a setting's text is checked and converted. */
export type OptionKind = 'string' | 'path' | 'list' | 'count' | 'duration' | 'boolean' | 'host' | 'format';

/** One setting: its flag, environment variable, config-file key (`key`), kind and default. */
export interface OptionSpec {
  key: string;
  flag: string;
  env: string;
  kind: OptionKind;
  default?: unknown;
  required?: boolean;
}

/** Raw inputs of {@link resolveOptions}. */
export interface OptionSources {
  /** Parsed flags by flag name (`{ 'state-dir': '/x', 'trusted-public-key': ['a', 'b'] }`). */
  flags: Record<string, string | boolean | string[] | undefined>;
  env: Record<string, string | undefined>;
  /** The parsed config file, if any (a JSON object keyed by setting key, e.g. `{ "stateDir": "/x" }`). */
  config: unknown;
  /** Where the config came from, for messages. */
  configName?: string;
  /** Defaults computed by the caller (e.g. this machine's host name), over the specs' own. */
  defaults?: Record<string, unknown>;
  /** Report missing required settings (default true; read-only commands pass false). */
  complete?: boolean;
}

/**
 * Resolves settings from flag, then environment variable, then config file, then default. Every value is
 * checked; all problems are returned at once, each naming where the value came from (`--keep`,
 * `DEPLOYER_KEEP`, `deployer.json: keep`). Unknown config-file keys are errors (a typo must not be ignored).
 */
export function resolveOptions(
  specs: readonly OptionSpec[],
  sources: OptionSources,
): { ok: true; values: Record<string, unknown> } | { ok: false; issues: ManifestIssue[] } {
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
  const known = new Set(specs.map((s) => s.key));
  for (const key of Object.keys(config)) {
    if (!known.has(key))
      issues.push({
        path: `${configName}: ${key}`,
        message: `unknown setting; known: ${[...known].join(', ')}`,
      });
  }
  const values: Record<string, unknown> = {};
  for (const spec of specs) {
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
      if (sources.defaults && spec.key in sources.defaults) values[spec.key] = sources.defaults[spec.key];
      else if (spec.required && sources.complete !== false)
        issues.push({
          path: `--${spec.flag}`,
          message: `required (or ${spec.env}, or "${spec.key}" in the config file)`,
        });
      else values[spec.key] = spec.default;
      continue;
    }
    const value = convert(spec.kind, raw);
    if (value.ok) values[spec.key] = value.value;
    else
      issues.push({
        path: where,
        message: `expected ${value.expected}, found ${describeValue('found' in value ? value.found : raw)}`,
      });
  }
  return issues.length ? { ok: false, issues } : { ok: true, values };
}

type Converted = { ok: true; value: unknown } | { ok: false; expected: string; found?: unknown };

const PUBLIC_KEY_RE = /^[A-Za-z0-9._+-]+:[A-Za-z0-9+/]{43}=$/;

function convert(kind: OptionKind, raw: unknown): Converted {
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
