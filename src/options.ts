import { posix } from 'node:path';
import { describeValue } from './manifest/describe.js';
import { ABSOLUTE_PATH_RE, hasNoControlChars, isHostname } from './manifest/patterns.js';
import type { ManifestIssue } from './manifest/validate.js';
import { parseDuration } from './runtime/duration.js';
import { parseLocation } from './s3/location.js';

/**
 * How a setting's text is checked and converted. `path`: a directory or file (relative ones resolved, see
 * {@link OptionSources.cwd}); `location`: an `s3://` or `file:///` URL or a path; `key-file`: a file holding a
 * Nix secret key, `-` for standard input, or (from the environment only) the key itself; `list`: Nix public
 * keys; `strings`: other words (a repeated flag, a JSON array, or text split at commas and spaces).
 */
export type OptionKind =
  | 'string'
  | 'path'
  | 'location'
  | 'key-file'
  | 'list'
  | 'strings'
  | 'count'
  | 'duration'
  | 'boolean'
  | 'host'
  | 'format';

/** One setting: its flag, environment variable, config-file key (`key`), kind, default and description. */
export interface OptionSpec {
  key: string;
  flag: string;
  env: string;
  kind: OptionKind;
  default?: unknown;
  required?: boolean;
  /** One sentence for `--help` and docs/cli.md. */
  description: string;
  /** The value's placeholder in usage lines (`DIR`, `FILE`, `N`); booleans have none. */
  value?: string;
  /** The default as people should read it, when it is computed or needs words ("this machine's host name"). */
  defaultText?: string;
}

/** Where a signing key comes from, as a `key-file` setting resolves it. The key text is never printed. */
export type KeySource = { type: 'file'; path: string } | { type: 'stdin' } | { type: 'inline'; text: string };

/** Raw inputs of {@link resolveOptions}. */
export interface OptionSources {
  /** Parsed flags by flag name (`{ 'state-dir': '/x', 'trusted-public-key': ['a', 'b'] }`). */
  flags: Record<string, string | boolean | string[] | undefined>;
  env: Record<string, string | undefined>;
  /** The parsed config file, if any (a JSON object keyed by setting key, e.g. `{ "stateDir": "/x" }`). */
  config: unknown;
  /** Where the config came from, for messages. */
  configName?: string;
  /**
   * Absolute directory that relative paths from flags, environment and defaults are resolved against (the
   * working directory). Without it, relative paths are refused.
   */
  cwd?: string;
  /** Absolute directory that relative paths in the config file are resolved against (the config file's). */
  configDir?: string;
  /** Defaults computed by the caller (e.g. this machine's host name), over the specs' own. */
  defaults?: Record<string, unknown>;
  /** Report missing required settings (default true; read-only commands pass false). */
  complete?: boolean;
  /**
   * Keys of the settings to read (a command reads only its own). The others take their defaults without
   * looking at environment or config file. Default: all. Config-file keys are checked against all specs.
   */
  read?: readonly string[];
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
  const read = sources.read === undefined ? undefined : new Set(sources.read);
  const cwd = { base: sources.cwd, baseName: 'the working directory' };
  const values: Record<string, unknown> = {};
  for (const spec of specs) {
    const reads = read === undefined || read.has(spec.key);
    const fromFlag = reads ? sources.flags[spec.flag] : undefined;
    const fromEnv = reads ? sources.env[spec.env] : undefined;
    const fromConfig = reads ? (config as Record<string, unknown>)[spec.key] : undefined;
    const [where, raw, context] =
      fromFlag !== undefined && !(Array.isArray(fromFlag) && fromFlag.length === 0)
        ? [`--${spec.flag}`, fromFlag, { from: 'flag' as const, ...cwd }]
        : fromEnv !== undefined && fromEnv !== ''
          ? [spec.env, fromEnv, { from: 'env' as const, ...cwd }]
          : fromConfig !== undefined
            ? [
                `${configName}: ${spec.key}`,
                fromConfig,
                { from: 'config' as const, base: sources.configDir, baseName: "the config file's directory" },
              ]
            : [undefined, undefined, undefined];
    if (where === undefined) {
      if (sources.defaults && spec.key in sources.defaults) values[spec.key] = sources.defaults[spec.key];
      else if (reads && spec.required && sources.complete !== false)
        issues.push({
          path: `--${spec.flag}`,
          message: `required (or ${spec.env}, or "${spec.key}" in the config file)`,
        });
      else values[spec.key] = resolveDefault(spec, sources.cwd);
      continue;
    }
    const value = convertOption(spec.kind, raw, { ...context, where, env: spec.env });
    if (value.ok) values[spec.key] = value.value;
    else issues.push({ path: where, message: value.message });
  }
  return issues.length ? { ok: false, issues } : { ok: true, values };
}

