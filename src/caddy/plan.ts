import { DeployError } from '../errors.js';
import { SERVICE_NAME_RE } from '../manifest/patterns.js';
import {
  checkDomainAgainstForeign,
  findOrderViolations,
  foreignRoutes,
  placementFloor,
} from '../policy/routes.js';
import { isObject } from '../runtime/json.js';
import { accessConfig, type ConfigMethod, canonicalJson, resolveTarget, sameJson } from './config-tree.js';
import { type CaddyRoute, DEFAULT_CADDY_ID_PREFIX, type DesiredRoute, ID_PREFIX_RE } from './routes.js';
import { AUTO_CADDY_SERVER, chooseCaddyServer } from './server.js';
import { type CaddyConfigPath, type CaddyTarget, formatTarget } from './target.js';

/** The HTTP server in `apps.http.servers` our routes go into when none is named: the Caddyfile's first one. */
export const DEFAULT_CADDY_SERVER = 'srv0';

/** Options shared by {@link planRoutes} and the functions that read and apply. */
export interface CaddyRouteOptions {
  /**
   * Name of the server in `apps.http.servers` that holds our routes, or `'auto'` to find it in the config
   * (`chooseCaddyServer`: the one holding our routes, else `omni`, else the first on :443, else on :80, else
   * `omni` is created with `listen`). Default {@link DEFAULT_CADDY_SERVER}.
   */
  server?: string;
  /** Must be the prefix the routes were built with. Default `omni-deploy:`. */
  idPrefix?: string;
  /**
   * Listen addresses (e.g. `[':443']`) for creating the server when the config has none by that name. Without
   * it, a missing server is an error (`CADDY_NO_SERVER`) rather than a guess.
   */
  listen?: readonly string[];
  /** Other fields of a server created with `listen` (e.g. `{ automatic_https: { disable_redirects: true } }`). */
  serverDefaults?: Readonly<Record<string, unknown>>;
}

/** One admin API request of a plan, exactly as it will be sent. */
export interface CaddyAdminRequest {
  method: Exclude<ConfigMethod, 'GET'>;
  target: CaddyTarget;
  value?: unknown;
}

/** What one operation does, with a one-line `summary` for humans. */
export type RouteChange = (
  | { kind: 'create-server'; ids: string[] }
  | { kind: 'create-routes'; ids: string[] }
  | { kind: 'add'; id: string; index: number; route: CaddyRoute; moved: boolean }
  | { kind: 'replace'; id: string; route: CaddyRoute; changed: string[] }
  | { kind: 'swap-upstream'; id: string; proxyId: string; from: unknown; to: string[] }
  | { kind: 'delete'; id: string; index: number; reason: 'removed' | 'duplicate' | 'moved' }
) & { summary: string };

/** One step of a {@link RoutePlan}: the change and the admin API request that makes it. */
export type RouteOperation = RouteChange & { request: CaddyAdminRequest };

/**
 * A desired route of ours that a route of someone else's names exactly (same host, overlapping path): it is
 * not routed, and the other route is left as it is (rule `route.foreign-host` of the host policy).
 */
export interface RefusedRoute {
  id: string;
  service: string;
  domain: string;
  path: string;
  /** Where the route that names the domain is: its server, index and `@id` (if it has one). */
  foreign: { server: string; index: number; id?: string };
  message: string;
}

/**
 * The minimal list of admin API requests that turns the live config's routes into the desired ones. Only
 * objects whose `@id` starts with `idPrefix` are ever addressed; foreign routes keep their content, and their
 * order among themselves. An empty `operations` means Caddy already serves exactly the desired routes (less
 * the `refused` ones).
 */
export interface RoutePlan {
  /** The server that holds our routes (found in the config when `server` was `'auto'`). */
  server: string;
  /** With `server: 'auto'`: which server was found and why (`srv0 (listens on :80)`). */
  discovered?: string;
  idPrefix: string;
  /** Our route ids in the order Caddy will hold them once applied. */
  routes: string[];
  operations: RouteOperation[];
  /** Desired routes not routed because a foreign route names their domain (see {@link RefusedRoute}). */
  refused: RefusedRoute[];
}

type Json = unknown;
type JsonObject = Record<string, Json>;

function unexpected(message: string, details?: unknown): DeployError {
  return new DeployError('CADDY_CONFIG_UNEXPECTED', message, { details });
}

