import { isDeployError } from '../errors.js';
import type { ServiceHttp } from '../manifest/schema.js';
import { serviceLayout } from '../nix/layout.js';
import { pinServiceVersion } from '../nix/pin.js';
import { checkHostFacts, hostFactsQuery } from '../policy/host-facts.js';
import type { PolicyContext } from '../policy/policy.js';
import { checkDomainAgainstForeign, type ForeignRoute } from '../policy/routes.js';
import { resolveHardening } from '../systemd/hardening.js';
import type { DeployerContext } from './context.js';
import { policyReason } from './desired.js';
import { type HealthVerdict, waitHealthy } from './health-gate.js';
import { gatherHostFacts, type HostPathInfo } from './host-checks.js';
import { tickPolicy } from './host-policy.js';
import { planUnits } from './live.js';
import type { ServiceAction, ServicePlan } from './plan.js';
import {
  activeRecord,
  type DeployerState,
  type Refusal,
  type ServiceRecord,
  type VersionRecord,
} from './state.js';

/** How one service ended up after a tick. */
export type ServiceOutcome =
  | 'installed'
  | 'updated'
  | 'unchanged'
  | 'removed'
  | 'held' // the wanted version failed before; the running one stays
  | 'rolled-back' // the new version failed its health gate; the previous one runs again
  | 'failed' // a new service failed its health gate and was stopped, or a removal failed
  | 'refused'; // a pre-flight check failed: nothing of the service was touched; retried next tick

/** The result for one service. */
export interface ServiceResult {
  name: string;
  action: ServiceAction;
  outcome: ServiceOutcome;
  storePath: string;
  reason?: string;
  /** For `refused`: each rule that refused the service, with the field (see docs/security.md). */
  refusals?: Refusal[];
}

/** What {@link preflight} checks a service against besides the host: the policy's view of this deployer. */
export interface PreflightContext {
  /** The deployer's locations and services (see `PolicyContext`). */
  policy: PolicyContext;
  /** The service's path in the manifest, e.g. `services[2]`, that refusals are reported under. */
  at: string;
  /**
   * Every unit of this deployer → the ports the manifest gives it after this tick (`[]` for one that goes), so
   * services swapping ports do not refuse each other.
   */
  deployerUnits: ReadonlyMap<string, readonly number[]>;
  /** Routes in Caddy that are not ours (none when Caddy is off or could not be read). */
  foreign: readonly ForeignRoute[];
}

/** Why pre-flight refuses a service: the one-line reason and each rule broken. */
export interface PreflightRefusal {
  reason: string;
  refusals: Refusal[];
}

const refuse = (reason: string): PreflightRefusal => ({
  reason,
  refusals: [{ rule: 'pre-flight', message: reason.replace(/^pre-flight: /, '') }],
});

/**
 * Checks, before anything is touched, what would make a service fail for reasons of this host rather than of
 * its version: its user and group exist, its env file and credential files are there, owned by root and
 * private, its writable paths exist. Then what the host policy can judge only here (see `checkHostFacts`): the
 * numeric ids of its account and groups, where its paths really lead, who owns its state directory, who
 * listens on its port, and whether a route of someone else's in Caddy names its domain. Returns why not, or
 * `undefined`.
 */
