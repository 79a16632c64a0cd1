/** Longest excerpt of a found value that goes into a message. */
const MAX_EXCERPT = 60;

/**
 * A short, single-line description of a value found in input, for error messages. Strings are JSON-quoted so
 * hostile content (newlines, escape sequences) shows as text instead of acting on a terminal or log.
 */
export function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (typeof value === 'string') {
    const quoted = JSON.stringify(value);
    return quoted.length > MAX_EXCERPT
      ? `${quoted.slice(0, MAX_EXCERPT - 4)}..." (${value.length} characters)`
      : quoted;
  }
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (Array.isArray(value)) return `an array of ${value.length}`;
  if (typeof value === 'object') return 'an object';
  return typeof value;
}

/** A path segment as `.key`, `[index]` or `["odd key"]`, so paths stay readable and unambiguous. */
export function formatPathSegment(key: string | number): string {
  if (typeof key === 'number') return `[${key}]`;
  return /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(key) ? `.${key}` : `[${JSON.stringify(key)}]`;
}

/** A path such as `services[2].http.internalPort` from its keys. The empty path is `manifest`. */
export function formatPath(keys: readonly (string | number)[]): string {
  if (keys.length === 0) return 'manifest';
  const text = keys.map(formatPathSegment).join('');
  return text.startsWith('.') ? text.slice(1) : text;
}
