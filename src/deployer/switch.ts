/**
 * Zero-downtime updates ("relay", see docs/design.md#zero-downtime-updates): the service's own unit
 * (`deploy-web.service`, on `internalPort`) is the live instance at rest, exactly as with a restart in place.
 * An update starts the new version in the candidate unit (`deploy-web@next.service`, on the second port) and
 * gates it; switches Caddy to it and lets the old instance drain while the new one is watched for the rest of
 * its settle time; restarts the service's own unit with the new version and gates it; switches Caddy back and
 * drains and stops the candidate. Every step is saved in the state before it is taken, and a tick that finds a
 * switch under way (a deployer killed in the middle, a reboot) finishes or undoes it first. An overlap update
 * (a service without `http`) is the same relay without Caddy.
 */
import { isDeployError } from '../errors.js';
import type { ServiceHttp } from '../manifest/schema.js';
import { serviceLayout } from '../nix/layout.js';
import { pinServiceVersion } from '../nix/pin.js';
import { formatDuration } from '../runtime/duration.js';
import { gate, type ServiceResult, versionOf } from './apply.js';
import { busyConnections } from './connections.js';
import type { DeployerContext } from './context.js';
import { reconcileCaddy } from './drift.js';
import type { HealthVerdict } from './health-gate.js';
import type { CandidateUnit, ServicePlan } from './plan.js';
import { activeRecord, type DeployerState, type ServiceRecord, type SwitchRecord } from './state.js';
import { type MainUnitSeen, planRecovery, type RecoveryPlan, routeUpdate } from './switch-plan.js';

/** How often a drain looks at the old instance's connections. */
const DRAIN_POLL_MS = 100;

/** What every switch of one tick shares: the state being built, the results, and one queue for saves and Caddy. */
interface Run {
  ctx: DeployerContext;
  next: DeployerState;
  results: ServiceResult[];
  /** The last save (saves go one after the other: a later snapshot never loses to an earlier one). */
  saving: Promise<void>;
  /** The last Caddy change (one at a time: two switches would otherwise conflict on Caddy's ETag). */
  routing: Promise<unknown>;
}

/**
 * Splits the plans that passed pre-flight into those done as a switch, the rest (restarts in place, installs,
 * route-only changes: {@link applyServices}) and the refusals of services whose earlier switch is unfinished.
 */
export function splitSwitches(
  ctx: DeployerContext,
  plans: readonly ServicePlan[],
  state: DeployerState,
): {
  switching: { plan: ServicePlan; candidate: CandidateUnit }[];
  others: ServicePlan[];
  blocked: ServiceResult[];
} {
  const switching: { plan: ServicePlan; candidate: CandidateUnit }[] = [];
  const others: ServicePlan[] = [];
  const blocked: ServiceResult[] = [];
  for (const plan of plans) {
    const route = routeUpdate(plan, state.services[plan.name], { caddy: ctx.adapters.caddy !== undefined });
    if (route.kind === 'switch') switching.push({ plan, candidate: route.candidate });
    else if (route.kind === 'restart') others.push(plan);
    else {
      ctx.onEvent({ level: 'error', type: 'service.refused', service: plan.name, message: route.reason });
      blocked.push({
        name: plan.name,
        action: plan.action,
        outcome: 'refused',
        storePath: plan.storePath,
        reason: route.reason,
      });
    }
  }
  return { switching, others, blocked };
}

/**
 * Carries out the switches (all at once: each touches its own units; saves and Caddy changes queue up). Returns
 * the results and the new state; `state` itself is not modified.
 */
export async function applySwitches(
  ctx: DeployerContext,
  switching: readonly { plan: ServicePlan; candidate: CandidateUnit }[],
  state: DeployerState,
): Promise<{ results: ServiceResult[]; state: DeployerState }> {
  const run = startRun(ctx, state);
  await Promise.all(switching.map(({ plan, candidate }) => switchService(run, plan, candidate, state)));
  await run.saving;
  return { results: run.results, state: run.next };
}

/**
 * Finishes or undoes every switch a previous tick left under way (see {@link planRecovery}), before anything
 * else looks at the units: the live instance keeps serving throughout. A switch that cannot be settled now
 * (Caddy unreachable, the old version not coming back) stays recorded and is tried again next tick. Returns the
 * new state and the services whose switch was settled.
 */
