import { reconcileRoutes } from '../caddy/reconcile.js';
import { buildRoutes, type RoutedService } from '../caddy/routes.js';
import { DEFAULT_CADDY_LISTEN } from '../caddy/server.js';
import { isDeployError } from '../errors.js';
import type { ServiceHttp } from '../manifest/schema.js';
import { gate } from './apply.js';
import type { DeployerContext } from './context.js';
import { liveInstance } from './live.js';
import type { DeployerState, ServiceRecord } from './state.js';

/**
 * Level-triggered repair of what the state says runs, before polling (so it works without S3: a host that
 * reboots while the bucket is unreachable serves its last known-good set):
 * - unit files that are missing (after a reboot the runtime units directory is empty) or were changed by
 *   someone else are rewritten from the state, then those services are restarted and health-gated;
 * - services recorded as unhealthy are checked again (restarted if they are not running), so one that
 *   recovers gets its route back without a manifest change.
 * Each service is handled on its own: one that cannot be restored is marked unhealthy and the others go on.
 * Only file reads when everything is in order: no subprocess on an idle tick.
 */
export async function repairUnits(
  ctx: DeployerContext,
  state: DeployerState,
): Promise<{ repaired: string[]; state: DeployerState }> {
  const { systemd } = ctx.adapters;
  const next: DeployerState = structuredClone(state);
  const repaired: string[] = [];
  const failed = (name: string, what: string, error: unknown) => {
    if (!isDeployError(error)) throw error;
    ctx.onEvent({
      level: 'error',
      type: 'drift.repair-failed',
      service: name,
      message: `${what}: ${error.message}`,
    });
    (next.services[name] as ServiceRecord).health = 'unhealthy';
  };
  for (const [name, record] of Object.entries(next.services)) {
    // A switch under way is finished or undone by recoverSwitches, which knows what the unit must hold.
    if (record.switch) continue;
    try {
      const text = await systemd.readUnit(record.unitName);
      if (text === record.unitText) continue;
      await systemd.installUnit({ name: record.unitName, text: record.unitText });
      ctx.onEvent({
        level: 'warn',
        type: text === undefined ? 'drift.unit-missing' : 'drift.unit-changed',
        service: name,
        message:
          text === undefined
            ? `unit ${record.unitName} missing (reboot?); restored from local state`
            : `unit ${record.unitName} was changed on disk; restored`,
      });
      repaired.push(name);
    } catch (error) {
      failed(name, `could not restore unit ${record.unitName}`, error);
    }
  }
  const recheck = Object.entries(next.services)
    .filter(([name, r]) => r.health === 'unhealthy' && !r.switch && !repaired.includes(name))
    .map(([name]) => name);
  if (repaired.length === 0 && recheck.length === 0) return { repaired, state: next };
  if (repaired.length) {
    try {
      await systemd.daemonReload();
    } catch (error) {
      for (const name of repaired) failed(name, 'daemon-reload failed', error);
      return { repaired, state: next };
    }
  }
  await Promise.all(
    [...repaired, ...recheck].map(async (name) => {
      const record = next.services[name] as ServiceRecord;
      try {
        if (repaired.includes(name)) {
          await systemd.enable(record.unitName);
          await systemd.restart(record.unitName);
        } else if ((await systemd.status(record.unitName)).activeState !== 'active') {
          await systemd.restart(record.unitName);
        }
        const verdict = await gate(ctx, record.unitName, record.route as ServiceHttp | undefined);
        record.health = verdict.healthy ? 'healthy' : 'unhealthy';
        if (!verdict.healthy)
          ctx.onEvent({
            level: 'error',
            type: 'drift.unhealthy',
            service: name,
            message: `${record.storePath} is not healthy: ${verdict.reason}`,
          });
        else if (recheck.includes(name))
          ctx.onEvent({
            level: 'info',
            type: 'drift.recovered',
            service: name,
            message: `${record.storePath} is healthy again`,
          });
      } catch (error) {
        failed(name, `could not start ${record.unitName}`, error);
      }
    }),
  );
  return { repaired, state: next };
}

/**
 * Stops and removes units of ours (by name prefix) that neither the state nor the plan knows: left by a
 * deployer killed between starting a new service and saving its state, whose manifest has since dropped it.
 * A directory listing only, unless there is something to remove.
 */
