/**
 * How a changed service is replaced (its update strategy) and which ports it binds: the rules that decide
 * whether an HTTP service gets a blue/green update (the new version started beside the old one on a second
 * port, then Caddy switches) or a restart in place, and the checks that keep every port of every service on
 * a host distinct. Pure; the functions take a loosely typed service so the validator can run them on input it
 * has not accepted yet (see docs/manifest.md#updates).
 */
import { isObject } from '../runtime/json.js';
import { describeValue, formatPath } from './describe.js';
import type { Service, UpdateStrategy } from './schema.js';

/** One issue, as `ManifestIssue` in validate.ts (which imports this file, so the type is restated here). */
interface ManifestIssue {
  path: string;
  message: string;
}

/** The environment variable a service reads its port from when `http.portEnv` names none. */
export const DEFAULT_PORT_ENV = 'PORT';

/** The second port is `internalPort` plus this, or minus it when the sum would pass 65535. */
export const SECOND_PORT_OFFSET = 10_000;

/** The parts of a service the rules read, loosely typed (raw manifest input passes through here too). */
type LooseService = Pick<Service, 'name'> | Record<string, unknown>;

interface PortFacts {
  internalPort: number;
  portEnv: string;
  /** `http.secondPort` as written, if it is. */
  secondPort: number | undefined;
}

function httpOf(service: LooseService): PortFacts | undefined {
  const http = (service as Record<string, unknown>).http;
  if (!isObject(http) || typeof http.internalPort !== 'number') return undefined;
  return {
    internalPort: http.internalPort,
    portEnv: typeof http.portEnv === 'string' ? http.portEnv : DEFAULT_PORT_ENV,
    secondPort: typeof http.secondPort === 'number' ? http.secondPort : undefined,
  };
}

function envOf(service: LooseService): Record<string, unknown> {
  const env = (service as Record<string, unknown>).env;
  return isObject(env) ? env : {};
}

function argsOf(service: LooseService): unknown[] {
  const exec = (service as Record<string, unknown>).exec;
  return isObject(exec) && Array.isArray(exec.args) ? exec.args : [];
}

function declaredUpdate(service: LooseService): UpdateStrategy | undefined {
  const update = (service as Record<string, unknown>).update;
  return update === 'restart' || update === 'blue-green' || update === 'overlap' ? update : undefined;
}

/** The second port derived from `internalPort`: +10000, or −10000 when that would pass 65535. */
export function deriveSecondPort(internalPort: number): number {
  return internalPort + SECOND_PORT_OFFSET <= 65_535
    ? internalPort + SECOND_PORT_OFFSET
    : internalPort - SECOND_PORT_OFFSET;
}

/** The environment variable the deployer sets to each instance's port (`http.portEnv`, default `PORT`). */
export function portEnvOf(service: LooseService): string {
  return httpOf(service)?.portEnv ?? DEFAULT_PORT_ENV;
}

/** The port a blue/green update starts the new version on: `http.secondPort`, or {@link deriveSecondPort}. */
export function secondPortOf(service: LooseService): number | undefined {
  const http = httpOf(service);
  return http && (http.secondPort ?? deriveSecondPort(http.internalPort));
}

/**
 * The index of the first argument that names `port` (`8010`, `--port=8010`, `127.0.0.1:8010`), or -1: such a
 * program would listen on that port whatever its environment says.
 */
function argNamingPort(args: readonly unknown[], port: number): number {
  const text = String(port);
  return args.findIndex(
    (arg) =>
      typeof arg === 'string' && (arg === text || arg.endsWith(`=${text}`) || arg.endsWith(`:${text}`)),
  );
}

/**
 * How a new version of `service` replaces the running one. `update` decides when given; otherwise a service
 * with `http` whose environment sets its port variable to `http.internalPort` (and whose arguments do not name
 * the port) gets `blue-green`, every other service `restart`.
 */
export function updateStrategy(service: LooseService): UpdateStrategy {
  const declared = declaredUpdate(service);
  if (declared) return declared;
  const http = httpOf(service);
  if (!http) return 'restart';
  const readsPort = envOf(service)[http.portEnv] === String(http.internalPort);
  return readsPort && argNamingPort(argsOf(service), http.internalPort) === -1 ? 'blue-green' : 'restart';
}

/** Why {@link updateStrategy} chose what it chose, in one phrase (for `deployer plan` and messages). */
export function describeUpdate(service: LooseService): string {
  const strategy = updateStrategy(service);
  const http = httpOf(service);
  const declared = declaredUpdate(service) !== undefined;
  if (strategy === 'blue-green' && http)
    return `blue/green: the new version starts on port ${secondPortOf(service)} beside the running one, Caddy switches to it, then it moves back to ${http.internalPort}`;
  if (strategy === 'overlap')
    return 'overlap: the new version starts beside the running one, which stops once the new one is healthy';
  if (declared || !http) return 'restart in place';
  const where =
    envOf(service)[http.portEnv] === String(http.internalPort)
      ? `exec.args names port ${http.internalPort}`
      : `env.${http.portEnv} is not "${http.internalPort}"`;
  return `restart in place (${where})`;
}