/**
 * Compares the desired routes with Caddy's live config (as read from `GET /config/`) and returns the requests
 * that reconcile them: swap an upstream when only the dial address changed, replace a route that differs
 * otherwise, add missing routes next to their neighbours in specificity order (at the start of the server's
 * routes when it holds none of ours yet, so a foreign catch-all cannot shadow them), move a route that is out
 * of order, and delete routes of ours that are no longer wanted or duplicated. Adds come before deletes, so a
 * renamed service keeps being served. Pure.
 *
 * Routes of someone else's are respected (src/policy/routes.ts): a desired route whose domain a foreign route
 * (of any server) names exactly is refused, returned in `refused` and not routed (a route of ours already there
 * is removed); a route of ours never goes ahead of a foreign route it must follow (a wildcard of ours after the
 * foreign sites it covers), and a kept route that sits ahead of one is moved. Foreign catch-alls and wildcards
 * are fallbacks: our exact hosts may go ahead of them.
 *
 * Throws before planning anything: `CADDY_ROUTES_INVALID` (desired routes with another prefix),
 * `CADDY_NO_SERVER` (server missing and no `listen` to create it), `CADDY_CONFIG_UNEXPECTED` (the path to the
 * routes holds something that is not an object/array), `CADDY_FOREIGN_ID` (an id of ours inside someone
 * else's object: we will not edit foreign objects, and Caddy would address the wrong one).
 */
export function planRoutes(
  desired: readonly DesiredRoute[],
  config: Json,
  options: CaddyRouteOptions = {},
): RoutePlan {
  const prefix = options.idPrefix ?? DEFAULT_CADDY_ID_PREFIX;
  const choice = chooseCaddyServer(config, options.server ?? DEFAULT_CADDY_SERVER, prefix);
  const server = choice.name;
  const serverPath: CaddyConfigPath = ['apps', 'http', 'servers', server];
  checkDesired(desired, serverPath, prefix);
  const { kept, refused } = refuseForeignHosts(desired, config, prefix);
  const p = startPlan(kept, config, server, prefix);
  p.plan.refused = refused;
  if (options.server === AUTO_CADDY_SERVER) p.plan.discovered = choice.summary;
  if (planMissingContainers(p, config, serverPath, options)) return p.plan;
  removeDuplicates(p);
  computeFloors(p);
  const inPlace = updateKeptRoutes(p);
  placeRoutes(p, inPlace);
  removeUnwanted(p);
  checkPlanReaches(p);
  return p.plan;
}

/** What every step of {@link planRoutes} shares: the plan so far and the config as it will be after it. */
interface Planner {
  desired: readonly DesiredRoute[];
  plan: RoutePlan;
  routesPath: CaddyConfigPath;
  /** The desired routes by id, with their position. */
  wanted: Map<string, { d: DesiredRoute; i: number }>;
  /** How often each id of ours occurs in the config (filled once duplicates are gone). */
  idCounts: Map<string, number>;
  /**
   * For each desired id, how many foreign routes of the server must come before it (filled once duplicates are
   * gone). Never less than its predecessors', so placing each route at its floor keeps our routes in order.
   */
  floors: Map<string, number>;
  /** True for an id with our prefix. */
  owned(id: unknown): id is string;
  /** Appends an operation and applies it to the simulated config. */
  perform(op: RouteChange, request: CaddyAdminRequest): void;
  /** The server's routes in the simulated config (after the operations so far). */
  routes(): Json[];
  /** Whether `/id/<id>` reaches exactly this route. */
  addressable(id: string): boolean;
}

/** Refuses an invalid server name or id prefix, and desired routes built with another prefix. */
function checkDesired(desired: readonly DesiredRoute[], serverPath: CaddyConfigPath, prefix: string): void {
  formatTarget({ path: serverPath });
  if (!ID_PREFIX_RE.test(prefix)) throw new DeployError('CADDY_ROUTES_INVALID', `invalid idPrefix ${prefix}`);
  const strays = desired.filter((d) => !d.id.startsWith(prefix) || d.route['@id'] !== d.id);
  if (strays.length > 0) {
    throw new DeployError(
      'CADDY_ROUTES_INVALID',
      `desired routes ${strays.map((d) => d.id).join(', ')} do not carry the id prefix ${JSON.stringify(prefix)}: build them with the same idPrefix`,
    );
  }
}

