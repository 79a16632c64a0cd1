/**
 * The route rules against routes that are not ours (Caddyfile sites, other programs' routes), over Caddy's JSON
 * as the admin API returns it. Pure: the Caddy planner asks these functions which of our routes to refuse and
 * where the others may go.
 *
 * A foreign route *claims* a host when its host matcher names it exactly (case-insensitive, as Caddy
 * compares): a domain of ours that it claims on an overlapping path is refused, and the foreign route is left
 * alone. A foreign route without a host matcher (a catch-all such as Debian's stock `:80` site) or with a
 * wildcard host is a *fallback*: our exact-host routes go ahead of it. Our wildcard routes go after every
 * foreign route that claims a host they would cover.
 */

import { isObject } from '../runtime/json.js';

/** One way a route can match: a host (exact, or a pattern) or any host, and path patterns or any path. */
export interface RouteClaim {
  /** Lower-cased host matcher entry; `undefined`: any host. */
  host?: string;
  /** Caddy path patterns (lower-cased); `undefined`: any path. */
  paths?: readonly string[];
}

/** A route in Caddy's config that does not carry our `@id` prefix. */
export interface ForeignRoute {
  /** The server under `apps.http.servers` that holds it. */
  server: string;
  /** Its index in that server's `routes`. */
  index: number;
  /** The route's `@id`, if it has one. */
  id?: string;
  claims: readonly RouteClaim[];
}

/**
 * How a foreign route relates to one route of ours (domain + path):
 * - `conflict`: it names our domain exactly on an overlapping path; ours is refused.
 * - `follow`: ours could take requests it claims; ours must come after it.
 * - `fallback`: it would take requests ours wants only because it comes first; ours goes ahead of it.
 * - `disjoint`: no request matches both; order does not matter.
 */
export type RouteRelation = 'conflict' | 'follow' | 'fallback' | 'disjoint';

const RANK: Record<RouteRelation, number> = { disjoint: 0, fallback: 1, follow: 2, conflict: 3 };

/** Bounds on hostile or enormous configs: nesting of subroutes, and claims per route. */
const MAX_DEPTH = 8;
const MAX_CLAIMS = 10_000;

function strings(value: unknown): string[] | undefined {
  if (!Array.isArray(value) || value.length === 0) return undefined;
  if (!value.every((item) => typeof item === 'string')) return undefined;
  return (value as string[]).map((item) => item.toLowerCase());
}

/**
 * The claims of one route: one per host of each matcher set (a set without a host matcher claims any host),
 * plus the hosts named inside its subroutes when the outer set names none (a Caddyfile `:80` site that
 * matches `@site host example.com` inside). Other matchers (method, header, remote_ip, not, ...) only narrow a
 * route and are ignored, so a claim can be wider than the route, never narrower.
 */
export function routeClaims(route: unknown): RouteClaim[] {
  const out: RouteClaim[] = [];
  collect(route, {}, 0, out);
  return out;
}

function collect(route: unknown, outer: RouteClaim, depth: number, out: RouteClaim[]): void {
  if (out.length >= MAX_CLAIMS) return;
  const sets = isObject(route) && Array.isArray(route.match) && route.match.length > 0 ? route.match : [{}];
  for (const set of sets) {
    const hosts = isObject(set) ? strings(set.host) : undefined;
    const paths = isObject(set) ? strings(set.path) : undefined;
    // Nested sets narrow the outer one: keeping the outer paths over-approximates the intersection.
    const base: RouteClaim = {};
    const narrowed = outer.paths ?? paths;
    if (narrowed) base.paths = narrowed;
    if (hosts) for (const host of hosts) out.push({ ...base, host });
    else {
      out.push(base);
      // A set without a host: hosts inside its subroutes are still this route's.
      if (depth < MAX_DEPTH && isObject(route) && Array.isArray(route.handle))
        for (const handler of route.handle)
          if (isObject(handler) && handler.handler === 'subroute' && Array.isArray(handler.routes))
            for (const inner of handler.routes) collect(inner, base, depth + 1, out);
    }
    if (out.length >= MAX_CLAIMS) return;
  }
}

/**
 * `exact` when the route names at least one host exactly (it serves a site), else `fallback` (no host
 * matcher, or only wildcard hosts).
 */
export function classifyForeignRoute(route: unknown): 'exact' | 'fallback' {
  return routeClaims(route).some((c) => c.host !== undefined && hostKind(c.host) === 'exact')
    ? 'exact'
    : 'fallback';
}

/**
 * Every top-level route of every HTTP server in Caddy's config whose `@id` does not start with `idPrefix`, with
 * its claims. Anything that is not a server with a routes array is skipped.
 */
export function foreignRoutes(config: unknown, idPrefix: string): ForeignRoute[] {
  const servers =
    isObject(config) && isObject(config.apps) && isObject(config.apps.http)
      ? config.apps.http.servers
      : undefined;
  if (!isObject(servers)) return [];
  const out: ForeignRoute[] = [];
  for (const [server, value] of Object.entries(servers)) {
    if (!isObject(value) || !Array.isArray(value.routes)) continue;
    value.routes.forEach((route, index) => {
      const id = isObject(route) && typeof route['@id'] === 'string' ? route['@id'] : undefined;
      if (id?.startsWith(idPrefix)) return;
      out.push({ server, index, ...(id !== undefined ? { id } : {}), claims: routeClaims(route) });
    });
  }
  return out;
}

