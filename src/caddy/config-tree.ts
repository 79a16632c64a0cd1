/**
 * Caddy's admin API semantics on an in-memory config, pure: how GET/POST/PUT/PATCH/DELETE on `/config/...` and
 * `/id/...` traverse and change the JSON (modelled on Caddy 2.6's `unsyncedConfigAccess`). The fake admin API is
 * built on it, and the applier uses it to predict the config after each request it sends, so "what Caddy should
 * now hold" and "what the fake does" cannot drift apart.
 */

import { isObject } from '../runtime/json.js';
import type { CaddyTarget } from './target.js';

/** The admin API methods that read or change config. */
export type ConfigMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** A request the admin API refused, with the HTTP status Caddy answers it with. */
export class ConfigAccessError extends Error {
  override readonly name = 'ConfigAccessError';
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

type Json = unknown;
type JsonObject = Record<string, Json>;

/**
 * Every `@id` in `config` mapped to its path (`['config', 'apps', ...]`, indices as strings). Like Caddy, a
 * repeated id maps to the last occurrence in document order.
 */
export function indexIds(config: Json): Map<string, string[]> {
  const index = new Map<string, string[]>();
  const path = ['config'];
  const walk = (value: Json) => {
    if (Array.isArray(value)) {
      for (let i = 0; i < value.length; i++) {
        path.push(String(i));
        walk(value[i]);
        path.pop();
      }
    } else if (isObject(value)) {
      for (const key in value) {
        const child = value[key];
        if (key === '@id' && (typeof child === 'string' || typeof child === 'number')) {
          index.set(String(child), [...path]);
        } else if (child !== null && typeof child === 'object') {
          path.push(key);
          walk(child);
          path.pop();
        }
      }
    }
  };
  walk(config);
  return index;
}

/**
 * The path parts a target resolves to in `config` (`/config/` is `['config']`). An unknown id is a 404, as on
 * Caddy.
 */
export function resolveTarget(config: Json, target: CaddyTarget): string[] {
  const rest = (target.path ?? []).map(String);
  if ('id' in target) {
    const base = indexIds(config).get(target.id);
    if (!base) throw new ConfigAccessError(404, `unknown object ID '${target.id}'`);
    return [...base, ...rest];
  }
  return ['config', ...rest];
}

/** The URL path Caddy names in an ETag for `parts` (`/config/` for the root, else `/config/a/b`). */
export function etagPath(parts: readonly string[]): string {
  return parts.length === 1 ? '/config/' : `/${parts.join('/')}`;
}

function parseIndex(text: string, where: string, length: number): number {
  // Go's strconv.Atoi: optional sign, decimal digits.
  if (!/^[+-]?\d+$/.test(text)) throw new Error(`[${where}] invalid array index '${text}'`);
  const index = Number(text);
  if (index < 0 || index >= length) throw new Error(`[${where}] array index out of bounds: ${text}`);
  return index;
}

/**
 * Performs one request on `holder.config` in place and returns what a GET returns (`null` for a missing key).
 * Mutations should be given a copy: like Caddy's traversal, a failing request may leave part of its work done.
 * Throws {@link ConfigAccessError} with Caddy's status: 400 for a failed read, 500 for a failed change.
 */
export function accessConfig(
  holder: { config: Json },
  method: ConfigMethod,
  parts: readonly string[],
  value?: Json,
): Json {
  try {
    return traverse(holder as unknown as JsonObject, method, parts, value);
  } catch (error) {
    if (error instanceof ConfigAccessError) throw error;
    throw new ConfigAccessError(method === 'GET' ? 400 : 500, (error as Error).message);
  }
}

function traverse(root: JsonObject, method: ConfigMethod, parts: readonly string[], value: Json): Json {
  const where = `/${parts.join('/')}`;
  let ptr: Json = root;
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i] as string;
    if (isObject(ptr)) {
      const child = ptr[part];
      // The array is the destination (its index is the last part): Caddy handles it specially.
      if (Array.isArray(child) && i === parts.length - 2) {
        const index = method === 'POST' ? 0 : parseIndex(parts[i + 1] as string, where, child.length);
        switch (method) {
          case 'GET':
            return child[index];
          case 'POST':
            // POST appends whatever the index says: the trap behind "POST /id/<route> appends a route".
            child.push(value);
            return undefined;
          case 'PUT':
            child.splice(index, 0, value);
            return undefined;
          case 'PATCH':
            child[index] = value;
            return undefined;
          case 'DELETE':
            child.splice(index, 1);
            return undefined;
        }
      }
      if (i === parts.length - 1) {
        const exists = Object.hasOwn(ptr, part);
        switch (method) {
          case 'GET':
            return exists ? child : null;
          case 'POST':
            if (Array.isArray(child)) child.push(value);
            else ptr[part] = value;
            return undefined;
          case 'PUT':
            if (exists) throw new Error(`[${where}] key already exists: ${part}`);
            ptr[part] = value;
            return undefined;
          case 'PATCH':
            if (!exists) throw new Error(`[${where}] key does not exist: ${part}`);
            ptr[part] = value;
            return undefined;
          case 'DELETE':
            delete ptr[part];
            return undefined;
        }
      }
      // PUT creates the missing objects on its way, as Caddy does.
      if ((child === undefined || child === null) && method === 'PUT') ptr[part] = {};
      ptr = ptr[part];
    } else if (Array.isArray(ptr)) {
      ptr = ptr[parseIndex(part, `/${parts.slice(0, i + 1).join('/')}`, ptr.length)];
    } else {
      throw new Error(`invalid traversal path at: ${parts.slice(0, i + 1).join('/')}`);
    }
  }
  return ptr;
}

/** JSON with object keys sorted at every level (how Caddy encodes config), for comparing and hashing. */
export function canonicalJson(value: Json): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (isObject(value)) {
    const keys = Object.keys(value)
      .filter((key) => value[key] !== undefined)
      .sort();
    return `{${keys.map((key) => `${JSON.stringify(key)}:${canonicalJson(value[key])}`).join(',')}}`;
  }
  return JSON.stringify(value ?? null);
}

/**
 * True when two JSON values are equal regardless of key order (keys holding `undefined` count as absent, as in
 * JSON). Structural, without serialising: it runs for every route on every idle tick.
 */
export function sameJson(a: Json, b: Json): boolean {
  if (a === b) return true;
  if (a === null || b === null || typeof a !== 'object' || typeof b !== 'object') return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!sameJson(a[i], b[i])) return false;
    return true;
  }
  if (Array.isArray(b)) return false;
  const x = a as JsonObject;
  const y = b as JsonObject;
  let count = 0;
  for (const key in x) {
    if (x[key] === undefined) continue;
    count++;
    if (!Object.hasOwn(y, key) || !sameJson(x[key], y[key])) return false;
  }
  for (const key in y) if (y[key] !== undefined) count--;
  return count === 0;
}