export async function preflight(
  ctx: DeployerContext,
  plan: ServicePlan,
  pre: PreflightContext,
): Promise<PreflightRefusal | undefined> {
  const { checks } = ctx.adapters;
  const service = plan.desired?.service;
  if (!service) return undefined;
  const { user, group } = service.exec;
  const dynamic = resolveHardening(service.hardening, user !== undefined).dynamicUser;
  if (user !== undefined && !dynamic && !(await checks.userExists(user))) {
    return refuse(`pre-flight: exec.user "${user}" does not exist on this host`);
  }
  if (group !== undefined && !dynamic && !(await checks.groupExists(group))) {
    return refuse(`pre-flight: exec.group "${group}" does not exist on this host`);
  }
  if (service.envFile !== undefined) {
    const info = await checks.pathInfo(service.envFile);
    if (!info) return refuse(`pre-flight: envFile ${service.envFile} does not exist`);
    if (info.type !== 'file') return refuse(`pre-flight: envFile ${service.envFile} is not a regular file`);
    if (info.uid !== 0)
      return refuse(`pre-flight: envFile ${service.envFile} is owned by uid ${info.uid}, expected root (0)`);
    if (info.mode & 0o007) {
      const mode = info.mode.toString(8).padStart(4, '0');
      return refuse(
        `pre-flight: envFile ${service.envFile} has mode ${mode}, expected no access for others (chmod o-rwx)`,
      );
    }
  }
  for (const [name, file] of Object.entries(service.credentials ?? {})) {
    const problem = secretFileProblem(await checks.pathInfo(file));
    if (problem) return refuse(`pre-flight: credentials.${name} ${file} ${problem}`);
  }
  for (const path of service.hardening?.readWritePaths ?? []) {
    if (!(await ctx.adapters.checks.pathInfo(path))) {
      return refuse(
        `pre-flight: hardening.readWritePaths ${path} does not exist (systemd would refuse to start the unit)`,
      );
    }
  }
  const policy = tickPolicy(ctx.settings);
  const facts = await gatherHostFacts(hostFactsQuery(service, policy, plan.unitName), checks);
  const issues = checkHostFacts(
    service,
    facts,
    policy,
    // The candidate of a blue/green update is the service's own too (it listens on the second port).
    { ...pre.policy, ownUnits: planUnits(plan), deployerUnits: pre.deployerUnits },
    pre.at,
  );
  const http = service.http;
  const conflict = http && checkDomainAgainstForeign(http.domain, http.path, pre.foreign);
  if (conflict)
    issues.push({ path: `${pre.at}.http.domain`, rule: 'route.foreign-host', message: conflict.message });
  return issues.length ? { reason: `pre-flight: ${policyReason(issues)}`, refusals: issues } : undefined;
}

/** Why a secret file (root's, handed to the service by systemd) is not fit to use, or `undefined`. */
function secretFileProblem(info: HostPathInfo | undefined): string | undefined {
  if (!info) return 'does not exist';
  if (info.type !== 'file') return 'is not a regular file';
  if (info.uid !== 0) return `is owned by uid ${info.uid}, expected root (0)`;
  if (info.mode & 0o007)
    return `has mode ${info.mode.toString(8).padStart(4, '0')}, expected no access for others (chmod o-rwx)`;
  return undefined;
}

/**
 * The health gate of one started unit (and its HTTP health check on `http.internalPort`, if any), with the
 * deployer's timing; `settleMs` overrides `--health-settle` (the short gate before a blue/green switch).
 */
export async function gate(
  ctx: DeployerContext,
  unitName: string,
  http: ServiceHttp | undefined,
  options: { settleMs?: number } = {},
): Promise<HealthVerdict> {
  const { systemd, probe, clock } = ctx.adapters;
  const s = ctx.settings;
  const settleMs = options.settleMs ?? s.healthSettleMs;
  try {
    return await waitHealthy({
      status: () => systemd.status(unitName),
      probe: http?.healthCheck
        ? () => probe.check(http.internalPort, http.healthCheck as string, s.healthTimeoutMs)
        : undefined,
      clock,
      timing: { settleMs, intervalMs: s.healthIntervalMs, deadlineMs: s.deployTimeoutMs },
    });
  } catch (error) {
    if (!isDeployError(error)) throw error;
    return { healthy: false, reason: `cannot read the unit's status: ${error.message}`, waitedMs: 0 };
  }
}

const message = (error: unknown) => (error instanceof Error ? error.message : String(error));

/** The version a plan installs, as the state keeps it. Pure. */
export function versionOf(plan: ServicePlan, profileGeneration?: number): VersionRecord {
  const desired = plan.desired;
  return {
    storePath: plan.storePath,
    unitText: desired?.unitText as string,
    specHash: desired?.specHash as string,
    ...(desired?.route === undefined ? {} : { route: desired.route }),
    ...(desired?.service.revision === undefined ? {} : { revision: desired.service.revision }),
    ...(profileGeneration === undefined ? {} : { profileGeneration }),
  };
}

/** What every step of {@link applyServices} shares: the context, the state before and after, the results. */
interface Batch {
  ctx: DeployerContext;
  /** The state the batch started from (never modified). */
  state: DeployerState;
  /** The state being built. */
  next: DeployerState;
  results: ServiceResult[];
  /** Profile generation each prepared service was pinned as. */
  generations: Map<string, number>;
}

/** A prepared service after its (re)start: `error` when the start itself failed (a health failure). */
interface Started {
  plan: ServicePlan;
  error?: string;
}