export async function removeOrphans(ctx: DeployerContext, known: ReadonlySet<string>): Promise<string[]> {
  const { systemd } = ctx.adapters;
  const orphans = (await systemd.listUnits()).filter((unit) => !known.has(unit));
  for (const unit of orphans) {
    try {
      await systemd.stop(unit);
      await systemd.disable(unit);
      await systemd.removeUnit(unit);
      ctx.onEvent({
        level: 'warn',
        type: 'drift.orphan-removed',
        message: `unit ${unit} was not in the state or the manifest; stopped and removed`,
      });
    } catch (error) {
      if (!isDeployError(error)) throw error;
      ctx.onEvent({
        level: 'error',
        type: 'drift.orphan-failed',
        message: `could not remove unit ${unit}: ${error.message}`,
      });
    }
  }
  if (orphans.length) await systemd.daemonReload();
  return orphans;
}

/**
 * The services whose routes Caddy should hold: every service with `http` that is not known to be unhealthy.
 * Two services can claim the same domain and path for a while (a rolled-back service still on `/` that the
 * manifest gave to a new one); the most recently activated wins and the other is returned as `shadowed`, so
 * one conflict never takes every route down.
 */
export function routedServices(state: DeployerState): {
  services: RoutedService[];
  shadowed: string[];
  /** The port each routed service's live instance listens on (a switch under way: its candidate's). */
  ports: Record<string, number>;
} {
  const candidates = Object.entries(state.services)
    .map(([name, record]) => [name, record, liveInstance(record)] as const)
    .filter(([, record, live]) => live.http !== undefined && record.health !== 'unhealthy')
    .sort(([, a], [, b]) => (a.since < b.since ? 1 : a.since > b.since ? -1 : 0));
  const taken = new Set<string>();
  const services: RoutedService[] = [];
  const shadowed: string[] = [];
  const ports: Record<string, number> = {};
  for (const [name, , live] of candidates) {
    const http = live.http as ServiceHttp;
    const place = `${http.domain.toLowerCase()}${http.path}`;
    if (taken.has(place)) shadowed.push(name);
    else {
      taken.add(place);
      services.push({ name, http });
      if (live.port !== undefined && live.port !== http.internalPort) ports[name] = live.port;
    }
  }
  return { services: services.sort((a, b) => (a.name < b.name ? -1 : 1)), shadowed, ports };
}

/** A route of ours that Caddy was not given: a route of someone else's names its domain. */
export interface RouteRefusal {
  service: string;
  domain: string;
  path: string;
  message: string;
}

/**
 * Makes Caddy hold exactly our routes for the state's services (level-triggered: also repairs routes lost to a
 * Caddy restart or edited by someone else). One GET and no write when in sync. A route whose domain a route of
 * someone else's names is not routed (that route is left alone) and is returned in `refused`.
 */
export async function reconcileCaddy(
  ctx: DeployerContext,
  state: DeployerState,
): Promise<{ requests: number; mutations: number; refused: RouteRefusal[] }> {
  const admin = ctx.adapters.caddy;
  if (!admin) return { requests: 0, mutations: 0, refused: [] };
  const { services, shadowed, ports } = routedServices(state);
  for (const name of shadowed) {
    ctx.onEvent({
      level: 'warn',
      type: 'routes.shadowed',
      service: name,
      message: 'not routed: a more recently activated service serves the same domain and path',
    });
  }
  const result = await reconcileRoutes(admin, buildRoutes(services, { ports }), {
    server: ctx.settings.caddyServer,
    listen: ctx.settings.caddyListen ?? DEFAULT_CADDY_LISTEN,
    onEvent: (e) => {
      if (e.type === 'caddy-plan' && e.plan.operations.length > 0) {
        ctx.onEvent({
          level: 'info',
          type: 'routes.server',
          message: `caddy: routes in server ${e.plan.discovered ?? e.plan.server}`,
        });
      } else if (e.type === 'caddy-request') {
        ctx.onEvent({ level: 'info', type: 'routes.change', message: `caddy: ${e.operation.summary}` });
      } else if (e.type === 'caddy-retry') {
        ctx.onEvent({ level: 'warn', type: 'routes.retry', message: `caddy: ${e.reason}; re-planning` });
      }
    },
  });
  const refused = result.plan.refused.map(({ service, domain, path, message }) => ({
    service,
    domain,
    path,
    message,
  }));
  for (const r of refused)
    ctx.onEvent({
      level: 'error',
      type: 'routes.refused',
      service: r.service,
      message: `route not given to Caddy (rule route.foreign-host): ${r.message}`,
    });
  return { requests: result.requests, mutations: result.mutations, refused };
}
