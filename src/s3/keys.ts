import { DeployError } from '../errors.js';

/** One object-key segment: starts with a letter, digit or `_`; no `..`, no hidden names, no control characters. */
const SEGMENT_RE = /^[A-Za-z0-9_][A-Za-z0-9._+=@-]*$/;

/**
 * Checks an object key before it reaches S3 or becomes a file path under a local store's directory: `/`-separated
 * segments of safe characters, none empty, `.`, `..` or hidden, at most 1024 bytes. Throws `S3_INPUT`, so a key
 * such as `../../etc/passwd` or `status/../../x` never escapes the store.
 */
export function checkObjectKey(key: string): string {
  if (key.length === 0 || key.length > 1024 || !key.split('/').every((segment) => SEGMENT_RE.test(segment))) {
    throw new DeployError(
      'S3_INPUT',
      `object key: expected "/"-separated names of letters, digits, "_", ".", "+", "=", "@", "-" (no "..", no leading "." or "/"), found ${JSON.stringify(key.slice(0, 200))}`,
    );
  }
  return key;
}

/** Checks a key prefix for listing: empty, or a key optionally ending in `/` or a partial segment. */
export function checkKeyPrefix(prefix: string): string {
  if (prefix === '') return prefix;
  const trimmed = prefix.endsWith('/') ? prefix.slice(0, -1) : prefix;
  checkObjectKey(trimmed);
  return prefix;
}