function startPlan(desired: readonly DesiredRoute[], config: Json, server: string, prefix: string): Planner {
  const routesPath: CaddyConfigPath = ['apps', 'http', 'servers', server, 'routes'];
  const ownRouteId = new RegExp(`^${escapeRegExp(prefix)}${SERVICE_NAME_RE.source.slice(1, -1)}$`);
  // Read-only until the first operation: an in-sync config (every idle tick) is never copied.
  const holder = { config: config ?? null };
  let copied = false;
  const p: Planner = {
    desired,
    plan: { server, idPrefix: prefix, routes: desired.map((d) => d.id), operations: [], refused: [] },
    routesPath,
    wanted: new Map(desired.map((d, i) => [d.id, { d, i }])),
    // /id/<id> reaches the right route only when the id is well-formed and appears once in the whole config.
    // Counted after duplicates are gone; our ids live only inside our routes, which are counted there.
    idCounts: new Map(),
    floors: new Map(),
    owned: (id: unknown): id is string => typeof id === 'string' && id.startsWith(prefix),
    perform(op, request) {
      if (!copied) holder.config = structuredClone(holder.config);
      copied = true;
      p.plan.operations.push({ ...op, request });
      simulate(holder, request);
    },
    routes: () => lookup(holder.config, routesPath) as Json[],
    addressable: (id) => ownRouteId.test(id) && p.idCounts.get(id) === 1,
  };
  return p;
}

function idAt(route: Json): unknown {
  return isObject(route) ? route['@id'] : undefined;
}

function indexOf(p: Planner, id: string): number {
  return p.routes().findIndex((route) => idAt(route) === id);
}

function deleteRoute(p: Planner, id: string, index: number, reason: 'removed' | 'duplicate' | 'moved'): void {
  p.perform(
    { kind: 'delete', id, index, reason, summary: `- ${id} (${reason})` },
    p.addressable(id)
      ? { method: 'DELETE', target: { id } }
      : { method: 'DELETE', target: { path: [...p.routesPath, index] } },
  );
}

/**
 * Splits the desired routes into those to route and those a foreign route (of any server) names exactly on an
 * overlapping path: refused, with where that route is.
 */
function refuseForeignHosts(
  desired: readonly DesiredRoute[],
  config: Json,
  prefix: string,
): { kept: DesiredRoute[]; refused: RefusedRoute[] } {
  const foreign = foreignRoutes(config, prefix);
  const kept: DesiredRoute[] = [];
  const refused: RefusedRoute[] = [];
  for (const d of desired) {
    const conflict = foreign.length ? checkDomainAgainstForeign(d.domain, d.path, foreign) : undefined;
    if (!conflict) {
      kept.push(d);
      continue;
    }
    const { message, ...where } = conflict;
    refused.push({ id: d.id, service: d.service, domain: d.domain, path: d.path, foreign: where, message });
  }
  return { kept, refused };
}

/** How many foreign routes are among the first `index` routes. */
function foreignBefore(p: Planner, routes: readonly Json[], index: number): number {
  return routes.slice(0, index).filter((route) => !p.owned(idAt(route))).length;
}

/** The index just after the `count`-th foreign route (0 for none). */
function indexAfterForeign(p: Planner, routes: readonly Json[], count: number): number {
  if (count === 0) return 0;
  let seen = 0;
  for (let i = 0; i < routes.length; i++) if (!p.owned(idAt(routes[i])) && ++seen === count) return i + 1;
  return routes.length;
}

/** The floor of each desired route (see {@link Planner.floors}), from the server's foreign routes. */
function computeFloors(p: Planner): void {
  const routes = p.routes();
  let floor = 0;
  for (const d of p.desired) {
    const index = placementFloor(d.domain, d.path, routes, (route) => p.owned(idAt(route)));
    floor = Math.max(floor, foreignBefore(p, routes, index));
    p.floors.set(d.id, floor);
  }
}

/**
 * 0. A missing server or routes list: created whole with the desired routes. Returns true when that made the
 * plan complete (or nothing is wanted); throws when the path to the routes holds something unexpected.
 */