export async function recoverSwitches(
  ctx: DeployerContext,
  state: DeployerState,
): Promise<{ state: DeployerState; recovered: string[] }> {
  const pending = Object.entries(state.services).filter(([, r]) => r.switch);
  if (pending.length === 0) return { state, recovered: [] };
  const run = startRun(ctx, state);
  const recovered: string[] = [];
  for (const [name, record] of pending) {
    const s = record.switch as SwitchRecord;
    try {
      const main = await seeMainUnit(ctx, record.unitName);
      const plan = planRecovery(record, s, main);
      event(
        run,
        'warn',
        'switch.recover',
        name,
        `${describeRecovery(plan)} the switch to ${s.target.storePath} left at step ${s.phase}`,
      );
      if (await settle(run, name, plan)) recovered.push(name);
    } catch (error) {
      if (!isDeployError(error)) throw error;
      event(
        run,
        'error',
        'switch.recover-failed',
        name,
        `the switch left at step ${s.phase} is not settled (retried next tick): ${error.message}`,
      );
    }
  }
  await run.saving;
  return { state: run.next, recovered };
}

function describeRecovery(plan: RecoveryPlan): string {
  if (plan.kind === 'discard') return 'discarding';
  if (plan.kind === 'finish') return 'finishing';
  return plan.restartMain ? 'undoing (restarting the previous version in its own unit)' : 'undoing';
}

function startRun(ctx: DeployerContext, state: DeployerState): Run {
  return {
    ctx,
    next: structuredClone(state),
    results: [],
    saving: Promise.resolve(),
    routing: Promise.resolve(),
  };
}

/** Saves the state being built, after every earlier save. Throws when the save fails. */
function persist(run: Run): Promise<void> {
  const snapshot = structuredClone(run.next);
  const saved = run.saving.then(() => run.ctx.adapters.state.save(snapshot));
  run.saving = saved.catch(() => {});
  return saved;
}

/** Points Caddy at each service's live instance (as the state being built says), after every earlier change. */
function moveTraffic(run: Run): Promise<unknown> {
  const moved = run.routing.then(() => reconcileCaddy(run.ctx, run.next));
  run.routing = moved.catch(() => {});
  return moved;
}

async function seeMainUnit(ctx: DeployerContext, unit: string): Promise<MainUnitSeen> {
  const text = await ctx.adapters.systemd.readUnit(unit);
  const active = text !== undefined && (await ctx.adapters.systemd.status(unit)).activeState === 'active';
  return { text, active };
}

