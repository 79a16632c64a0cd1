/**
 * Our routes written into a Caddy config before Caddy loads it (the host's adapted Caddyfile), instead of added
 * through the admin API afterwards: how a Caddy reload or restart keeps serving deployed sites without a gap.
 * Pure.
 */
import { isDeployError } from '../errors.js';
import { SERVICE_NAME_RE } from '../manifest/patterns.js';
import { isObject } from '../runtime/json.js';
import { sameJson } from './config-tree.js';
import { type CaddyRouteOptions, planRoutes, type RoutePlan, simulate } from './plan.js';
import { buildRoutes, DEFAULT_CADDY_ID_PREFIX, type DesiredRoute, type RoutedService } from './routes.js';

/** A config with our routes in it, and the plan that put them there. */
export interface MergedConfig {
  config: unknown;
  plan: RoutePlan;
}

/**
 * `config` with `desired` routed exactly as {@link planRoutes} would route them through the admin API (same
 * server choice, order and foreign-route rules; refused routes are in `plan.refused` and not in the config). The
 * input is not changed. Throws what `planRoutes` throws.
 */
export function mergeRoutes(
  desired: readonly DesiredRoute[],
  config: unknown,
  options: CaddyRouteOptions = {},
): MergedConfig {
  const plan = planRoutes(desired, config, options);
  const holder = { config: structuredClone(config ?? null) as unknown };
  for (const operation of plan.operations) simulate(holder, operation.request);
  return { config: holder.config, plan };
}

/**
 * The services behind the routes of ours that Caddy holds now (in any server), read back from the routes
 * themselves: name from the `@id`, domain and path from the matcher, port from the upstream. A route counts only
 * when {@link buildRoutes} rebuilds it exactly from what was read (anything edited by hand, or in another shape,
 * is left out), so what comes back is something the deployer itself routed. Pure; the config is untrusted.
 */
export function readOwnRoutes(config: unknown, idPrefix = DEFAULT_CADDY_ID_PREFIX): RoutedService[] {
  const http = isObject(config) && isObject(config.apps) ? config.apps.http : undefined;
  const servers = isObject(http) && isObject(http.servers) ? Object.values(http.servers) : [];
  const found: RoutedService[] = [];
  const names = new Set<string>();
  for (const server of servers) {
    if (!isObject(server) || !Array.isArray(server.routes)) continue;
    for (const route of server.routes) {
      const service = serviceOf(route, idPrefix);
      if (service === undefined || names.has(service.name)) continue;
      names.add(service.name);
      found.push(service);
    }
  }
  return found;
}

function serviceOf(route: unknown, idPrefix: string): RoutedService | undefined {
  if (!isObject(route) || typeof route['@id'] !== 'string' || !route['@id'].startsWith(idPrefix)) return;
  const name = route['@id'].slice(idPrefix.length);
  if (!SERVICE_NAME_RE.test(name)) return;
  const match = Array.isArray(route.match) && isObject(route.match[0]) ? route.match[0] : undefined;
  const handler = Array.isArray(route.handle) && isObject(route.handle[0]) ? route.handle[0] : undefined;
  const upstream =
    handler && Array.isArray(handler.upstreams) && isObject(handler.upstreams[0])
      ? handler.upstreams[0]
      : undefined;
  const domain = Array.isArray(match?.host) ? match.host[0] : undefined;
  const path = Array.isArray(match?.path) ? match.path[0] : '/';
  const port = /^127\.0\.0\.1:(\d{1,5})$/.exec(typeof upstream?.dial === 'string' ? upstream.dial : '')?.[1];
  if (typeof domain !== 'string' || typeof path !== 'string' || port === undefined) return;
  const service: RoutedService = { name, http: { domain, path, internalPort: Number(port) } };
  try {
    const [rebuilt] = buildRoutes([service], { idPrefix });
    return rebuilt !== undefined && sameJson(rebuilt.route, route) ? service : undefined;
  } catch (error) {
    // Not something buildRoutes makes (a bad domain, port or path): not ours to carry over.
    if (isDeployError(error, 'CADDY_ROUTES_INVALID')) return undefined;
    throw error;
  }
}
