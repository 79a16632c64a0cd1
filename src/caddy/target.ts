import { DeployError } from '../errors.js';
import { describeValue } from '../manifest/describe.js';

/** A path into Caddy's config, one key or array index per element (`['apps', 'http', 'servers', 'srv0']`). */
export type CaddyConfigPath = readonly (string | number)[];

/**
 * What an admin API request addresses: a config path (`/config/...`) or an object by its `@id`, optionally
 * followed by a path inside it (`/id/<id>/...`).
 */
export type CaddyTarget =
  | { readonly path: CaddyConfigPath }
  | { readonly id: string; readonly path?: CaddyConfigPath };

// A key becomes one URL path segment, and Caddy decodes %2F before splitting on "/", so escaping cannot keep
// a "/" inside one key: such keys are refused instead. ".", ".." and "..." are Caddy path syntax.
const UNSAFE_KEY = /[/\\?#%\s\p{Cc}]/u;
const RESERVED_KEYS = new Set(['.', '..', '...']);

/** Why `key` cannot be one segment of an admin API path, or `undefined` when it can. */
function keyProblem(key: string | number): string | undefined {
  if (typeof key === 'number') {
    return Number.isSafeInteger(key) && key >= 0
      ? undefined
      : `expected a non-negative integer index, found ${key}`;
  }
  if (typeof key !== 'string' || key === '') return `expected a non-empty key, found ${describeValue(key)}`;
  if (RESERVED_KEYS.has(key)) return `${JSON.stringify(key)} is path syntax, not a key`;
  if (UNSAFE_KEY.test(key))
    return `expected a key without "/", "\\", "?", "#", "%", spaces or control characters, found ${describeValue(key)}`;
  return undefined;
}

/**
 * The URL path of `target` on the admin API (`/config/apps/http`, `/id/omni-deploy:web/upstreams`). Throws a
 * `CADDY_INVALID_TARGET` {@link DeployError} for a key that would change meaning on the way (a "/" inside an
 * id, "..", control characters): nothing is sent for such a target.
 */
export function formatTarget(target: CaddyTarget): string {
  const path = target.path ?? [];
  const problems: string[] = [];
  if ('id' in target) {
    const problem = keyProblem(target.id);
    if (problem) problems.push(`id: ${problem}`);
  }
  path.forEach((key, i) => {
    const problem = keyProblem(key);
    if (problem) problems.push(`path[${i}]: ${problem}`);
  });
  if (problems.length > 0) {
    throw new DeployError('CADDY_INVALID_TARGET', `refusing an admin API target: ${problems.join('; ')}`, {
      details: { target, problems },
    });
  }
  const tail = path.map((key) => encodeKey(String(key))).join('/');
  if ('id' in target) return `/id/${encodeKey(target.id)}${tail ? `/${tail}` : ''}`;
  return `/config/${tail}`;
}

/** Percent-encodes what RFC 3986 does not allow in a path segment, keeping ids such as `omni-deploy:web` readable. */
function encodeKey(key: string): string {
  return key.replace(/[^A-Za-z0-9\-._~:@!$&'()*+,;=]/gu, (c) => encodeURIComponent(c));
}

/**
 * Throws `CADDY_INVALID_VALUE` when `value` holds an `@id` that is not a string or number. Caddy 2.6.2 stores such
 * a value before indexing fails and never reverts it, so every later change fails: it must never be sent.
 */
export function assertSendable(value: unknown, where = 'value'): void {
  const bad = findBadId(value, where);
  if (bad !== undefined) {
    throw new DeployError(
      'CADDY_INVALID_VALUE',
      `refusing to send ${where}: "@id" at ${bad.at} must be a string or number, found ${describeValue(bad.found)}`,
      { details: bad },
    );
  }
}

function findBadId(value: unknown, at: string): { at: string; found: unknown } | undefined {
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const bad = findBadId(value[i], `${at}[${i}]`);
      if (bad) return bad;
    }
  } else if (value !== null && typeof value === 'object') {
    for (const [key, child] of Object.entries(value)) {
      if (key === '@id' && typeof child !== 'string' && typeof child !== 'number')
        return { at: `${at}["@id"]`, found: child };
      const bad = findBadId(child, `${at}.${key}`);
      if (bad) return bad;
    }
  }
  return undefined;
}