/** One switch, from the candidate's start to the version recorded (or the old one back, or left for next tick). */
async function switchService(
  run: Run,
  plan: ServicePlan,
  candidate: CandidateUnit,
  state: DeployerState,
): Promise<void> {
  const { ctx } = run;
  const name = plan.name;
  const current = state.services[name] as ServiceRecord;
  const http = plan.desired?.service.http;
  const refuse = (reason: string) => {
    event(run, 'error', 'service.refused', name, reason);
    run.results.push({ name, action: 'update', outcome: 'refused', storePath: plan.storePath, reason });
  };

  // The second port was checked at pre-flight: the host policy refuses a port someone else listens on.
  // 1. The new version pinned, its candidate started and gated; nothing that serves has changed yet.
  const target = versionOf(plan);
  try {
    const pinned = await pinServiceVersion(ctx.adapters.nix, {
      layout: layout(ctx, name),
      storePath: plan.storePath,
      keep: ctx.settings.keep,
    });
    target.profileGeneration = pinned.generation.number;
  } catch (error) {
    if (!isDeployError(error)) throw error;
    await repin(run, name, current.storePath);
    return refuse(`could not prepare ${plan.storePath}: ${error.message}`);
  }
  const record = run.next.services[name] as ServiceRecord;
  record.switch = {
    phase: 'candidate',
    strategy: candidate.strategy,
    candidate: {
      unitName: candidate.unitName,
      ...(candidate.port === undefined ? {} : { port: candidate.port }),
    },
    target,
    startedAt: now(run),
  };
  try {
    await persist(run);
    const where = candidate.port === undefined ? '' : ` on port ${candidate.port}`;
    event(
      run,
      'info',
      'service.candidate',
      name,
      `starting ${plan.storePath} in ${candidate.unitName}${where} beside ${current.storePath}`,
    );
    const started = await startCandidate(run, candidate, http);
    if (!started.healthy)
      return await reject(
        run,
        plan,
        started.reason,
        { kind: 'discard' },
        ` (in ${candidate.unitName}; the running version was not touched)`,
      );

    // 2. Traffic to the candidate; the old instance keeps running until the new one has been watched long enough.
    if (candidate.strategy === 'blue-green') {
      record.switch.phase = 'switched';
      await persist(run);
      await moveTraffic(run);
      event(
        run,
        'info',
        'service.switched',
        name,
        `Caddy sends ${http?.domain}${http?.path === '/' ? '' : http?.path} to ${candidate.unitName} on port ${candidate.port}`,
        { port: candidate.port },
      );
      const watched = await watchCandidate(run, candidate, http);
      if (!watched.healthy)
        return await reject(
          run,
          plan,
          `${watched.reason} (while serving from ${candidate.unitName}; traffic went back to the running version)`,
          { kind: 'undo', restartMain: false },
        );
      await drain(run, name, (current.route as ServiceHttp).internalPort);
    }

    // 3. The service's own unit takes the new version (the candidate carries the load meanwhile).
    record.switch.phase = 'main';
    await persist(run);
    const main = await restartMain(run, record.unitName, target.unitText, http);
    if (!main.healthy)
      return await reject(
        run,
        plan,
        `${main.reason} (in ${record.unitName}, after it ran in ${candidate.unitName})`,
        { kind: 'undo', restartMain: true },
      );

    // 4. Back to the service's own unit; the candidate drains and stops.
    record.switch.phase = 'returning';
    await persist(run);
    await settle(run, name, { kind: 'finish' });
    run.results.push({ name, action: 'update', outcome: 'updated', storePath: plan.storePath });
  } catch (error) {
    if (!isDeployError(error)) throw error;
    // Not the version's fault (Caddy, systemd, the state file): put the running version back if possible.
    const reason = `switch to ${plan.storePath} interrupted at step ${record.switch?.phase}: ${error.message}`;
    await settleAfterError(run, name);
    refuse(
      `${reason}${run.next.services[name]?.switch ? '; finished or undone by the next tick' : '; the running version was kept'}`,
    );
  }
}

/** Undoes a switch after an unexpected error, as the next tick would; errors leave it for that tick. */
async function settleAfterError(run: Run, name: string): Promise<void> {
  const record = run.next.services[name] as ServiceRecord;
  if (!record.switch) return;
  try {
    const main = await seeMainUnit(run.ctx, record.unitName);
    const plan = planRecovery(record, record.switch, main);
    await settle(
      run,
      name,
      plan.kind === 'finish'
        ? plan
        : plan.kind === 'discard'
          ? plan
          : { kind: 'undo', restartMain: plan.restartMain },
    );
  } catch (error) {
    if (!isDeployError(error)) throw error;
    await persist(run).catch((failed: unknown) => {
      if (!isDeployError(failed)) throw failed;
    });
  }
}

/**
 * A version that failed (its candidate, or its own unit): recorded as failed with `reason`, then the switch
 * settled `how`.
 */
async function reject(
  run: Run,
  plan: ServicePlan,
  reason: string,
  how: RecoveryPlan,
  note = '',
): Promise<void> {
  const { next } = run;
  const name = plan.name;
  const target = (next.services[name] as ServiceRecord).switch?.target;
  // `note` goes to the log only: a failure at the candidate reads as it always did in results and status.
  event(
    run,
    'error',
    'service.unhealthy',
    name,
    `${plan.storePath} failed its health gate: ${reason}${note}`,
  );
  next.failures = next.failures.filter((f) => f.service !== name);
  next.failures.push({
    service: name,
    storePath: plan.storePath,
    specHash: target?.specHash ?? (plan.desired?.specHash as string),
    at: now(run),
    reason,
  });
  next.rollbacks += 1;
  const settled = await settle(run, name, how).catch((error: unknown) => {
    if (!isDeployError(error)) throw error;
    event(
      run,
      'error',
      'switch.undo-failed',
      name,
      `could not finish undoing the switch (retried next tick): ${error.message}`,
    );
    return false;
  });
  if (settled)
    event(
      run,
      'info',
      'service.rolled-back',
      name,
      `${(next.services[name] as ServiceRecord).storePath} serves as before`,
    );
  run.results.push({ name, action: 'update', outcome: 'rolled-back', storePath: plan.storePath, reason });
}

/**
 * Carries out a {@link RecoveryPlan} for `name`'s switch (also the end of a successful switch: `finish`).
 * Returns true when the switch is settled (the record says which version runs); throws a `DeployError` when a
 * step fails, leaving the switch recorded at the step reached.
 */