function planMissingContainers(
  p: Planner,
  config: Json,
  serverPath: CaddyConfigPath,
  options: CaddyRouteOptions,
): boolean {
  const { desired, plan } = p;
  const server = plan.server;
  const serverValue = lookup(config, serverPath);
  if (serverValue === undefined || serverValue === null) {
    refuseForeignIds(config, serverPath, p.owned);
    if (desired.length === 0) return true;
    if (!options.listen || options.listen.length === 0) {
      throw new DeployError(
        'CADDY_NO_SERVER',
        `Caddy has no HTTP server "${server}" (apps.http.servers.${server}); name an existing one, or give listen addresses to create it`,
        { details: { server } },
      );
    }
    p.perform(
      {
        kind: 'create-server',
        ids: plan.routes,
        summary: `create server ${server} with ${desired.length} route(s)`,
      },
      {
        method: 'PUT',
        target: { path: serverPath },
        value: {
          ...structuredClone(options.serverDefaults ?? {}),
          listen: [...options.listen],
          routes: desired.map((d) => d.route),
        },
      },
    );
    return true;
  }
  if (!isObject(serverValue))
    throw unexpected(`apps.http.servers.${server} is ${kindOf(serverValue)}, expected an object`);
  const routesValue = serverValue.routes;
  if (routesValue === undefined || routesValue === null) {
    refuseForeignIds(config, serverPath, p.owned);
    if (desired.length === 0) return true;
    p.perform(
      { kind: 'create-routes', ids: plan.routes, summary: `create the routes of server ${server}` },
      {
        method: routesValue === undefined ? 'PUT' : 'PATCH',
        target: { path: p.routesPath },
        value: desired.map((d) => d.route),
      },
    );
    return true;
  }
  if (!Array.isArray(routesValue))
    throw unexpected(`apps.http.servers.${server}.routes is ${kindOf(routesValue)}, expected an array`);
  refuseForeignIds(config, serverPath, p.owned);
  return false;
}

/** 1. Duplicates of our ids: keep the first. Positional, since /id/<id> would pick the last one. */
function removeDuplicates(p: Planner): void {
  const seen = new Set<string>();
  for (let i = 0; i < p.routes().length; i++) {
    const id = idAt(p.routes()[i]);
    if (!p.owned(id)) continue;
    if (seen.has(id)) {
      deleteRoute(p, id, i, 'duplicate');
      i--;
    }
    seen.add(id);
  }
  p.idCounts = countIds(p.routes().filter((route) => p.owned(idAt(route))));
}

/**
 * 2. Routes we keep in place: the cheapest run already in desired order. Each one that differs is patched:
 * only its upstream when nothing else changed, else replaced whole. Returns the ids kept in place.
 */
function updateKeptRoutes(p: Planner): string[] {
  const { wanted, idCounts } = p;
  const routes = p.routes();
  // A route of ours ahead of a foreign route it must follow is not kept in place: it moves below it.
  const kept = routes.filter((route, index) => {
    const id = idAt(route);
    return p.owned(id) && wanted.has(id) && foreignBefore(p, routes, index) >= (p.floors.get(id) ?? 0);
  }) as JsonObject[];
  const keptIds = kept.map((route) => route['@id'] as string);
  const unchanged = kept.map((route, k) => sameJson(route, wanted.get(keptIds[k] as string)?.d.route));
  const live = new Map(kept.map((route, k) => [keptIds[k] as string, { route, unchanged: unchanged[k] }]));
  const inPlace = heaviestOrderedRun(
    keptIds,
    keptIds.map((id) => wanted.get(id)?.i ?? 0),
    unchanged.map((same) => (same ? 2 : 1)),
  );
  for (const id of inPlace) {
    const { d } = wanted.get(id) as { d: DesiredRoute };
    const { route: liveRoute, unchanged: same } = live.get(id) as { route: JsonObject; unchanged: boolean };
    if (same) continue;
    const liveProxy = (liveRoute.handle as Json[] | undefined)?.[0];
    const onlyUpstreams =
      isObject(liveProxy) &&
      idCounts.get(d.proxyId) === 1 &&
      sameJson({ ...liveRoute, handle: [{ ...liveProxy, upstreams: d.route.handle[0].upstreams }] }, d.route);
    if (onlyUpstreams) {
      const from = liveProxy.upstreams;
      p.perform(
        {
          kind: 'swap-upstream',
          id,
          proxyId: d.proxyId,
          from,
          to: [d.dial],
          summary: `~ ${id} upstream ${describeUpstreams(from)} -> ${d.dial}`,
        },
        {
          method: 'PATCH',
          target: { id: d.proxyId, path: ['upstreams'] },
          value: d.route.handle[0].upstreams,
        },
      );
    } else {
      const changed = ['@id', 'match', 'handle', 'terminal', ...Object.keys(liveRoute)]
        .filter((key, i, all) => all.indexOf(key) === i)
        .filter(
          (key) => canonicalJson(liveRoute[key]) !== canonicalJson((d.route as unknown as JsonObject)[key]),
        );
      p.perform(
        {
          kind: 'replace',
          id,
          route: d.route,
          changed,
          summary: `~ ${id} ${describe(d)} (changed: ${changed.join(', ')})`,
        },
        {
          method: 'PATCH',
          target: p.addressable(id) ? { id } : { path: [...p.routesPath, indexOf(p, id)] },
          value: d.route,
        },
      );
    }
  }
  return inPlace;
}

