import { reconcileRoutes } from '../caddy/reconcile.js';
import { buildRoutes, type RoutedService } from '../caddy/routes.js';
import type { ServiceHttp } from '../manifest/schema.js';
import type { DeployerContext } from './context.js';
import type { DeployerState } from './state.js';

/**
 * Puts back the unit files of the services the state says run, when they are missing (after a reboot: the
 * runtime units directory is empty) or changed by someone else, then reloads and (re)starts exactly those.
 * Reads files only when nothing drifted: no subprocess on an idle tick. Works without S3, so a host that
 * reboots while the bucket is unreachable serves its last known-good set.
 */
export async function repairUnits(ctx: DeployerContext, state: DeployerState): Promise<string[]> {
  const { systemd } = ctx.adapters;
  const repaired: string[] = [];
  for (const [name, record] of Object.entries(state.services)) {
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
  }
  if (repaired.length === 0) return repaired;
  await systemd.daemonReload();
  for (const name of repaired) {
    const unit = state.services[name]?.unitName as string;
    await systemd.enable(unit);
    await systemd.restart(unit);
  }
  return repaired;
}

/** The Caddy routes the state calls for: every service with `http` that is not known to be unhealthy. */
export function routedServices(state: DeployerState): RoutedService[] {
  return Object.entries(state.services)
    .filter(([, record]) => record.route !== undefined && record.health !== 'unhealthy')
    .map(([name, record]) => ({ name, http: record.route as ServiceHttp }));
}

/**
 * Makes Caddy hold exactly our routes for the state's services (level-triggered: also repairs routes lost to a
 * Caddy restart or edited by someone else). One GET and no write when in sync.
 */
export async function reconcileCaddy(
  ctx: DeployerContext,
  state: DeployerState,
): Promise<{ requests: number; mutations: number }> {
  const admin = ctx.adapters.caddy;
  if (!admin) return { requests: 0, mutations: 0 };
  const result = await reconcileRoutes(admin, buildRoutes(routedServices(state)), {
    server: ctx.settings.caddyServer,
    onEvent: (e) => {
      if (e.kind === 'caddy-request') {
        ctx.onEvent({ level: 'info', type: 'routes.change', message: `caddy: ${e.operation.summary}` });
      } else if (e.kind === 'caddy-retry') {
        ctx.onEvent({ level: 'warn', type: 'routes.retry', message: `caddy: ${e.reason}; re-planning` });
      }
    },
  });
  return { requests: result.requests, mutations: result.mutations };
}