/**
 * Applies the plan's changes for the services that passed pre-flight, in the order that keeps every other
 * service untouched: pin closures and write unit files, stop and remove what goes, one daemon-reload, restart
 * only what changed, then gate each changed service on its health. A service that fails is switched back to its
 * exact previous store path and unit (or stopped, if it is new) and recorded, so later ticks do not retry that
 * version. Returns the results and the new state; `state` itself is not modified.
 */
export async function applyServices(
  ctx: DeployerContext,
  plans: readonly ServicePlan[],
  state: DeployerState,
): Promise<{ results: ServiceResult[]; state: DeployerState }> {
  const batch: Batch = { ctx, state, next: structuredClone(state), results: [], generations: new Map() };
  const { routeOnly, changing, removing } = sortPlans(plans, state);
  recordRouteChanges(batch, routeOnly);
  const prepared = await prepareServices(batch, changing);
  await removeServices(batch, removing);
  const started = await startServices(batch, prepared, removing.length > 0);
  const verdicts = await gateServices(batch, started);
  await settleServices(batch, started, verdicts);
  return { results: batch.results, state: batch.next };
}

/** Splits the plans into route-only updates, services to (re)start and services to remove. */
function sortPlans(plans: readonly ServicePlan[], state: DeployerState) {
  // A change of route alone (same unit text) needs no restart: the record is updated, Caddy follows.
  const routeOnly = plans.filter(
    (p) => p.action === 'update' && state.services[p.name]?.unitText === p.desired?.unitText,
  );
  const changing = plans.filter(
    (p) => (p.action === 'install' || p.action === 'update') && !routeOnly.includes(p),
  );
  const removing = plans.filter((p) => p.action === 'remove');
  return { routeOnly, changing, removing };
}

/** Route-only updates: the record takes the new route and spec hash; the service keeps running. */
function recordRouteChanges(batch: Batch, routeOnly: readonly ServicePlan[]): void {
  for (const plan of routeOnly) {
    const current = batch.state.services[plan.name] as ServiceRecord;
    const { route: _old, ...rest } = current;
    batch.next.services[plan.name] = {
      ...rest,
      specHash: plan.desired?.specHash as string,
      ...(plan.desired?.route === undefined ? {} : { route: plan.desired.route }),
      ...(plan.desired?.service.revision === undefined ? {} : { revision: plan.desired.service.revision }),
    };
    event(batch, 'info', 'service.route-changed', plan.name, 'route changed; the service keeps running');
    batch.results.push({ name: plan.name, action: 'update', outcome: 'updated', storePath: plan.storePath });
  }
}

/** 1. Closures pinned and unit files written; a failure here reverts that service alone. */
async function prepareServices(batch: Batch, changing: readonly ServicePlan[]): Promise<ServicePlan[]> {
  const { ctx } = batch;
  const prepared: ServicePlan[] = [];
  for (const plan of changing) {
    try {
      const pinned = await pinServiceVersion(ctx.adapters.nix, {
        layout: layout(ctx, plan.name),
        storePath: plan.storePath,
        keep: ctx.settings.keep,
      });
      batch.generations.set(plan.name, pinned.generation.number);
      await ctx.adapters.systemd.installUnit({ name: plan.unitName, text: plan.desired?.unitText as string });
      prepared.push(plan);
    } catch (error) {
      if (!isDeployError(error)) throw error;
      event(
        batch,
        'error',
        'service.prepare-failed',
        plan.name,
        `could not prepare ${plan.storePath}: ${message(error)}`,
      );
      await revertFiles(batch, plan, batch.state.services[plan.name]).catch((revert) => {
        if (!isDeployError(revert)) throw revert;
        event(
          batch,
          'error',
          'service.revert-failed',
          plan.name,
          `could not restore the previous unit: ${message(revert)}`,
        );
      });
      batch.results.push({
        name: plan.name,
        action: plan.action,
        outcome: 'refused',
        storePath: plan.storePath,
        reason: message(error),
        refusals: [{ rule: 'prepare', message: message(error) }],
      });
    }
  }
  return prepared;
}