async function settle(run: Run, name: string, plan: RecoveryPlan): Promise<boolean> {
  const { next } = run;
  const record = next.services[name] as ServiceRecord;
  const s = record.switch as SwitchRecord;
  if (plan.kind === 'undo') {
    s.undo = true;
    await persist(run);
    if (plan.restartMain) {
      const verdict = await restartMain(
        run,
        record.unitName,
        record.unitText,
        record.route as ServiceHttp | undefined,
        { enable: true, fullSettle: true },
      );
      if (!verdict.healthy) {
        event(
          run,
          'error',
          'switch.undo-unhealthy',
          name,
          `${record.storePath} did not come back in ${record.unitName} (${verdict.reason}); ${s.phase === 'candidate' ? 'nothing' : s.candidate.unitName} keeps serving, retried next tick`,
        );
        return false;
      }
    }
  }
  if (plan.kind !== 'discard') {
    s.phase = 'returning';
    await persist(run);
    if (s.strategy === 'blue-green') {
      await moveTraffic(run);
      if (s.candidate.port !== undefined) await drain(run, name, s.candidate.port);
    }
  }
  await stopCandidate(run, s.candidate.unitName);
  if (plan.kind === 'finish') {
    const current: ServiceRecord = { ...record };
    delete current.switch;
    next.services[name] = activeRecord(s.target, record.unitName, current, now(run));
    next.failures = next.failures.filter((f) => f.service !== name);
    event(run, 'info', 'service.healthy', name, `${s.target.storePath} serves from ${record.unitName}`);
  } else {
    delete record.switch;
    await repin(run, name, record.storePath);
  }
  await persist(run);
  return true;
}

/** Installs, starts and gates the candidate (the short settle when a health check answers). */
async function startCandidate(
  run: Run,
  candidate: CandidateUnit,
  http: ServiceHttp | undefined,
): Promise<HealthVerdict> {
  const { ctx } = run;
  const { systemd } = ctx.adapters;
  try {
    await systemd.installUnit({ name: candidate.unitName, text: candidate.unitText });
    await systemd.daemonReload();
    // restart, not start: a candidate left running by an interrupted tick must not pass for the new one.
    await systemd.restart(candidate.unitName);
  } catch (error) {
    // A program that cannot run (status 203) makes the start itself fail: a health failure.
    if (!isDeployError(error)) throw error;
    return { healthy: false, reason: error.message, waitedMs: 0 };
  }
  return gate(ctx, candidate.unitName, candidateHttp(candidate, http), { settleMs: settleFor(ctx, http) });
}

/**
 * The rest of the candidate's settle time, watched while it serves with the old instance still running: every
 * health interval its unit must be active without a new restart and its health check must answer. Unlike the
 * gate, the first miss ends the watch (traffic then goes back at once, not at the deploy timeout).
 */
async function watchCandidate(
  run: Run,
  candidate: CandidateUnit,
  http: ServiceHttp | undefined,
): Promise<HealthVerdict> {
  const { ctx } = run;
  const { systemd, probe, clock } = ctx.adapters;
  const s = ctx.settings;
  const rest = s.healthSettleMs - settleFor(ctx, http);
  if (rest <= 0) return { healthy: true, waitedMs: 0 };
  const checked = candidateHttp(candidate, http);
  const start = clock.now();
  let baseline: number | undefined;
  for (;;) {
    const unit = await systemd.status(candidate.unitName);
    baseline ??= unit.nRestarts;
    const waitedMs = clock.now() - start;
    if (unit.activeState !== 'active' || unit.nRestarts > baseline)
      return {
        healthy: false,
        reason: `unit ${unit.activeState} (${unit.subState}), ${unit.nRestarts - baseline} restart(s), exit status ${unit.execMainStatus}`,
        waitedMs,
      };
    if (checked?.healthCheck) {
      const answer = await probe.check(checked.internalPort, checked.healthCheck, s.healthTimeoutMs);
      if (!answer.ok)
        return {
          healthy: false,
          reason: `health check ${answer.error === undefined ? `answered ${answer.status ?? 'nothing'}` : `failed (${answer.error})`}`,
          waitedMs,
        };
    }
    if (waitedMs >= rest) return { healthy: true, waitedMs };
    await clock.sleep(Math.min(s.healthIntervalMs, rest - waitedMs));
  }
}

