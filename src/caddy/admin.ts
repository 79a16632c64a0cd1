import type { CaddyConfigPath, CaddyTarget } from './target.js';

/** What a read returned: the JSON at the target (`null` for a missing key) and Caddy's ETag for it, if sent. */
export interface CaddyRead {
  value: unknown;
  /**
   * The opaque ETag (`"/config/ 1a2b3c4d"`), from the header (Caddy >= 2.8) or the trailer (2.6/2.7);
   * `undefined` when this Caddy sends none.
   */
  etag: string | undefined;
}

/** Options of a mutating request. */
export interface CaddyWriteOptions {
  /** An ETag from a read: Caddy refuses the change with 412 (`CADDY_CONFLICT`) if that config changed since. */
  ifMatch?: string;
}

/** One admin API request, as reported to `onRequest` (the way to count requests and mutations). */
export interface CaddyRequestEvent {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** URL path, e.g. `/id/omni-deploy:web`. */
  path: string;
  /** HTTP status, or `undefined` when no answer came (connection refused, timeout). */
  status: number | undefined;
  mutating: boolean;
}

/**
 * Caddy's admin API, reduced to what owning a few objects in a shared config needs. Only `/config/...` and
 * `/id/...` are reachable: there is no way to send `POST /load` (which replaces everyone's config) through it.
 * Every method throws a {@link DeployError}: `CADDY_CONFLICT` (412: `ifMatch` is stale), `CADDY_NOT_FOUND` (404:
 * unknown `@id`), `CADDY_REJECTED` (Caddy refused the request or the config it would produce; nothing changed),
 * `CADDY_UNREACHABLE` (no answer), `CADDY_INVALID_TARGET` / `CADDY_INVALID_VALUE` (refused before sending).
 *
 * The real adapter is {@link createCaddyAdmin}; `createFakeCaddyAdmin` from `@omni/deploy/testing` keeps the
 * config in memory with the same semantics.
 */
export interface CaddyAdmin {
  /** Where requests go, for messages (`127.0.0.1:2019`, `unix//run/caddy/admin.sock`, `memory`). */
  readonly address: string;
  /** `GET`: the JSON at `target`. A missing last key reads as `null`; a missing parent is `CADDY_REJECTED`. */
  get(target: CaddyTarget): Promise<CaddyRead>;
  /**
   * `PUT`: insert into an array before the element at the index that ends `target` (which must exist), or
   * create a key that does not exist yet (creating missing parent objects on the way).
   */
  put(target: CaddyTarget, value: unknown, options?: CaddyWriteOptions): Promise<void>;
  /**
   * `POST` to a config path: append to the array there, or set the key. Takes a path, never an `@id`: on Caddy,
   * POST to a route's `/id/...` appends a second route instead of changing that one (caddy#3949).
   */
  post(path: CaddyConfigPath, value: unknown, options?: CaddyWriteOptions): Promise<void>;
  /** `PATCH`: replace the value at `target`, which must exist. */
  patch(target: CaddyTarget, value: unknown, options?: CaddyWriteOptions): Promise<void>;
  /** `DELETE`: remove the value at `target` (an unknown `@id` is `CADDY_NOT_FOUND`). */
  delete(target: CaddyTarget, options?: CaddyWriteOptions): Promise<void>;
}
