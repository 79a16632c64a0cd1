/**
 * Which HTTP server of Caddy's config holds our routes when none is named (`server: 'auto'`): found in the live
 * config, so a stock Caddy (Debian's `:80` site, a Caddyfile with HTTPS sites, an empty Caddy) needs no setting.
 */
import { isObject } from '../runtime/json.js';

/** The `server` value that asks for discovery ({@link chooseCaddyServer}) instead of a fixed name. */
export const AUTO_CADDY_SERVER = 'auto';

/** The name of the server created when Caddy has none to use. */
export const CREATED_CADDY_SERVER = 'omni';

/** Where a created server listens unless told otherwise: HTTPS, with Caddy's automatic certificates and redirects. */
export const DEFAULT_CADDY_LISTEN: readonly string[] = [':443'];

/** The server chosen, and why (for logs and `renderRoutePlan`). */
export interface ServerChoice {
  name: string;
  /** `named` (given), `ours` (holds our routes), `omni` (the server we create), `https`, `http`, `create`. */
  reason: 'named' | 'ours' | 'omni' | 'https' | 'http' | 'create';
  /** One line for people: `srv0 (listens on :80)`. */
  summary: string;
}

/** A port range `[from, to]` a listen address covers, `undefined` for unix sockets, fds and what does not parse. */
export function listenPortRange(address: unknown): [number, number] | undefined {
  if (typeof address !== 'string' || address.length > 300) return undefined;
  let rest = address;
  const slash = rest.indexOf('/');
  if (slash !== -1) {
    const network = rest.slice(0, slash).toLowerCase();
    // tcp, tcp4, tcp6, udp, udp4, udp6 carry a port; unix, unixgram, unixpacket, fd and fdgram do not.
    if (!/^(?:tcp|udp)[46]?$/.test(network)) return undefined;
    rest = rest.slice(slash + 1);
  }
  const match = /^(?:\[[0-9A-Fa-f:.%\w-]*\]|[^:[\]/]*):(\d{1,5})(?:-(\d{1,5}))?$/.exec(rest);
  if (!match) return undefined;
  const from = Number(match[1]);
  const to = match[2] === undefined ? from : Number(match[2]);
  if (from < 1 || to > 65535 || to < from) return undefined;
  return [from, to];
}

/** True when one of `listen` covers `port`. */
function listensOn(listen: unknown, port: number): boolean {
  if (!Array.isArray(listen)) return false;
  return listen.some((address) => {
    const range = listenPortRange(address);
    return range !== undefined && range[0] <= port && port <= range[1];
  });
}

function portSetting(value: unknown, fallback: number): number {
  return typeof value === 'number' && Number.isInteger(value) && value > 0 && value <= 65535
    ? value
    : fallback;
}

/**
 * The server our routes go into. A `server` other than {@link AUTO_CADDY_SERVER} is used as given. Otherwise,
 * in this order: the server that already holds routes with our id prefix (they stay where they are); a server
 * named {@link CREATED_CADDY_SERVER} (the one we create, or one an operator made for us); the first server
 * listening on Caddy's HTTPS port (`apps.http.https_port`, default 443); the first listening on its HTTP port
 * (`http_port`, default 80); else {@link CREATED_CADDY_SERVER}, to be created. Servers are taken in the
 * config's order (a Caddyfile's `srv0`, `srv1`, ...). Pure; never throws (the config is untrusted: anything
 * unexpected reads as "no such server").
 */
export function chooseCaddyServer(config: unknown, server: string, idPrefix: string): ServerChoice {
  if (server !== AUTO_CADDY_SERVER) return { name: server, reason: 'named', summary: server };
  const http = isObject(config) && isObject(config.apps) ? config.apps.http : undefined;
  const servers = isObject(http) && isObject(http.servers) ? Object.entries(http.servers) : [];
  const ours = servers.find(
    ([, value]) =>
      isObject(value) &&
      Array.isArray(value.routes) &&
      value.routes.some(
        (route) => isObject(route) && typeof route['@id'] === 'string' && route['@id'].startsWith(idPrefix),
      ),
  );
  if (ours) return { name: ours[0], reason: 'ours', summary: `${ours[0]} (holds our routes)` };
  if (servers.some(([name, value]) => name === CREATED_CADDY_SERVER && isObject(value)))
    return { name: CREATED_CADDY_SERVER, reason: 'omni', summary: CREATED_CADDY_SERVER };
  const httpsPort = portSetting(isObject(http) ? http.https_port : undefined, 443);
  const httpPort = portSetting(isObject(http) ? http.http_port : undefined, 80);
  for (const [port, reason] of [
    [httpsPort, 'https'],
    [httpPort, 'http'],
  ] as const) {
    const found = servers.find(([, value]) => isObject(value) && listensOn(value.listen, port));
    if (found) return { name: found[0], reason, summary: `${found[0]} (listens on :${port})` };
  }
  return {
    name: CREATED_CADDY_SERVER,
    reason: 'create',
    summary: `${CREATED_CADDY_SERVER} (Caddy has no server on :${httpsPort} or :${httpPort}: created)`,
  };
}
