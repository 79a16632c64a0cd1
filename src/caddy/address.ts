import { isIP } from 'node:net';
import { DeployError } from '../errors.js';
import { describeValue } from '../manifest/describe.js';
import { CONTROL_CHARS_RE } from '../manifest/patterns.js';

/** Caddy's default admin address. */
export const DEFAULT_CADDY_ADMIN_ADDRESS = 'localhost:2019';

/** Where the admin API listens: a TCP host and port, or a unix socket. */
export type CaddyAdminEndpoint =
  | { kind: 'tcp'; host: string; port: number; loopback: boolean }
  | { kind: 'unix'; socketPath: string };

/** Options of {@link parseCaddyAdminAddress}. */
export interface CaddyAdminAddressOptions {
  /**
   * Accept a TCP address that is not loopback. The admin API has no authentication by default and can replace
   * the whole server config, so reaching it over a network is a decision to make explicitly.
   */
  allowRemote?: boolean;
}

const HOST_RE =
  /^(?:localhost|[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*)$/;

function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  if (isIP(host) === 6) return host === '::1' || /^(?:0{1,4}:){7}0{0,3}1$/.test(host);
  return false;
}

function refuse(address: string, why: string): never {
  throw new DeployError('CADDY_ADDRESS', `invalid Caddy admin address ${describeValue(address)}: ${why}`, {
    details: { address },
  });
}

/**
 * Parses an admin address the way Caddy writes them: `localhost:2019`, `127.0.0.1:2019`, `[::1]:2019`,
 * `http://localhost:2019`, `tcp/localhost:2019`, or a unix socket `unix//run/caddy/admin.sock` (an absolute
 * path). Pure. Throws `CADDY_ADDRESS` for anything else, and for a non-loopback TCP host unless `allowRemote`:
 * `localhost` counts as loopback, `0.0.0.0` and other host names do not.
 */
export function parseCaddyAdminAddress(
  address: string,
  options: CaddyAdminAddressOptions = {},
): CaddyAdminEndpoint {
  if (typeof address !== 'string' || address === '') refuse(String(address), 'expected a non-empty string');
  if (/\s/.test(address) || CONTROL_CHARS_RE.test(address))
    refuse(address, 'it contains whitespace or control characters');

  if (address.startsWith('unix/')) {
    const socketPath = address.slice('unix/'.length);
    if (!socketPath.startsWith('/'))
      refuse(address, 'a unix socket needs an absolute path, e.g. unix//run/caddy/admin.sock');
    if (socketPath.split('/').some((segment) => segment === '..'))
      refuse(address, 'the socket path must not contain ".." segments');
    return { kind: 'unix', socketPath };
  }

  let rest = address;
  if (rest.startsWith('https://'))
    refuse(address, 'the admin API is reached over plain HTTP (loopback) or a unix socket, not https');
  if (rest.startsWith('http://')) rest = rest.slice('http://'.length).replace(/\/$/, '');
  else if (rest.startsWith('tcp/')) rest = rest.slice('tcp/'.length);

  const match = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:/@[\]]+))(?::(\d{1,5}))?$/.exec(rest);
  if (!match) refuse(address, 'expected host:port, [ipv6]:port, http://host:port or unix//absolute/path');
  const host = (match[1] ?? match[2]) as string;
  if (match[1] !== undefined ? isIP(host) !== 6 : isIP(host) === 0 && !HOST_RE.test(host))
    refuse(address, `${describeValue(host)} is not a host name or IP address`);
  const port = match[3] === undefined ? 2019 : Number(match[3]);
  if (port < 1 || port > 65535) refuse(address, `port ${port} is outside 1-65535`);
  const loopback = isLoopback(host);
  if (!loopback && !options.allowRemote) {
    refuse(
      address,
      `${host} is not a loopback address; the admin API can rewrite the whole server config, so only 127.0.0.0/8, ::1, localhost or a unix socket are accepted unless remote access is explicitly allowed`,
    );
  }
  return { kind: 'tcp', host, port, loopback };
}

/** An endpoint written back as an address (`127.0.0.1:2019`, `[::1]:2019`, `unix//run/caddy/admin.sock`). */
export function formatCaddyAdminEndpoint(endpoint: CaddyAdminEndpoint): string {
  if (endpoint.kind === 'unix') return `unix/${endpoint.socketPath}`;
  return isIP(endpoint.host) === 6
    ? `[${endpoint.host}]:${endpoint.port}`
    : `${endpoint.host}:${endpoint.port}`;
}