/** 3. Missing and out-of-order routes, in desired order, each right after its placed predecessor. */
function placeRoutes(p: Planner, inPlace: readonly string[]): void {
  const { desired } = p;
  const placed = new Set(inPlace);
  desired.forEach((d, i) => {
    if (placed.has(d.id)) return;
    const moved = indexOf(p, d.id) !== -1;
    if (moved) deleteRoute(p, d.id, indexOf(p, d.id), 'moved');
    const before = desired.slice(0, i).findLast((x) => placed.has(x.id));
    const after = desired.slice(i + 1).find((n) => placed.has(n.id));
    // Never ahead of a foreign route it must follow; the floors rise in desired order, so never after `after`.
    const floor = indexAfterForeign(p, p.routes(), p.floors.get(d.id) ?? 0);
    const index = before ? Math.max(indexOf(p, before.id) + 1, floor) : after ? indexOf(p, after.id) : floor;
    const length = p.routes().length;
    p.perform(
      {
        kind: 'add',
        id: d.id,
        index,
        route: d.route,
        moved,
        summary: `+ ${d.id} ${describe(d)}${moved ? ' (moved)' : ''}`,
      },
      index < length
        ? { method: 'PUT', target: { path: [...p.routesPath, index] }, value: d.route }
        : { method: 'POST', target: { path: p.routesPath }, value: d.route },
    );
    placed.add(d.id);
  });
}

/** 4. Ours but no longer wanted (including ids of ours we would never generate). */
function removeUnwanted(p: Planner): void {
  for (let i = p.routes().length - 1; i >= 0; i--) {
    const id = idAt(p.routes()[i]);
    if (p.owned(id) && !p.wanted.has(id)) deleteRoute(p, id, i, 'removed');
  }
}

/**
 * The plan must reach the desired state, with no route of ours ahead of a foreign route it must follow, or it
 * is a bug here, not a problem with Caddy.
 */
function checkPlanReaches(p: Planner): void {
  const routes = p.routes();
  const ours = routes.filter((route) => p.owned(idAt(route)));
  const desired = p.desired.map((d) => d.route);
  if (!sameJson(ours, desired)) {
    throw new DeployError('CADDY_PLAN_BUG', 'route plan does not reach the desired routes', {
      details: { ours, desired },
    });
  }
  const violations = findOrderViolations(routes, (route) => {
    const id = idAt(route);
    return p.owned(id) ? p.wanted.get(id)?.d : undefined;
  });
  if (violations.length > 0) {
    throw new DeployError('CADDY_PLAN_BUG', 'route plan puts a route of ours ahead of a foreign route', {
      details: { violations },
    });
  }
}

/** Applies one planned request to an in-memory config, with Caddy's semantics (the applier's expectation). */
export function simulate(holder: { config: Json }, request: CaddyAdminRequest): void {
  accessConfig(holder, request.method, resolveTarget(holder.config, request.target), request.value);
}

/**
 * A readable rendering of a plan, one line per request (`+` add, `~` change, `-` delete), with the request it
 * sends. For `deployer plan` and logs.
 */
export function renderRoutePlan(plan: RoutePlan): string {
  const head = `Caddy routes (server ${plan.discovered ?? plan.server}, ids ${plan.idPrefix}*): `;
  const refused = plan.refused.map((r) => `\n  ! ${r.id} refused: ${r.message}`).join('');
  if (plan.operations.length === 0) return `${head}in sync, ${plan.routes.length} route(s)${refused}`;
  const lines = plan.operations.map(
    (op) => `  ${op.summary}\n      ${op.request.method} ${formatTarget(op.request.target)}`,
  );
  return `${head}${plan.operations.length} request(s)\n${lines.join('\n')}${refused}`;
}

