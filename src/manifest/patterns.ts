/**
 * The character-level rules that keep manifest values safe in the places they end up: unit file names and
 * lines, file paths, Caddy matchers and process arguments. Pure predicates and regexes, shared by the schema
 * and the cross-field checks.
 */

/** Service names: lowercase letters, digits and `-`, starting with a letter, at most 63 characters. */
export const SERVICE_NAME_RE = /^[a-z][a-z0-9-]{0,62}$/;

/** Environment variable names as POSIX shells and systemd accept them. */
export const ENV_KEY_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** POSIX user and group names (portable set, at most 32 characters, not starting with `-` or a digit). */
export const POSIX_NAME_RE = /^[A-Za-z_][A-Za-z0-9_-]{0,31}$/;

/** One RFC 1123 host name label. */
const LABEL = '[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?';

/** RFC 1123 host names: dot-separated labels of letters, digits and inner `-` (at most 253 characters: checked apart). */
export const HOSTNAME_RE = new RegExp(`^${LABEL}(?:\\.${LABEL})*$`);

/** A domain for a route: a host name, optionally with a leading `*.` wildcard label. No scheme, no port. */
export const DOMAIN_RE = new RegExp(`^(?:\\*\\.)?${LABEL}(?:\\.${LABEL})*$`);

/** Longest host name DNS allows. */
export const MAX_HOSTNAME_LENGTH = 253;

/** True when `name` is an RFC 1123 host name of at most 253 characters. */
export function isHostname(name: string): boolean {
  return name.length <= MAX_HOSTNAME_LENGTH && HOSTNAME_RE.test(name);
}

/** A path segment that is not `.` or `..` (written as a lookahead so each pattern stays one pass). */
const NOT_DOTS = String.raw`(?!\.\.?(?:/|$))`;

/**
 * A route path prefix: `/` or `/`-separated segments of URL-safe characters, no trailing `/`, no wildcards,
 * no `.`/`..` segments (proxies and browsers would normalise them away), no query.
 */
export const ROUTE_PATH_RE = new RegExp(`^/$|^(?:/${NOT_DOTS}[A-Za-z0-9._~!$&'()+,;=:@-]+)+$`);

/** A health-check request target: an absolute path with an optional query; visible ASCII only, no fragment. */
export const HEALTH_PATH_RE = /^\/[\x21-\x22\x24-\x7e]*$/;

/** systemd unit names: systemd's character set, optional template `@instance`, and a unit type suffix. */
export const UNIT_NAME_RE =
  /^[A-Za-z0-9:_.\\-]+(?:@[A-Za-z0-9:_.\\-]*)?\.(?:service|socket|target|device|mount|automount|swap|path|timer|slice|scope)$/;

/** systemd's `Restart=` values. */
export const RESTART_VALUES = [
  'no',
  'on-success',
  'on-failure',
  'on-abnormal',
  'on-watchdog',
  'on-abort',
  'always',
] as const;

/** A relative path of safe segments: letters, digits, `.`, `_`, `+`, `-`; no empty, `.` or `..` segments. */
export const RELATIVE_PATH_RE = new RegExp(`^${NOT_DOTS}[A-Za-z0-9._+-]+(?:/${NOT_DOTS}[A-Za-z0-9._+-]+)*$`);

/** An absolute path of safe segments (see {@link RELATIVE_PATH_RE}), without a trailing `/`. */
export const ABSOLUTE_PATH_RE = new RegExp(`^(?:/${NOT_DOTS}[A-Za-z0-9._+-]+)+$`);

/**
 * A systemd credential name (`LoadCredential=NAME:PATH`, then `$CREDENTIALS_DIRECTORY/NAME`): letters, digits,
 * `_`, `-` and `.`, not starting with `-` or `.` (never `.`, `..` or an option-like name), at most 64
 * characters. systemd allows more (printable ASCII but `/` and `:`, up to 255); this subset needs no quoting in
 * a unit file or a shell.
 */
export const CREDENTIAL_NAME_RE = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,63}$/;

/**
 * An archive id: the archive time in compact ISO 8601 UTC with milliseconds, `20250115T123456.789Z`. Compact
 * because colons are awkward in file names and command lines; milliseconds so two pushes in one second get
 * distinct names; fixed width so names sort in time order. (Archives are the S3 module's; a manifest names one
 * in `rollbackOf`.)
 */
export const ARCHIVE_ID_RE = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})\.(\d{3})Z$/;

/** An ISO-8601 UTC timestamp such as `2025-01-15T12:34:56Z` (fractional seconds allowed). */
export const UTC_TIMESTAMP_RE = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.\d{1,9})?Z$/;

/**
 * C0 and C1 control characters and DEL. A newline in a value that becomes a unit file line is an injection
 * attempt; the others are never meaningful in configuration.
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is this pattern's purpose
export const CONTROL_CHARS_RE = /[\u0000-\u001f\u007f-\u009f]/;

/** True when `value` contains no control characters. */
export function hasNoControlChars(value: string): boolean {
  return !CONTROL_CHARS_RE.test(value);
}

/** True when `value` is a real calendar instant in the form of {@link UTC_TIMESTAMP_RE}. */
export function isUtcTimestamp(value: string): boolean {
  const m = UTC_TIMESTAMP_RE.exec(value);
  if (!m) return false;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const date = new Date(Date.UTC(year, month - 1, day, hour, minute, second));
  return (
    date.getUTCFullYear() === year &&
    date.getUTCMonth() === month - 1 &&
    date.getUTCDate() === day &&
    hour < 24 &&
    minute < 60 &&
    second < 60
  );
}

/** Env keys that look like secrets: these belong in `envFile`, not in a manifest stored in plain text. */
export const SECRET_KEY_RE = /PASSWORD|PASSWD|SECRET|TOKEN|_KEY$|^KEY$|CREDENTIAL|PRIVATE/i;