/** `exact` host, a `wildcard` pattern (`*` labels), or `unknown` (a placeholder Caddy fills at run time). */
function hostKind(host: string): 'exact' | 'wildcard' | 'unknown' {
  if (host.includes('{')) return 'unknown';
  return host.split('.').includes('*') ? 'wildcard' : 'exact';
}

/** Caddy's host matching: same number of labels, each equal or `*` (one label). */
function hostMatches(pattern: string, host: string): boolean {
  const p = pattern.split('.');
  const h = host.split('.');
  return p.length === h.length && p.every((label, i) => label === '*' || label === h[i]);
}

/** Whether two host patterns can match one host. */
function hostsOverlap(a: string, b: string): boolean {
  const x = a.split('.');
  const y = b.split('.');
  return x.length === y.length && x.every((label, i) => label === '*' || y[i] === '*' || label === y[i]);
}

/** Whether a Caddy path pattern can match a request our route (`/` or `/p` and `/p/...`) takes. */
function pathOverlaps(ours: string, pattern: string): boolean {
  if (ours === '/') return true;
  const p = ours.toLowerCase();
  const star = pattern.indexOf('*');
  if (star === -1) return pattern === p || pattern.startsWith(`${p}/`);
  if (star === pattern.length - 1) {
    const prefix = pattern.slice(0, -1);
    return p.startsWith(prefix) || prefix.startsWith(`${p}/`);
  }
  // Suffix, substring and inner wildcards, escaped forms: could match, so they count as overlapping.
  return true;
}

/** How one claim relates to our domain + path (see {@link RouteRelation}). */
function claimRelation(domain: string, path: string, claim: RouteClaim): RouteRelation {
  if (claim.paths && !claim.paths.some((pattern) => pathOverlaps(path, pattern))) return 'disjoint';
  if (claim.host === undefined) return 'fallback';
  const host = claim.host;
  if (host === domain) return 'conflict';
  const kind = hostKind(host);
  if (kind === 'unknown') return 'follow';
  const oursWildcard = domain.startsWith('*.');
  if (kind === 'exact') return oursWildcard && hostMatches(domain, host) ? 'follow' : 'disjoint';
  if (!oursWildcard) return hostMatches(host, domain) ? 'fallback' : 'disjoint';
  return hostsOverlap(host, domain) ? 'follow' : 'disjoint';
}

/** How a foreign route (its claims) relates to our route on `domain` + `path`: the strongest of its claims. */
export function routeRelation(domain: string, path: string, claims: readonly RouteClaim[]): RouteRelation {
  const d = domain.toLowerCase();
  let best: RouteRelation = 'disjoint';
  for (const claim of claims) {
    const r = claimRelation(d, path, claim);
    if (RANK[r] > RANK[best]) best = r;
    if (best === 'conflict') break;
  }
  return best;
}

/** A foreign route that names one of our domains: the route of ours is refused. */
export interface ForeignConflict {
  server: string;
  index: number;
  id?: string;
  message: string;
}

/**
 * The foreign route (of any server: a site on another listener is still someone's site) that names `domain`
 * exactly on a path overlapping `path`, or `undefined`. A route of ours for which this answers is refused
 * (rule `route.foreign-host`) and the foreign route is left as it is.
 */
export function checkDomainAgainstForeign(
  domain: string,
  path: string,
  foreign: readonly ForeignRoute[],
): ForeignConflict | undefined {
  for (const route of foreign) {
    if (routeRelation(domain, path, route.claims) !== 'conflict') continue;
    const name = route.id !== undefined ? `route ${JSON.stringify(route.id)}` : 'a route';
    return {
      server: route.server,
      index: route.index,
      ...(route.id !== undefined ? { id: route.id } : {}),
      message: `${domain.toLowerCase()}${path === '/' ? '' : path} is served by ${name} of someone else (apps.http.servers.${route.server}.routes[${route.index}]); it is left alone and not routed for us`,
    };
  }
  return undefined;
}

/**
 * The lowest index in a server's `routes` at which our route (`domain` + `path`) may sit: just after the last
 * foreign route it must follow, or 0. `isOurs` tells our routes from foreign ones (by `@id` prefix).
 */
export function placementFloor(
  domain: string,
  path: string,
  routes: readonly unknown[],
  isOurs: (route: unknown) => boolean,
): number {
  let floor = 0;
  routes.forEach((route, i) => {
    if (!isOurs(route) && routeRelation(domain, path, routeClaims(route)) === 'follow') floor = i + 1;
  });
  return floor;
}

/** A route of ours that sits ahead of a foreign route it must follow (or that claims its domain). */
export interface OrderViolation {
  /** Index of our route. */
  index: number;
  /** Index of the foreign route it precedes. */
  foreign: number;
  relation: 'conflict' | 'follow';
}

/**
 * Checks a server's routes as Caddy holds them: every route of ours (`describe` gives its domain and path, or
 * `undefined` for a route that is not ours) must come after each foreign route it must follow, and no route of
 * ours may share a domain with a foreign route that claims it. For a planner's self-check and for tests.
 */
export function findOrderViolations(
  routes: readonly unknown[],
  describe: (route: unknown) => { domain: string; path: string } | undefined,
): OrderViolation[] {
  const out: OrderViolation[] = [];
  routes.forEach((route, index) => {
    const ours = describe(route);
    if (!ours) return;
    routes.forEach((other, j) => {
      if (describe(other)) return;
      const relation = routeRelation(ours.domain, ours.path, routeClaims(other));
      if (relation === 'conflict' || (relation === 'follow' && j > index))
        out.push({ index, foreign: j, relation });
    });
  });
  return out;
}
