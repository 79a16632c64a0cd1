import { DeployError, isDeployError } from '../errors.js';
import type { CaddyAdmin } from './admin.js';
import { sameJson } from './config-tree.js';
import {
  type CaddyAdminRequest,
  type CaddyRouteOptions,
  planRoutes,
  type RouteOperation,
  type RoutePlan,
  simulate,
} from './plan.js';
import type { DesiredRoute } from './routes.js';

/** Caddy's whole config as read at one moment, with the ETag that names that moment (if Caddy sent one). */
export interface CaddySnapshot {
  config: unknown;
  etag: string | undefined;
}

/** What reconciling reports through `onEvent`. */
export type CaddyEvent =
  | { type: 'caddy-plan'; attempt: number; plan: RoutePlan }
  | { type: 'caddy-request'; attempt: number; operation: RouteOperation }
  | { type: 'caddy-retry'; attempt: number; reason: string };

/** Options of {@link reconcileRoutes} and {@link applyRoutePlan}. */
export interface ReconcileRoutesOptions extends CaddyRouteOptions {
  onEvent?: (event: CaddyEvent) => void;
  /** How many times to re-read, re-plan and retry after another writer got in the way. Default 1. */
  retries?: number;
}

/** Counts of one apply: every admin API request, and the mutating ones among them. */
export interface CaddyRequestCounts {
  requests: number;
  mutations: number;
}

/** What {@link reconcileRoutes} did. `plan` is the last one planned (empty when Caddy was already in sync). */
export interface ReconcileRoutesResult extends CaddyRequestCounts {
  plan: RoutePlan;
  attempts: number;
}

/** One `GET /config/`: the whole config and its ETag. */
export async function readCaddyConfig(admin: CaddyAdmin): Promise<CaddySnapshot> {
  const { value, etag } = await admin.get({ path: [] });
  return { config: value, etag };
}

function send(admin: CaddyAdmin, request: CaddyAdminRequest, ifMatch: string | undefined): Promise<void> {
  const write = ifMatch === undefined ? {} : { ifMatch };
  switch (request.method) {
    case 'PUT':
      return admin.put(request.target, request.value, write);
    case 'POST':
      // The planner only POSTs to config paths (appending to the routes array), never to an @id.
      return admin.post('path' in request.target ? (request.target.path ?? []) : [], request.value, write);
    case 'PATCH':
      return admin.patch(request.target, request.value, write);
    case 'DELETE':
      return admin.delete(request.target, write);
  }
}

function conflict(address: string, reason: string, details: unknown, cause?: unknown): DeployError {
  return new DeployError('CADDY_CONFLICT', `Caddy admin API ${address}: ${reason}`, { cause, details });
}

/**
 * Sends a plan's requests in order, each with `If-Match` from the latest read when Caddy gave an ETag, and
 * re-reads after each one to check Caddy now holds exactly what the request should have produced (the only
 * protection on a Caddy that sends no ETag, and the source of the next ETag). Throws `CADDY_CONFLICT` when
 * another writer got in between (412, an id gone, or a different config after the write): re-read and re-plan.
 * Other errors (`CADDY_REJECTED`, `CADDY_UNREACHABLE`) leave the requests sent so far in place; the next
 * reconcile continues from there.
 */
export async function applyRoutePlan(
  plan: RoutePlan,
  snapshot: CaddySnapshot,
  admin: CaddyAdmin,
  options: Pick<ReconcileRoutesOptions, 'onEvent'> = {},
): Promise<CaddyRequestCounts> {
  const counts = { requests: 0, mutations: 0 };
  await sendPlan(plan, snapshot, admin, counts, 1, options.onEvent);
  return counts;
}

/** {@link applyRoutePlan}, adding to `counts` as it goes so a failed attempt is counted too. */
async function sendPlan(
  plan: RoutePlan,
  snapshot: CaddySnapshot,
  admin: CaddyAdmin,
  counts: CaddyRequestCounts,
  attempt: number,
  onEvent: ReconcileRoutesOptions['onEvent'],
): Promise<void> {
  let current = snapshot;
  for (const operation of plan.operations) {
    const expected = { config: structuredClone(current.config) };
    simulate(expected, operation.request);
    try {
      counts.requests++;
      counts.mutations++;
      await send(admin, operation.request, current.etag);
    } catch (error) {
      if (isDeployError(error, 'CADDY_CONFLICT') || isDeployError(error, 'CADDY_NOT_FOUND')) {
        throw conflict(
          admin.address,
          `config changed by another writer before: ${operation.summary}`,
          { operation },
          error,
        );
      }
      throw error;
    }
    counts.requests++;
    const after = await readCaddyConfig(admin);
    if (!sameJson(after.config, expected.config)) {
      throw conflict(
        admin.address,
        `config after "${operation.summary}" is not what it should be: another writer changed it`,
        { operation },
      );
    }
    current = after;
    onEvent?.({ type: 'caddy-request', attempt, operation });
  }
}

/**
 * Makes Caddy serve exactly `desired` among the routes with our id prefix, leaving every other object alone:
 * read the config (one GET), plan, apply with verification. When Caddy is already in sync this is that one GET
 * and zero mutating requests, so it is the deployer's drift check on every tick as well as its apply: a Caddy
 * restarted without `--resume`, or a route edited by hand, is restored by the next call. After a conflict with
 * another writer it re-reads and re-plans up to `retries` times (default 1), then throws `CADDY_CONFLICT`.
 */
export async function reconcileRoutes(
  admin: CaddyAdmin,
  desired: readonly DesiredRoute[],
  options: ReconcileRoutesOptions = {},
): Promise<ReconcileRoutesResult> {
  const retries = options.retries ?? 1;
  const total = { requests: 0, mutations: 0 };
  for (let attempt = 1; ; attempt++) {
    const snapshot = await readCaddyConfig(admin);
    total.requests++;
    const plan = planRoutes(desired, snapshot.config, options);
    options.onEvent?.({ type: 'caddy-plan', attempt, plan });
    if (plan.operations.length === 0) return { plan, attempts: attempt, ...total };
    try {
      await sendPlan(plan, snapshot, admin, total, attempt, options.onEvent);
      return { plan, attempts: attempt, ...total };
    } catch (error) {
      if (!isDeployError(error, 'CADDY_CONFLICT')) throw error;
      if (attempt > retries) {
        throw new DeployError(
          'CADDY_CONFLICT',
          `${error.message}; gave up after ${attempt} attempt(s) (another writer keeps changing Caddy's config)`,
          { cause: error, details: error.details },
        );
      }
      options.onEvent?.({ type: 'caddy-retry', attempt, reason: error.message });
    }
  }
}

/**
 * The drift check without repair: one GET, and the plan that {@link reconcileRoutes} would apply (empty when in
 * sync). For `deployer status` and dry runs.
 */
export async function checkRoutes(
  admin: CaddyAdmin,
  desired: readonly DesiredRoute[],
  options: CaddyRouteOptions = {},
): Promise<{ plan: RoutePlan; snapshot: CaddySnapshot }> {
  const snapshot = await readCaddyConfig(admin);
  return { plan: planRoutes(desired, snapshot.config, options), snapshot };
}