/** A relative default path (push's `deploy` spec directory) means the working directory's. */
function resolveDefault(spec: OptionSpec, cwd: string | undefined): unknown {
  const value = spec.default;
  if (spec.kind !== 'path' || typeof value !== 'string' || value.startsWith('/') || cwd === undefined)
    return value;
  return posix.resolve(cwd, value);
}

/** Where a value being converted came from: relative paths are resolved against `base`. */
export interface ConvertContext {
  from: 'flag' | 'env' | 'config';
  /** What names the value in messages (`--key-file`, `NIX_CACHE_KEY`, `push.json: keyFile`). */
  where: string;
  /** Absolute directory relative paths are resolved against; without it they are refused. */
  base: string | undefined;
  /** The base as people say it (`the working directory`). */
  baseName: string;
  /** The setting's environment variable, named where a value belongs there instead. */
  env?: string;
}

/** The outcome of {@link convertOption}: the value, or a message saying what was expected and found. */
export type Converted = { ok: true; value: unknown } | { ok: false; message: string };

/** A Nix signing key as `nix-store --generate-binary-cache-key` writes it (`name:base64`), secret or public. */
const NIX_KEY_RE = /^[A-Za-z0-9._+-]+:[A-Za-z0-9+/]{40,}={0,2}$/;
const PUBLIC_KEY_RE = /^[A-Za-z0-9._+-]+:[A-Za-z0-9+/]{43}=$/;

/** True when `text` looks like a Nix key itself rather than the name of a file holding one. */
export function looksLikeNixKey(text: string): boolean {
  return NIX_KEY_RE.test(text.trim());
}

const expected = (what: string, raw: unknown): Converted => ({
  ok: false,
  message: `expected ${what}, found ${describeValue(raw)}`,
});

/**
 * Checks and converts one value of a kind (see {@link OptionKind}). Used for settings and for flags a single
 * command takes. A relative path is resolved against `context.base`; the result must be a path of plain
 * segments. A `key-file` value never appears in a message: it may be the key.
 */
export function convertOption(kind: OptionKind, raw: unknown, context?: ConvertContext): Converted {
  const text = typeof raw === 'string' ? raw : undefined;
  switch (kind) {
    case 'string':
      return text !== undefined && text !== '' && hasNoControlChars(text)
        ? { ok: true, value: text }
        : expected('a non-empty string without control characters', raw);
    case 'path':
      return convertPath(raw, context);
    case 'location':
      return convertLocation(raw, context);
    case 'key-file':
      return convertKeyFile(raw, context);
    case 'host':
      return text !== undefined && isHostname(text)
        ? { ok: true, value: text }
        : expected('an RFC 1123 host name', raw);
    case 'format':
      return text === 'auto' || text === 'text' || text === 'json'
        ? { ok: true, value: text }
        : expected('auto, text or json', raw);
    case 'boolean':
      if (typeof raw === 'boolean') return { ok: true, value: raw };
      if (text === 'true' || text === '1' || text === 'yes') return { ok: true, value: true };
      if (text === 'false' || text === '0' || text === 'no') return { ok: true, value: false };
      return expected('true or false', raw);
    case 'count': {
      const n =
        typeof raw === 'number' ? raw : text !== undefined && /^\d+$/.test(text) ? Number(text) : Number.NaN;
      return Number.isInteger(n) && n >= 1 && n <= 1000
        ? { ok: true, value: n }
        : expected('an integer from 1 to 1000', raw);
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
        : expected('a duration such as 500ms, 5s, 1m30s (a bare number is seconds)', raw);
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
        return expected(
          'Nix public keys "name:base64" (as nix-store --generate-binary-cache-key writes them)',
          bad,
        );
      }
      return { ok: true, value: [...new Set(items)] };
    }
    case 'strings': {
      const items = Array.isArray(raw)
        ? raw
        : text !== undefined
          ? text.split(/[\s,]+/).filter(Boolean)
          : undefined;
      const bad =
        items === undefined || items.length === 0
          ? raw
          : items.find((k) => typeof k !== 'string' || k === '' || /[\s,]/.test(k) || !hasNoControlChars(k));
      if (items === undefined || items.length === 0 || bad !== undefined)
        return expected('one or more words without spaces, commas or control characters', bad);
      return { ok: true, value: [...new Set(items as string[])] };
    }
  }
}