function describe(d: DesiredRoute): string {
  return `${d.domain}${d.path === '/' ? '' : d.path} -> ${d.dial}`;
}

function describeUpstreams(upstreams: unknown): string {
  if (!Array.isArray(upstreams)) return JSON.stringify(upstreams ?? null);
  return upstreams
    .map((u) => (isObject(u) && typeof u.dial === 'string' ? u.dial : JSON.stringify(u)))
    .join(',');
}

function kindOf(value: Json): string {
  return Array.isArray(value) ? 'an array' : value === null ? 'null' : typeof value;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** The value at `path`, `undefined` when a key is missing; throws when something on the way is not an object. */
function lookup(config: Json, path: CaddyConfigPath): Json {
  let value = config;
  for (let i = 0; i < path.length; i++) {
    if (value === undefined || value === null) return undefined;
    if (!isObject(value)) {
      throw unexpected(
        `${['config', ...path.slice(0, i)].join('.')} is ${kindOf(value)}, expected an object`,
      );
    }
    value = value[path[i] as string];
  }
  return value;
}

/** How many times each `@id` occurs in `value`. */
function countIds(value: Json, counts = new Map<string, number>()): Map<string, number> {
  if (Array.isArray(value)) {
    for (const child of value) countIds(child, counts);
  } else if (isObject(value)) {
    for (const key in value) {
      const child = value[key];
      if (key === '@id') counts.set(String(child), (counts.get(String(child)) ?? 0) + 1);
      else countIds(child, counts);
    }
  }
  return counts;
}

/**
 * Throws `CADDY_FOREIGN_ID` when an id of ours sits anywhere but at the top of one of our routes (or inside
 * one): in another server, nested in a foreign route, in another app.
 */
function refuseForeignIds(config: Json, serverPath: CaddyConfigPath, owned: (id: unknown) => boolean): void {
  const found: string[] = [];
  const ourRoutes = ['config', ...serverPath, 'routes'].join('/');
  const path: string[] = ['config'];
  const walk = (value: Json) => {
    if (Array.isArray(value)) {
      // A route of ours (top level of our server's routes) may hold ids of ours: it is replaced as a whole.
      const isOurRoutes = path.join('/') === ourRoutes;
      value.forEach((child, i) => {
        if (isOurRoutes && isObject(child) && owned(child['@id'])) return;
        path.push(String(i));
        walk(child);
        path.pop();
      });
    } else if (isObject(value)) {
      for (const key in value) {
        const child = value[key];
        if (key === '@id') {
          if (owned(child)) found.push(`${JSON.stringify(child)} at /${path.join('/')}`);
        } else if (child !== null && typeof child === 'object') {
          path.push(key);
          walk(child);
          path.pop();
        }
      }
    }
  };
  walk(config);
  if (found.length > 0) {
    throw new DeployError(
      'CADDY_FOREIGN_ID',
      `ids with our prefix outside our routes in apps.http.servers.${serverPath[3]}.routes: ${found.join('; ')}. They are inside objects we do not own; remove or rename them in Caddy's config`,
      { details: { found } },
    );
  }
}

/**
 * The subsequence of `ids` with increasing `rank` and the largest total `weight` (both given per position): the routes that stay where
 * they are while the others move around them. Moving costs two requests (delete, add), keeping a changed route
 * one (replace), keeping an unchanged one none, so unchanged routes weigh 2 and changed ones 1. O(n²), fine for
 * the few hundred routes a host has.
 */
function heaviestOrderedRun(
  ids: readonly string[],
  rank: readonly number[],
  weight: readonly number[],
): string[] {
  const best: number[] = [];
  const previous: number[] = [];
  let end = -1;
  ids.forEach((_, i) => {
    best[i] = weight[i] as number;
    previous[i] = -1;
    for (let j = 0; j < i; j++) {
      const candidate = (best[j] as number) + (weight[i] as number);
      if ((rank[j] as number) < (rank[i] as number) && candidate > (best[i] as number)) {
        best[i] = candidate;
        previous[i] = j;
      }
    }
    if (end === -1 || (best[i] as number) > (best[end] as number)) end = i;
  });
  const run: string[] = [];
  for (let i = end; i !== -1; i = previous[i] as number) run.push(ids[i] as string);
  return run.reverse();
}
