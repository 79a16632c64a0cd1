import type { CaddyAdmin, CaddyRequestEvent, CaddyWriteOptions } from '../caddy/admin.js';
import {
  accessConfig,
  ConfigAccessError,
  type ConfigMethod,
  canonicalJson,
  etagPath,
  resolveTarget,
} from '../caddy/config-tree.js';
import { rejection } from '../caddy/rejection.js';
import { assertSendable, type CaddyTarget, formatTarget } from '../caddy/target.js';
import { DeployError } from '../errors.js';
import { isObject } from '../runtime/json.js';

/** Options of {@link createFakeCaddyAdmin}. */
export interface FakeCaddyAdminOptions {
  /**
   * The config Caddy starts with (and returns to on {@link FakeCaddyAdmin.restart}). Default: one server `srv0`
   * listening on `:443` with no routes.
   */
  config?: unknown;
  /** Send ETags with reads (Caddy >= 2.6 does). `false` behaves like an older Caddy: no If-Match protection. */
  etags?: boolean;
}

/** An in-memory Caddy admin API: a {@link CaddyAdmin} plus controls a test needs. */
export interface FakeCaddyAdmin extends CaddyAdmin {
  /** Every request received, in order (refused-before-sending ones are not requests, as with the real one). */
  readonly requests: readonly CaddyRequestEvent[];
  /** How many of `requests` were mutating. */
  readonly mutations: number;
  /** A deep copy of the config Caddy runs now. */
  currentConfig(): unknown;
  /** Another writer replaces the whole config (not counted as a request). */
  setConfig(config: unknown): void;
  /**
   * Simulates a Caddy restart: back to the config it was started with (API changes lost, as with
   * `caddy run --config`), or, with `resume`, keeping the current one (as `caddy run --resume`).
   */
  restart(options?: { resume?: boolean }): void;
  /** `false`: every request fails with `CADDY_UNREACHABLE` (Caddy stopped), until set back to `true`. */
  setReachable(reachable: boolean): void;
}

const DEFAULT_CONFIG = { apps: { http: { servers: { srv0: { listen: [':443'] } } } } };

// The handler modules of a standard Caddy build; loading any other fails, as it does on Caddy.
const HANDLERS = new Set([
  'acme_server',
  'authentication',
  'copy_response',
  'copy_response_headers',
  'encode',
  'error',
  'file_server',
  'headers',
  'invoke',
  'map',
  'metrics',
  'push',
  'request_body',
  'reverse_proxy',
  'rewrite',
  'static_response',
  'subroute',
  'templates',
  'tracing',
  'vars',
]);
const ROUTE_KEYS = new Set(['@id', 'group', 'match', 'handle', 'terminal']);

/**
 * Creates an in-memory Caddy admin API with the semantics of the real one (checked by the same contract suite):
 * `/config/` paths and `/id/` lookups, PUT inserts into arrays and creates missing parents, POST appends,
 * PATCH replaces, a DELETE of an unknown id is `CADDY_NOT_FOUND`, ETags and `If-Match` (412 →
 * `CADDY_CONFLICT`), and a change that yields a config Caddy would not load (unknown handler module, unknown
 * route field) is `CADDY_REJECTED` and changes nothing. It does not serve HTTP traffic.
 */
export function createFakeCaddyAdmin(options: FakeCaddyAdminOptions = {}): FakeCaddyAdmin {
  const initial = structuredClone(options.config === undefined ? DEFAULT_CONFIG : options.config);
  const etags = options.etags ?? true;
  const address = 'memory';
  const requests: CaddyRequestEvent[] = [];
  let holder: { config: unknown } = { config: structuredClone(initial) };
  let reachable = true;

  function receive(method: ConfigMethod, path: string): void {
    if (!reachable) {
      requests.push({ method, path, status: undefined, mutating: method !== 'GET' });
      throw new DeployError(
        'CADDY_UNREACHABLE',
        `Caddy admin API ${address}: ${method} ${path} got no answer (ECONNREFUSED); is Caddy running?`,
        { details: { address, method, path } },
      );
    }
  }

  function succeed(method: ConfigMethod, path: string): void {
    requests.push({ method, path, status: 200, mutating: method !== 'GET' });
  }

  function fail(method: ConfigMethod, path: string, status: number, error: string): never {
    requests.push({ method, path, status, mutating: method !== 'GET' });
    throw rejection(address, method, path, status, JSON.stringify({ error }));
  }

  function etagOf(parts: readonly string[]): string {
    const value = accessConfig(structuredClone(holder), 'GET', parts);
    return `"${etagPath(parts)} ${hash(canonicalJson(value))}"`;
  }

  function mutate(method: ConfigMethod, target: CaddyTarget, value: unknown, write: CaddyWriteOptions = {}) {
    const path = formatTarget(target);
    if (value !== undefined) assertSendable(value, `the ${method} ${path} body`);
    receive(method, path);
    let parts: string[];
    try {
      parts = resolveTarget(holder.config, target);
    } catch (error) {
      fail(method, path, (error as ConfigAccessError).status, (error as Error).message);
    }
    if (write.ifMatch !== undefined) {
      const match = /^"(\S+) (\S+)"$/.exec(write.ifMatch);
      if (!match) fail(method, path, 400, 'malformed If-Match header; expect quoted string');
      let current: string | undefined;
      try {
        const etagParts = (match[1] as string).split('/').filter(Boolean);
        current = etagOf(resolveTarget(holder.config, { path: etagParts.slice(1) }));
      } catch {
        current = undefined;
      }
      if (current !== write.ifMatch)
        fail(method, path, 412, 'If-Match header did not match current config hash');
    }
    const next = structuredClone(holder);
    try {
      accessConfig(next, method, parts, structuredClone(value));
    } catch (error) {
      fail(method, path, (error as ConfigAccessError).status, (error as Error).message);
    }
    const problem = loadProblem(next.config);
    if (problem !== undefined) fail(method, path, 500, `loading new config: ${problem}`);
    holder = next;
    succeed(method, path);
  }

  return {
    address,
    requests,
    get mutations() {
      return requests.filter((r) => r.mutating).length;
    },
    async get(target) {
      const path = formatTarget(target);
      receive('GET', path);
      let parts: string[];
      let value: unknown;
      try {
        parts = resolveTarget(holder.config, target);
        value = accessConfig(structuredClone(holder), 'GET', parts) ?? null;
      } catch (error) {
        const status = error instanceof ConfigAccessError && error.status === 404 ? 404 : 400;
        fail('GET', path, status, (error as Error).message);
      }
      succeed('GET', path);
      return { value, etag: etags ? etagOf(parts) : undefined };
    },
    put: async (target, value, write) => mutate('PUT', target, value, write),
    post: async (path, value, write) => mutate('POST', { path }, value, write),
    patch: async (target, value, write) => mutate('PATCH', target, value, write),
    delete: async (target, write) => mutate('DELETE', target, undefined, write),
    currentConfig: () => structuredClone(holder.config),
    setConfig(config) {
      holder = { config: structuredClone(config) };
    },
    restart(restartOptions = {}) {
      if (!restartOptions.resume) holder = { config: structuredClone(initial) };
      reachable = true;
    },
    setReachable(value) {
      reachable = value;
    },
  };
}