/** Writes `text` to the service's own unit, restarts and gates it. */
async function restartMain(
  run: Run,
  unitName: string,
  text: string,
  http: ServiceHttp | undefined,
  options: { enable?: boolean; fullSettle?: boolean } = {},
): Promise<HealthVerdict> {
  const { ctx } = run;
  const { systemd } = ctx.adapters;
  try {
    await systemd.installUnit({ name: unitName, text });
    await systemd.daemonReload();
    if (options.enable) await systemd.enable(unitName);
    await systemd.restart(unitName);
  } catch (error) {
    if (!isDeployError(error)) throw error;
    return { healthy: false, reason: error.message, waitedMs: 0 };
  }
  return gate(ctx, unitName, http, options.fullSettle ? {} : { settleMs: settleFor(ctx, http) });
}

/** Stops the candidate and removes its unit file (nothing to do when it is not there). */
async function stopCandidate(run: Run, unitName: string): Promise<void> {
  const { systemd } = run.ctx.adapters;
  await systemd.stop(unitName);
  if ((await systemd.readUnit(unitName)) === undefined) return;
  await systemd.removeUnit(unitName);
  await systemd.daemonReload();
}

/**
 * Waits until Caddy has nothing in flight to `port` (see {@link busyConnections}), or `--drain-timeout`. When
 * the connections cannot be read (no `ss`), waits the quiet time once and says so.
 */
async function drain(run: Run, name: string, port: number): Promise<void> {
  const { ctx } = run;
  const { clock, connections } = ctx.adapters;
  const start = clock.now();
  const limit = ctx.settings.drainTimeoutMs;
  for (;;) {
    let busy: number;
    try {
      busy = busyConnections(await connections.established(port)).length;
    } catch (error) {
      if (!isDeployError(error)) throw error;
      event(
        run,
        'warn',
        'service.drain-unknown',
        name,
        `cannot see the connections to port ${port} (${error.message}); waiting ${formatDuration(Math.min(limit, 2000))}`,
      );
      await clock.sleep(Math.min(limit, 2000));
      return;
    }
    const waited = clock.now() - start;
    if (busy === 0) {
      event(run, 'debug', 'service.drained', name, `port ${port} drained after ${waited}ms`, {
        port,
        waitedMs: waited,
      });
      return;
    }
    if (waited >= limit) {
      event(
        run,
        'warn',
        'service.drain-timeout',
        name,
        `${busy} request(s) still in flight to port ${port} after ${formatDuration(limit)} (--drain-timeout); going on`,
        { port, busy },
      );
      return;
    }
    await clock.sleep(Math.min(DRAIN_POLL_MS, limit - waited));
  }
}

/** Points the profile back at `storePath` after a switch that did not complete (best effort: the unit pins it). */
async function repin(run: Run, name: string, storePath: string): Promise<void> {
  try {
    await pinServiceVersion(run.ctx.adapters.nix, {
      layout: layout(run.ctx, name),
      storePath,
      keep: run.ctx.settings.keep,
    });
  } catch (error) {
    if (!isDeployError(error)) throw error;
    event(
      run,
      'warn',
      'service.revert-profile-failed',
      name,
      `the profile still points elsewhere: ${error.message}`,
    );
  }
}

/** The short settle before a switch when a health check answers; the whole one otherwise. */
function settleFor(ctx: DeployerContext, http: ServiceHttp | undefined): number {
  const { switchSettleMs, healthSettleMs } = ctx.settings;
  return http?.healthCheck ? Math.min(switchSettleMs, healthSettleMs) : healthSettleMs;
}

function candidateHttp(candidate: CandidateUnit, http: ServiceHttp | undefined): ServiceHttp | undefined {
  return http && candidate.port !== undefined ? { ...http, internalPort: candidate.port } : undefined;
}

function event(
  run: Run,
  level: 'debug' | 'info' | 'warn' | 'error',
  type: string,
  service: string,
  text: string,
  data?: Record<string, unknown>,
): void {
  run.ctx.onEvent({ level, type, service, message: text, ...(data ? { data } : {}) });
}

function now(run: Run): string {
  return new Date(run.ctx.adapters.clock.now()).toISOString();
}

function layout(ctx: DeployerContext, name: string) {
  return serviceLayout(name, { profilesDir: ctx.settings.profilesDir, gcrootsDir: ctx.settings.gcrootsDir });
}