/** 2. Removed services: stopped before their unit file goes; their profile stays for a rollback. */
async function removeServices(batch: Batch, removing: readonly ServicePlan[]): Promise<void> {
  const { systemd } = batch.ctx.adapters;
  for (const plan of removing) {
    try {
      await systemd.stop(plan.unitName);
      await systemd.disable(plan.unitName);
      await systemd.removeUnit(plan.unitName);
      delete batch.next.services[plan.name];
      event(batch, 'info', 'service.removed', plan.name, `stopped and removed (was ${plan.storePath})`);
      batch.results.push({
        name: plan.name,
        action: 'remove',
        outcome: 'removed',
        storePath: plan.storePath,
      });
    } catch (error) {
      if (!isDeployError(error)) throw error;
      event(batch, 'error', 'service.remove-failed', plan.name, `could not remove: ${message(error)}`);
      batch.results.push({
        name: plan.name,
        action: 'remove',
        outcome: 'failed',
        storePath: plan.storePath,
        reason: message(error),
      });
    }
  }
}

/** 3. One daemon-reload for the whole batch, then (re)start exactly the changed services. */
async function startServices(
  batch: Batch,
  prepared: readonly ServicePlan[],
  removed: boolean,
): Promise<Started[]> {
  const { systemd } = batch.ctx.adapters;
  if (prepared.length || removed) await systemd.daemonReload();
  const started: Started[] = [];
  for (const plan of prepared) {
    try {
      if (plan.action === 'install') {
        await systemd.enable(plan.unitName);
        await systemd.start(plan.unitName);
      } else await systemd.restart(plan.unitName);
      event(
        batch,
        'info',
        plan.action === 'install' ? 'service.start' : 'service.restart',
        plan.name,
        `${plan.action === 'install' ? 'started' : 'restarted'} ${plan.storePath}`,
      );
      started.push({ plan });
    } catch (error) {
      // A program that cannot run (status 203) or exits at once can make the start itself fail: a health failure.
      if (!isDeployError(error)) throw error;
      started.push({ plan, error: message(error) });
    }
  }
  return started;
}

/** 4. Health gates, all at once: each waits for its own service only. */
function gateServices(batch: Batch, started: readonly Started[]): Promise<HealthVerdict[]> {
  return Promise.all(
    started.map(
      async ({ plan, error }): Promise<HealthVerdict> =>
        error
          ? { healthy: false, reason: error, waitedMs: 0 }
          : gate(batch.ctx, plan.unitName, plan.desired?.service.http),
    ),
  );
}

/** 5. Record the healthy ones; switch the others back, one service at a time. */
async function settleServices(
  batch: Batch,
  started: readonly Started[],
  verdicts: readonly HealthVerdict[],
): Promise<void> {
  for (const [i, { plan }] of started.entries()) {
    const verdict = verdicts[i] as HealthVerdict;
    if (verdict.healthy) recordHealthy(batch, plan, verdict);
    else await recordUnhealthy(batch, plan, verdict);
  }
}

/** A service that passed its gate: its new record (keeping the version it replaces as `previous`). */
function recordHealthy(
  batch: Batch,
  plan: ServicePlan,
  verdict: Extract<HealthVerdict, { healthy: true }>,
): void {
  const { next, generations } = batch;
  next.services[plan.name] = activeRecord(
    versionOf(plan, generations.get(plan.name)),
    plan.unitName,
    batch.state.services[plan.name],
    now(batch),
  );
  // A fixed version clears the service's old failures.
  next.failures = next.failures.filter((f) => f.service !== plan.name);
  event(
    batch,
    'info',
    'service.healthy',
    plan.name,
    `${plan.storePath} is healthy after ${verdict.waitedMs}ms`,
  );
  batch.results.push({
    name: plan.name,
    action: plan.action,
    outcome: plan.action === 'install' ? 'installed' : 'updated',
    storePath: plan.storePath,
  });
}

/** A service that failed its gate: recorded as a failure, then rolled back (an update) or stopped (new). */
async function recordUnhealthy(
  batch: Batch,
  plan: ServicePlan,
  verdict: Extract<HealthVerdict, { healthy: false }>,
): Promise<void> {
  const { next } = batch;
  const current = batch.state.services[plan.name];
  event(
    batch,
    'error',
    'service.unhealthy',
    plan.name,
    `${plan.storePath} failed its health gate: ${verdict.reason}`,
  );
  next.failures = next.failures.filter((f) => f.service !== plan.name);
  next.failures.push({
    service: plan.name,
    storePath: plan.storePath,
    specHash: plan.desired?.specHash as string,
    at: now(batch),
    reason: verdict.reason,
  });
  if (current) {
    const restored = await rollBack(batch, plan, current);
    next.services[plan.name] = { ...current, health: restored.healthy ? 'healthy' : 'unhealthy' };
    next.rollbacks += 1;
    batch.results.push({
      name: plan.name,
      action: plan.action,
      outcome: 'rolled-back',
      storePath: plan.storePath,
      reason: verdict.reason,
    });
  } else {
    await stopNew(batch, plan);
    batch.results.push({
      name: plan.name,
      action: plan.action,
      outcome: 'failed',
      storePath: plan.storePath,
      reason: verdict.reason,
    });
  }
}