/** A path: absolute as given, or relative and resolved against the context's base; plain segments either way. */
function convertPath(raw: unknown, context: ConvertContext | undefined): Converted {
  const text = typeof raw === 'string' ? raw : undefined;
  if (text !== undefined && ABSOLUTE_PATH_RE.test(text)) return { ok: true, value: text };
  const base = context?.base;
  if (
    text === undefined ||
    text === '' ||
    text.startsWith('/') ||
    base === undefined ||
    !base.startsWith('/')
  )
    return expected('an absolute path without ".."', raw);
  const resolved = posix.resolve(base, text);
  return hasNoControlChars(text) && ABSOLUTE_PATH_RE.test(resolved)
    ? { ok: true, value: resolved }
    : {
        ok: false,
        message: `expected a path of letters, digits and . _ + - (relative to ${context?.baseName}), found ${describeValue(raw)}${hasNoControlChars(text) ? ` (${resolved})` : ''}`,
      };
}

/** `-`, an `s3://` or `file:///` URL (checked now, so a typo is a usage error), or a path resolved like {@link convertPath}. */
function convertLocation(raw: unknown, context: ConvertContext | undefined): Converted {
  const text = typeof raw === 'string' ? raw : undefined;
  if (text === undefined || text === '' || !hasNoControlChars(text))
    return expected('an s3:// or file:/// URL or a path', raw);
  if (text === '-') return { ok: true, value: text };
  const base = context?.base;
  const relative = !/^[A-Za-z][A-Za-z0-9+.-]*:/.test(text) && !text.startsWith('/');
  // Without a base (library callers), a relative path is passed on as it is, to be resolved where it is opened.
  if (relative && base === undefined) return { ok: true, value: text };
  if (relative && !base?.startsWith('/'))
    return expected('an s3:// or file:/// URL or an absolute path', raw);
  const value = relative ? posix.resolve(base as string, text) : text;
  try {
    parseLocation(value);
  } catch (error) {
    return { ok: false, message: (error as Error).message };
  }
  return { ok: true, value };
}

/**
 * A key file: a path or `-` (standard input). A value shaped like a key is refused from a flag (every user sees
 * it in `ps`) and from the config file (often committed); from the environment it is taken as the key itself.
 */
function convertKeyFile(raw: unknown, context: ConvertContext | undefined): Converted {
  const text = typeof raw === 'string' ? raw : undefined;
  if (text !== undefined && looksLikeNixKey(text)) {
    if (context?.from === 'env') return { ok: true, value: { type: 'inline', text: text.trim() } };
    const why =
      context?.from === 'config'
        ? 'a config file is often committed and read by others'
        : 'a key given on the command line is visible to every user in ps';
    return {
      ok: false,
      message: `takes a file, found what looks like the key itself (not shown): ${why}; put the key in a file${context?.env ? `, or in ${context.env}` : ''}`,
    };
  }
  if (text === '-') return { ok: true, value: { type: 'stdin' } };
  const path = convertPath(raw, context);
  return path.ok ? { ok: true, value: { type: 'file', path: path.value } } : path;
}