/** Every port `service` binds on its hosts: `http.internalPort`, and the second port under blue/green. */
export function servicePorts(service: LooseService): number[] {
  const http = httpOf(service);
  if (!http) return [];
  return updateStrategy(service) === 'blue-green'
    ? [http.internalPort, secondPortOf(service) as number]
    : [http.internalPort];
}

/**
 * The service as one of its instances runs it: under blue/green the port variable is the deployer's, set to
 * `port` (every other value stays exactly as written); any other strategy returns `service` itself.
 */
export function instanceService(service: Service, port: number): Service {
  if (updateStrategy(service) !== 'blue-green') return service;
  const key = portEnvOf(service);
  if (service.env?.[key] === String(port)) return service;
  return { ...service, env: { ...service.env, [key]: String(port) } };
}

/**
 * The update rules of one service (raw input, `services[i]`): a strategy that fits the service, a port
 * variable that does not contradict `internalPort`, no argument naming the port under blue/green, no second
 * port that nothing uses, a second port that is not the first. Appends to `issues`.
 */
export function checkUpdate(service: Record<string, unknown>, i: number, issues: ManifestIssue[]): void {
  const at = (...keys: (string | number)[]) => formatPath(['services', i, ...keys]);
  const declared = declaredUpdate(service);
  const http = httpOf(service);
  const rawHttp = isObject(service.http) ? service.http : undefined;
  if (declared === 'blue-green' && !rawHttp)
    issues.push({
      path: at('update'),
      message:
        'expected "restart" or "overlap" for a service without http: "blue-green" moves Caddy\'s traffic, and this service has none',
    });
  if (declared === 'overlap' && rawHttp)
    issues.push({
      path: at('update'),
      message:
        'expected "blue-green" or "restart" for a service with http: two copies cannot listen on one port, so "overlap" is for services without http',
    });
  if (!http) return;
  const strategy = updateStrategy(service);
  const value = envOf(service)[http.portEnv];
  if (declared === 'blue-green' && value !== undefined && value !== String(http.internalPort))
    issues.push({
      path: at('env', http.portEnv),
      message: `expected "${http.internalPort}" (http.internalPort) or no value: under blue/green updates the deployer sets ${http.portEnv} for each instance, found ${describeValue(value)}`,
    });
  const named = argNamingPort(argsOf(service), http.internalPort);
  if (declared === 'blue-green' && named !== -1)
    issues.push({
      path: at('exec', 'args', named),
      message: `names port ${http.internalPort} while update is "blue-green": the second instance would listen on it too; read the port from env.${http.portEnv} instead, or use update "restart"`,
    });
  if (strategy !== 'blue-green') {
    const why = declared
      ? `update is "${declared}"`
      : `env.${http.portEnv} is not "${http.internalPort}"${named === -1 ? '' : ` or exec.args names the port`}`;
    for (const key of ['secondPort', 'portEnv'] as const) {
      if (rawHttp?.[key] === undefined) continue;
      issues.push({
        path: at('http', key),
        message: `only used by blue/green updates, and this service restarts in place (${why}); set env.${http.portEnv} to "${http.internalPort}", or remove ${key}`,
      });
    }
  }
  if (http.secondPort === http.internalPort)
    issues.push({
      path: at('http', 'secondPort'),
      message: `expected a port other than http.internalPort (${http.internalPort}): the new version listens there while the old one still does`,
    });
}

/** What a port on a host is already used for, while {@link claimPorts} walks the services. */
export interface PortClaim {
  service: number;
  second: boolean;
}

/**
 * Claims the ports of `services[i]` on each of its `hosts` in `taken` (`host:port` → first claim), adding an
 * issue for each port another service (or the service itself) already uses: internal ports and, for blue/green
 * services, second ports alike. `label(j)` names `services[j]` in messages.
 */
export function claimPorts(
  service: Record<string, unknown>,
  i: number,
  hosts: readonly string[],
  taken: Map<string, PortClaim>,
  label: (j: number) => string,
  issues: ManifestIssue[],
): void {
  const http = httpOf(service);
  if (!http) return;
  const ports: { port: number; second: boolean }[] = [{ port: http.internalPort, second: false }];
  if (updateStrategy(service) === 'blue-green') {
    const second = secondPortOf(service) as number;
    // Equal to internalPort is checkUpdate's issue; counting it here would report it twice.
    if (second !== http.internalPort) ports.push({ port: second, second: true });
  }
  for (const host of hosts) {
    for (const { port, second } of ports) {
      const key = `${host}:${port}`;
      const first = taken.get(key);
      if (first === undefined) {
        taken.set(key, { service: i, second });
        continue;
      }
      const owner = `${label(first.service)}${first.second ? ' as its second port (blue/green updates)' : ''}`;
      if (!second) {
        issues.push({
          path: `services[${i}].http.internalPort`,
          message: `port ${port} on host ${host} is already used by ${owner}`,
        });
      } else {
        const rule =
          http.secondPort === undefined
            ? ` (derived: internalPort ${port > http.internalPort ? '+' : '-'} ${SECOND_PORT_OFFSET})`
            : '';
        issues.push({
          path: `services[${i}].http${http.secondPort === undefined ? '' : '.secondPort'}`,
          message: `second port ${port}${rule} on host ${host} is already used by ${owner}; set http.secondPort to a free port, or update "restart"`,
        });
      }
    }
  }
}