/**
 * Puts a service's files back as they were, without restarting it: the previous unit text first (what runs
 * is decided by the unit, which names its exact store path), then the profile. Throws when the unit could
 * not be written back; a profile that could not be reset is only reported (the unit still pins the path).
 */
async function revertFiles(
  batch: Batch,
  plan: ServicePlan,
  current: ServiceRecord | undefined,
): Promise<void> {
  const { ctx } = batch;
  if (!current) {
    await ctx.adapters.systemd.removeUnit(plan.unitName);
    return;
  }
  await ctx.adapters.systemd.installUnit({ name: current.unitName, text: current.unitText });
  try {
    await pinServiceVersion(ctx.adapters.nix, {
      layout: layout(ctx, plan.name),
      storePath: current.storePath,
      keep: ctx.settings.keep,
    });
  } catch (error) {
    if (!isDeployError(error)) throw error;
    event(
      batch,
      'warn',
      'service.revert-profile-failed',
      plan.name,
      `unit restored, but the profile still points elsewhere: ${message(error)}`,
    );
  }
}

/** Switches a failed update back to the exact previous store path and unit, restarts and verifies it. */
async function rollBack(batch: Batch, plan: ServicePlan, current: ServiceRecord): Promise<HealthVerdict> {
  const { systemd } = batch.ctx.adapters;
  event(batch, 'warn', 'service.rollback', plan.name, `switching back to ${current.storePath}`);
  try {
    await revertFiles(batch, plan, current);
    await systemd.daemonReload();
    await systemd.restart(current.unitName);
    const verdict = await gate(batch.ctx, current.unitName, current.route as ServiceHttp | undefined);
    if (verdict.healthy)
      event(
        batch,
        'info',
        'service.rolled-back',
        plan.name,
        `${current.storePath} runs again and is healthy`,
      );
    else
      event(
        batch,
        'error',
        'service.rollback-unhealthy',
        plan.name,
        `${current.storePath} runs again but is not healthy: ${verdict.reason}`,
      );
    return verdict;
  } catch (error) {
    if (!isDeployError(error)) throw error;
    event(
      batch,
      'error',
      'service.rollback-failed',
      plan.name,
      `could not switch back to ${current.storePath}: ${message(error)}`,
    );
    return { healthy: false, reason: message(error), waitedMs: 0 };
  }
}

/** A new service that failed: stopped and its unit removed, so nothing half-started stays behind. */
async function stopNew(batch: Batch, plan: ServicePlan): Promise<void> {
  const { systemd } = batch.ctx.adapters;
  try {
    await systemd.stop(plan.unitName);
    await systemd.disable(plan.unitName);
    await systemd.removeUnit(plan.unitName);
    await systemd.daemonReload();
    event(
      batch,
      'warn',
      'service.stopped',
      plan.name,
      `new service stopped; ${plan.storePath} will not be retried until the manifest changes it`,
    );
  } catch (error) {
    if (!isDeployError(error)) throw error;
    event(
      batch,
      'error',
      'service.stop-failed',
      plan.name,
      `could not stop the failed new service: ${message(error)}`,
    );
  }
}

function event(
  batch: Batch,
  level: 'info' | 'warn' | 'error',
  type: string,
  service: string,
  text: string,
  data?: Record<string, unknown>,
): void {
  batch.ctx.onEvent({ level, type, service, message: text, ...(data ? { data } : {}) });
}

function now(batch: Batch): string {
  return new Date(batch.ctx.adapters.clock.now()).toISOString();
}

function layout(ctx: DeployerContext, name: string) {
  return serviceLayout(name, { profilesDir: ctx.settings.profilesDir, gcrootsDir: ctx.settings.gcrootsDir });
}
