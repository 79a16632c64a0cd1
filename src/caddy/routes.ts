import { DeployError } from '../errors.js';
import { describeValue } from '../manifest/describe.js';
import { DOMAIN_RE, MAX_HOSTNAME_LENGTH, ROUTE_PATH_RE, SERVICE_NAME_RE } from '../manifest/patterns.js';
import type { Service } from '../manifest/schema.js';

/** The `@id` prefix that marks a Caddy object as the deployer's. Everything else in the config is foreign. */
export const DEFAULT_CADDY_ID_PREFIX = 'omni-deploy:';

/** What an `idPrefix` may look like: a name ending in ":" (so `<prefix><service>` never contains "/"). */
export const ID_PREFIX_RE = /^[A-Za-z][A-Za-z0-9_.-]{0,62}:$/;

/** The Caddy JSON of one of our routes, exactly as it is sent. */
export interface CaddyRoute {
  '@id': string;
  match: [{ host: [string]; path?: [string, string] }];
  handle: [{ '@id': string; handler: 'reverse_proxy'; upstreams: [{ dial: string }] }];
  terminal: true;
}

/** One route the deployer wants in Caddy, with the facts it was made from. */
export interface DesiredRoute {
  /** The route's `@id`: `<prefix><service name>`. */
  id: string;
  /** The `@id` of its `reverse_proxy` handler: `<prefix><service name>:proxy`, the target of an upstream swap. */
  proxyId: string;
  service: string;
  /** Lower-cased `http.domain` (Caddy's host matcher ignores case). */
  domain: string;
  path: string;
  /** The upstream Caddy dials, `127.0.0.1:<port>`. */
  dial: string;
  route: CaddyRoute;
}

/** Options of {@link buildRoutes}. */
export interface BuildRoutesOptions {
  /** Default {@link DEFAULT_CADDY_ID_PREFIX}. Two deployers sharing one Caddy need different prefixes. */
  idPrefix?: string;
  /**
   * Per service name, a port to dial instead of `http.internalPort`: how a zero-downtime switch points the
   * route at a new instance on another port (the plan then holds a single upstream swap).
   */
  ports?: Readonly<Record<string, number>>;
}

/** The part of a service a route is made from. */
export type RoutedService = Pick<Service, 'name' | 'http'>;

/**
 * The routes the deployer wants for `services` (normally this host's), most specific first: exact hosts before
 * wildcards, then deeper paths before shallower ones, so `/api` is tried before `/` on the same host. Services
 * without `http` get no route. `/` matches the whole host; `/api` matches `/api` and `/api/...` but not `/apix`.
 * Pure. Throws `CADDY_ROUTES_INVALID` listing every problem (bad name, domain, path, port, two services on one
 * domain + path) before anything is built.
 */
export function buildRoutes(
  services: readonly RoutedService[],
  options: BuildRoutesOptions = {},
): DesiredRoute[] {
  const prefix = options.idPrefix ?? DEFAULT_CADDY_ID_PREFIX;
  const ports = options.ports ?? {};
  const problems: string[] = [];
  if (!ID_PREFIX_RE.test(prefix))
    problems.push(
      `idPrefix: expected letters, digits, "_", "." or "-" ending in ":" (e.g. "omni-deploy:"), found ${describeValue(prefix)}`,
    );

  const routes: DesiredRoute[] = [];
  const names = new Set<string>();
  const places = new Map<string, string>();
  services.forEach((service, i) => {
    const at = `services[${i}]`;
    if (typeof service?.name !== 'string' || !SERVICE_NAME_RE.test(service.name)) {
      problems.push(
        `${at}.name: expected a service name (a-z, 0-9, "-"), found ${describeValue(service?.name)}`,
      );
      return;
    }
    if (names.has(service.name)) problems.push(`${at}.name: ${JSON.stringify(service.name)} appears twice`);
    names.add(service.name);
    const http = service.http;
    if (http === undefined) return;
    const domain = typeof http.domain === 'string' ? http.domain.toLowerCase() : '';
    if (domain.length > MAX_HOSTNAME_LENGTH || !DOMAIN_RE.test(domain))
      problems.push(`${at}.http.domain: expected a domain name, found ${describeValue(http.domain)}`);
    if (typeof http.path !== 'string' || !ROUTE_PATH_RE.test(http.path))
      problems.push(`${at}.http.path: expected "/" or a path like "/api", found ${describeValue(http.path)}`);
    const port = ports[service.name] ?? http.internalPort;
    if (!Number.isInteger(port) || port < 1024 || port > 65535)
      problems.push(`${at}: expected a port from 1024 to 65535 to dial, found ${describeValue(port)}`);
    const place = `${domain}${http.path === '/' ? '' : http.path}`;
    const other = places.get(place);
    if (other !== undefined) problems.push(`${at}.http: ${place} is already routed to service ${other}`);
    places.set(place, service.name);

    const id = `${prefix}${service.name}`;
    const proxyId = `${id}:proxy`;
    const dial = `127.0.0.1:${port}`;
    const match: CaddyRoute['match'][0] = { host: [domain] };
    // "/api" alone would miss "/api/x", and "/api*" would also catch "/apix".
    if (http.path !== '/') match.path = [http.path, `${http.path}/*`];
    routes.push({
      id,
      proxyId,
      service: service.name,
      domain,
      path: http.path,
      dial,
      route: {
        '@id': id,
        match: [match],
        handle: [{ '@id': proxyId, handler: 'reverse_proxy', upstreams: [{ dial }] }],
        terminal: true,
      },
    });
  });
  for (const name of Object.keys(ports)) {
    if (!names.has(name)) problems.push(`ports: ${JSON.stringify(name)} is not one of the services`);
  }
  if (problems.length > 0) {
    throw new DeployError(
      'CADDY_ROUTES_INVALID',
      `cannot build Caddy routes, ${problems.length} problem(s):\n${problems.join('\n')}`,
      { details: { problems } },
    );
  }
  return routes.sort(compareSpecificity);
}

function hostRank(domain: string): [number, number] {
  // Exact hosts first; among wildcards, the longer suffix is the more specific.
  return domain.startsWith('*.') ? [1, -domain.split('.').length] : [0, 0];
}

function depth(path: string): number {
  return path === '/' ? 0 : path.split('/').length - 1;
}

/** Most specific first (see {@link buildRoutes}); ties broken by text so the order is stable. */
function compareSpecificity(a: DesiredRoute, b: DesiredRoute): number {
  const [ka, la] = hostRank(a.domain);
  const [kb, lb] = hostRank(b.domain);
  return (
    ka - kb ||
    la - lb ||
    depth(b.path) - depth(a.path) ||
    compareText(a.domain, b.domain) ||
    compareText(a.path, b.path) ||
    compareText(a.service, b.service)
  );
}

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