/** FNV-1a, 32 bits, as 8 hex digits: an ETag only has to change when the config does. */
function hash(text: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0).toString(16).padStart(8, '0');
}

/** Why Caddy would refuse to load `config` (the part of its checks that routes touch), or `undefined`. */
function loadProblem(config: unknown): string | undefined {
  const badId = findBadId(config, '/config');
  if (badId) return `indexing config: ${badId}: @id field must be a string or number`;
  if (config === null || config === undefined) return undefined;
  if (!isObject(config)) return 'json: cannot unmarshal config: expected an object';
  const http = isObject(config.apps) ? config.apps.http : undefined;
  if (http === undefined) return undefined;
  if (!isObject(http)) return 'loading http app module: expected an object';
  const servers = http.servers ?? {};
  if (!isObject(servers)) return 'http: servers: expected an object';
  for (const [name, server] of Object.entries(servers)) {
    if (!isObject(server)) return `http: server ${name}: expected an object`;
    if (
      server.listen !== undefined &&
      !(Array.isArray(server.listen) && server.listen.every((l) => typeof l === 'string'))
    )
      return `http: server ${name}: listen: expected a list of addresses`;
    if (server.routes === undefined || server.routes === null) continue;
    if (!Array.isArray(server.routes)) return `http: server ${name}: routes: expected an array`;
    for (const [i, route] of server.routes.entries()) {
      const problem = routeProblem(route);
      if (problem) return `server ${name}: route ${i}: ${problem}`;
    }
  }
  return undefined;
}

function routeProblem(route: unknown): string | undefined {
  if (!isObject(route)) return 'expected an object';
  for (const key of Object.keys(route)) {
    if (!ROUTE_KEYS.has(key)) return `json: unknown field ${JSON.stringify(key)}`;
  }
  if (route.terminal !== undefined && typeof route.terminal !== 'boolean')
    return 'terminal: expected a boolean';
  if (route.match !== undefined && !(Array.isArray(route.match) && route.match.every(isObject)))
    return 'match: expected a list of matcher sets';
  if (route.handle === undefined) return undefined;
  if (!Array.isArray(route.handle)) return 'handle: expected a list of handlers';
  for (const [i, handler] of route.handle.entries()) {
    if (!isObject(handler) || typeof handler.handler !== 'string')
      return `loading handler modules: position ${i}: module name not specified`;
    if (!HANDLERS.has(handler.handler))
      return `loading handler modules: position ${i}: unknown module: http.handlers.${handler.handler}`;
    if (handler.handler === 'reverse_proxy' && handler.upstreams !== undefined) {
      if (
        !Array.isArray(handler.upstreams) ||
        !handler.upstreams.every((u) => isObject(u) && typeof u.dial === 'string')
      )
        return `position ${i}: reverse_proxy: upstreams: expected a list of { dial }`;
    }
    if (handler.handler === 'subroute' && Array.isArray(handler.routes)) {
      for (const inner of handler.routes) {
        const problem = routeProblem(inner);
        if (problem) return `subroute: ${problem}`;
      }
    }
  }
  return undefined;
}

function findBadId(value: unknown, at: string): string | undefined {
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const bad = findBadId(value[i], `${at}/${i}`);
      if (bad) return bad;
    }
  } else if (isObject(value)) {
    for (const [key, child] of Object.entries(value)) {
      if (key === '@id') {
        if (typeof child !== 'string' && typeof child !== 'number') return at;
      } else {
        const bad = findBadId(child, `${at}/${key}`);
        if (bad) return bad;
      }
    }
  }
  return undefined;
}
