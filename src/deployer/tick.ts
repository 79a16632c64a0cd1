import { createHash } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import { DeployError, isDeployError } from '../errors.js';
import type { Manifest } from '../manifest/schema.js';
import { formatIssues, parseManifest } from '../manifest/validate.js';
import { applyServices, preflight, type ServiceResult } from './apply.js';
import type { DeployerContext } from './context.js';
import { desiredServices } from './desired.js';
import { reconcileCaddy, removeOrphans, repairUnits } from './drift.js';
import { serviceUnits } from './live.js';
import { renderMetrics } from './metrics.js';
import { type DeployPlan, type DesiredService, planDeploy, type ServicePlan } from './plan.js';
import { type DeployerState, emptyState, type TickOutcome } from './state.js';
import { assertHostStatus, buildHostStatus, type HostStatus } from './status.js';
import { applySwitches, recoverSwitches, splitSwitches } from './switch.js';

/** What one tick did. */
export interface TickReport {
  outcome: TickOutcome;
  message?: string;
  /** The manifest generation this tick worked on, if it read one. */
  generation?: string;
  plan?: DeployPlan;
  results: ServiceResult[];
  /**
   * Services whose unit files were restored (boot, or someone changed them), or whose interrupted switch was
   * finished or undone.
   */
  repaired: string[];
  /** Units of ours that nothing wanted any more (a crash left them), stopped and removed. */
  orphans: string[];
  /** Caddy admin requests made (and how many changed something). */
  routes?: { requests: number; mutations: number };
}

const message = (error: unknown) => (error instanceof Error ? error.message : String(error));

/**
 * One reconcile pass of the deployer, for `deployer apply` and each round of `deployer watch`:
 * lock; restore missing or altered units from local state; conditional read of the manifest (unchanged →
 * nothing to parse, pull or restart); validate; plan; pull every needed closure before touching anything;
 * pre-flight each service; apply only what changed with health gates and per-service rollback; reconcile
 * Caddy; publish the host status; save state atomically. Never throws for bad input or unreachable
 * services: the report says what happened.
 */
export async function runTick(ctx: DeployerContext): Promise<TickReport> {
  const handle = await acquireLock(ctx);
  if (!handle) {
    const owner = await ctx.adapters.lock.owner();
    const text = `another deployer run holds the lock${owner ? ` (pid ${owner.pid} since ${owner.acquiredAt})` : ''}; nothing done`;
    ctx.onEvent({ level: 'warn', type: 'tick.busy', message: text });
    return { outcome: 'busy', message: text, results: [], repaired: [], orphans: [] };
  }
  try {
    return await tickLocked(ctx);
  } finally {
    await handle.release();
  }
}

async function acquireLock(ctx: DeployerContext) {
  const { lock, clock } = ctx.adapters;
  const deadline = clock.now() + (ctx.lockWaitMs ?? 5000);
  for (;;) {
    const handle = await lock.acquire();
    if (handle || clock.now() >= deadline) return handle;
    await clock.sleep(250);
  }
}

async function tickLocked(ctx: DeployerContext): Promise<TickReport> {
  const { adapters, settings, onEvent } = ctx;
  const previous = (await adapters.state.load()) ?? emptyState(settings.host);
  if (previous.host.toLowerCase() !== settings.host.toLowerCase()) {
    throw new DeployError(
      'STATE_HOST',
      `the state belongs to host "${previous.host}" but this deployer runs as "${settings.host}": pass --host ${previous.host} or use another --state-dir`,
    );
  }
  let state = previous;
  const report: TickReport = { outcome: 'unchanged', results: [], repaired: [], orphans: [] };
  onEvent({ level: 'debug', type: 'tick.start', message: `tick for host ${settings.host}` });

  // An interrupted blue/green or overlap update first: repairUnits must not restart a live instance.
  const recovery = await recoverSwitches(ctx, state);
  state = recovery.state;
  const repair = await repairUnits(ctx, state);
  report.repaired = [...recovery.recovered, ...repair.repaired];
  state = repair.state;
  const polled = await poll(ctx, state, report);
  state = polled ?? state;
  const known = new Set([
    ...Object.values(state.services).flatMap(serviceUnits),
    ...(report.plan?.services.map((p) => p.unitName) ?? []),
  ]);
  report.orphans = await removeOrphans(ctx, known);

  try {
    report.routes = await reconcileCaddy(ctx, state);
  } catch (error) {
    onEvent({
      level: 'error',
      type: 'routes.failed',
      message: `Caddy routes not reconciled: ${message(error)}`,
    });
    if (report.outcome === 'applied' || report.outcome === 'unchanged') report.outcome = 'partial';
    report.message = [report.message, `Caddy: ${message(error)}`].filter(Boolean).join('; ');
  }

  await finish(ctx, previous, state, report, now(ctx));
  return report;
}

/**
 * Reads, validates, plans and applies the manifest. Returns the new state (`undefined`: unchanged). Each step
 * either hands the next one its input or ends the poll with the report saying why.
 */
async function poll(
  ctx: DeployerContext,
  state: DeployerState,
  report: TickReport,
): Promise<DeployerState | undefined> {
  const read = await readManifest(ctx, state, report);
  if (!read) return undefined;
  const manifest = validateManifest(ctx, read, report);
  if (!manifest)
    return { ...state, rejected: { etag: read.etag, at: now(ctx), message: report.message ?? '' } };
  const { plans, desired, pulls } = planManifest(ctx, manifest, state, report);
  if (!(await pullClosures(ctx, pulls, report))) return undefined;
  const ready = await preflightServices(ctx, plans, report);
  const { switching, others, blocked } = splitSwitches(ctx, ready, state);
  const applied = await applyServices(ctx, [...others, ...plans.filter((p) => p.action === 'remove')], state);
  const switched = await applySwitches(ctx, switching, applied.state);
  report.results.push(...blocked, ...applied.results, ...switched.results);
  reportUntouched(ctx, plans, report);
  return settle(ctx, switched.state, { etag: read.etag, manifest, desired }, report);
}

type ManifestRead = Extract<
  Awaited<ReturnType<DeployerContext['adapters']['manifests']['read']>>,
  { status: 'found' }
>;

/**
 * 1. The conditional read: a manifest that has not changed since the last one applied (or rejected) is not
 * read again. Returns the new manifest's text, or `undefined` when there is nothing to do or it cannot be read.
 */
async function readManifest(
  ctx: DeployerContext,
  state: DeployerState,
  report: TickReport,
): Promise<ManifestRead | undefined> {
  const { adapters, onEvent } = ctx;
  const known = state.rejected?.etag ?? state.manifest?.etag;
  let read: Awaited<ReturnType<typeof adapters.manifests.read>>;
  try {
    read = await adapters.manifests.read(known ? { ifNoneMatch: known } : {});
  } catch (error) {
    report.outcome = 'failed';
    report.message = `cannot read the manifest at ${adapters.manifests.url}: ${message(error)}`;
    onEvent({ level: 'error', type: 'manifest.unreachable', message: report.message });
    return undefined;
  }
  if (read.status === 'not-modified') {
    onEvent({ level: 'debug', type: 'manifest.not-modified', message: 'manifest unchanged' });
    if (state.rejected) {
      report.outcome = 'invalid-manifest';
      report.message = state.rejected.message;
    }
    return undefined;
  }
  if (read.status === 'missing') {
    report.outcome = 'failed';
    report.message = `no manifest at ${adapters.manifests.url} (create one with push init)`;
    onEvent({ level: 'error', type: 'manifest.missing', message: report.message });
    return undefined;
  }
  return read;
}

/** 2. Validation: the manifest, or `undefined` when it is refused (the report says why; nothing changes). */
function validateManifest(
  ctx: DeployerContext,
  read: ManifestRead,
  report: TickReport,
): Manifest | undefined {
  const { settings, onEvent } = ctx;
  const parsed = parseManifest(read.text, { secretsDir: settings.secretsDir });
  for (const warning of parsed.warnings)
    onEvent({ level: 'warn', type: 'manifest.warning', message: `${warning.path}: ${warning.message}` });
  if (!parsed.ok) {
    report.outcome = 'invalid-manifest';
    report.message = `manifest ${read.etag} refused, nothing changed:\n${formatIssues(parsed.issues)}`;
    onEvent({ level: 'error', type: 'manifest.invalid', message: report.message });
    return undefined;
  }
  report.generation = parsed.manifest.generation;
  return parsed.manifest;
}

/**
 * 3. The plan: this host's services rendered and compared with the state. A service whose unit cannot be
 * rendered is refused and keeps running as it is: it is neither planned nor removed.
 */
function planManifest(ctx: DeployerContext, manifest: Manifest, state: DeployerState, report: TickReport) {
  const { settings, onEvent } = ctx;
  const { desired, failures: renderFailures } = desiredServices(manifest, settings.host, {
    secretsDir: settings.secretsDir,
  });
  const plan = planDeploy({ host: settings.host, generation: manifest.generation, desired, state });
  report.plan = plan;
  for (const failure of renderFailures) {
    onEvent({ level: 'error', type: 'service.refused', service: failure.service, message: failure.reason });
    const action = state.services[failure.service] ? 'update' : 'install';
    report.results.push({
      name: failure.service,
      action,
      outcome: 'refused',
      storePath: failure.storePath,
      reason: failure.reason,
    });
  }
  const refusedNames = new Set(renderFailures.map((f) => f.service));
  const plans = plan.services.filter((s) => !(s.action === 'remove' && refusedNames.has(s.name)));
  return { plans, desired, pulls: plan.pulls };
}

/** 4. Every needed closure pulled (signatures checked) before anything is touched. False: the tick stops here. */
async function pullClosures(
  ctx: DeployerContext,
  pulls: readonly string[],
  report: TickReport,
): Promise<boolean> {
  const { adapters, settings, onEvent } = ctx;
  if (pulls.length === 0) return true;
  try {
    if (!settings.substituter) throw new DeployError('USAGE', 'no substituter configured (--substituter)');
    onEvent({
      level: 'info',
      type: 'nix.pull',
      message: `pulling ${pulls.length} closure(s) from ${settings.substituter}`,
    });
    const started = adapters.clock.now();
    await adapters.nix.copyFrom(settings.substituter, pulls, {
      trustedPublicKeys: settings.trustedPublicKeys,
      // Only an explicit --insecure-allow-unsigned turns signature checks off (settings refuse no key otherwise).
      requireSignatures: !settings.insecureAllowUnsigned,
    });
    // The moment every closure is on the host: where the push-to-serving latency of an update starts.
    const ms = adapters.clock.now() - started;
    onEvent({ level: 'debug', type: 'nix.pulled', message: `closures present after ${ms}ms`, data: { ms } });
    return true;
  } catch (error) {
    report.outcome = 'failed';
    report.message = `pull failed, nothing changed: ${message(error)}`;
    onEvent({ level: 'error', type: 'nix.pull-failed', message: report.message });
    return false;
  }
}

/** 5. Pre-flight of each service to install or update: the ones that pass; the others are refused. */
async function preflightServices(
  ctx: DeployerContext,
  plans: readonly ServicePlan[],
  report: TickReport,
): Promise<ServicePlan[]> {
  const ready: ServicePlan[] = [];
  for (const p of plans) {
    if (p.action !== 'install' && p.action !== 'update') continue;
    // A check that cannot be made (getent failing, a permission error) refuses that service, not the tick.
    const refusal = await preflight(ctx, p).catch((error: unknown) => {
      if (!isDeployError(error)) throw error;
      return `pre-flight: could not check: ${error.message}`;
    });
    if (refusal === undefined) ready.push(p);
    else {
      ctx.onEvent({ level: 'error', type: 'service.refused', service: p.name, message: refusal });
      report.results.push({
        name: p.name,
        action: p.action,
        outcome: 'refused',
        storePath: p.storePath,
        reason: refusal,
      });
    }
  }
  return ready;
}

/** 6. (after the apply) The services the apply did not touch: unchanged, or held back after a failure. */
function reportUntouched(ctx: DeployerContext, plans: readonly ServicePlan[], report: TickReport): void {
  for (const p of plans) {
    if (p.action === 'unchanged')
      report.results.push({ name: p.name, action: p.action, outcome: 'unchanged', storePath: p.storePath });
    if (p.action === 'hold') {
      ctx.onEvent({ level: 'warn', type: 'service.held', service: p.name, message: p.changes.join('; ') });
      report.results.push({
        name: p.name,
        action: p.action,
        outcome: 'held',
        storePath: p.storePath,
        reason: p.changes.join('; '),
      });
    }
  }
}

/**
 * 7. The tick's outcome and the state to keep: failures of versions the manifest no longer asks for are
 * forgotten, and a manifest every service settled on is marked applied (the next tick skips it with a 304).
 */
function settle(
  ctx: DeployerContext,
  next: DeployerState,
  applied: { etag: string; manifest: Manifest; desired: readonly DesiredService[] },
  report: TickReport,
): DeployerState {
  // Old failures of services the manifest has since changed (or dropped) are no longer relevant.
  const wanted = new Map(applied.desired.map((d) => [d.service.name, d.specHash]));
  next.failures = next.failures.filter((f) => wanted.get(f.service) === f.specHash);
  const bad = report.results.filter(
    (r) => r.outcome === 'rolled-back' || r.outcome === 'failed' || r.outcome === 'refused',
  );
  const settled = !report.results.some(
    (r) => r.outcome === 'refused' || (r.action === 'remove' && r.outcome === 'failed'),
  );
  if (settled) {
    // Everything converged or is held back on purpose: the next tick can skip this manifest (304).
    next.manifest = { etag: applied.etag, generation: applied.manifest.generation, appliedAt: now(ctx) };
    delete next.rejected;
  }
  const changed = report.results.some((r) => r.outcome !== 'unchanged' && r.outcome !== 'held');
  report.outcome = bad.length ? 'partial' : changed ? 'applied' : 'unchanged';
  if (bad.length) report.message = bad.map((r) => `${r.name}: ${r.outcome} (${r.reason})`).join('; ');
  return next;
}

function now(ctx: DeployerContext): string {
  return new Date(ctx.adapters.clock.now()).toISOString();
}

/**
 * Records the tick: saves the state (first: it is the truth the host runs by), publishes the host status when
 * it changed, writes metrics, runs the hooks. A tick that changed nothing and ended as the previous one did
 * (idle, or the same failure again) writes nothing and runs no hook; the metrics file is its liveness signal.
 */
async function finish(
  ctx: DeployerContext,
  previous: DeployerState,
  state: DeployerState,
  report: TickReport,
  at: string,
): Promise<void> {
  const { adapters, onEvent } = ctx;
  const next: DeployerState = {
    ...state,
    lastTick: { at, outcome: report.outcome, ...(report.message ? { message: report.message } : {}) },
  };
  const sameTick =
    tickClass(previous.lastTick?.outcome) === tickClass(report.outcome) &&
    previous.lastTick?.message === report.message;
  const worldChanged =
    report.repaired.length > 0 || report.orphans.length > 0 || (report.routes?.mutations ?? 0) > 0;
  const quiet =
    sameTick &&
    !worldChanged &&
    isDeepStrictEqual({ ...previous, lastTick: undefined }, { ...next, lastTick: undefined });
  if (!quiet) await adapters.state.save(next);

  const status = buildHostStatus(next, ctx.version, at);
  const fingerprint = fingerprintStatus(status);
  if (fingerprint !== next.published) {
    try {
      await adapters.manifests.writeStatus(next.host, assertHostStatus(status));
      next.published = fingerprint;
      await adapters.state.save(next);
    } catch (error) {
      if (!isDeployError(error) && !(error instanceof Error)) throw error;
      onEvent({
        level: 'warn',
        type: 'status.failed',
        message: `host status not published (retried next tick): ${message(error)}`,
      });
    }
  }
  if (adapters.writeMetrics) {
    try {
      await adapters.writeMetrics(renderMetrics(next, ctx.version));
    } catch (error) {
      onEvent({ level: 'warn', type: 'metrics.failed', message: `metrics not written: ${message(error)}` });
    }
  }
  const ok = report.outcome === 'applied' || report.outcome === 'unchanged';
  onEvent({
    level: quiet ? 'debug' : ok ? 'info' : 'error',
    type: 'tick.end',
    message: `tick ${report.outcome}${report.message ? `: ${report.message}` : ''}`,
    data: {
      outcome: report.outcome,
      repaired: report.repaired,
      orphans: report.orphans,
      routes: report.routes,
    },
  });
  if (!quiet) await runHook(ctx, report, next);
}

/** `applied` and `unchanged` are both "converged": going from one to the other is not news worth a write. */
function tickClass(outcome: TickOutcome | undefined): string | undefined {
  return outcome === 'applied' || outcome === 'unchanged' ? 'ok' : outcome;
}

/** The status without its timestamps: what decides whether it must be published again. */
function fingerprintStatus(status: HostStatus): string {
  const { updatedAt: _u, lastTick, ...rest } = status;
  const stable = {
    ...rest,
    lastTick: lastTick && { outcome: tickClass(lastTick.outcome), message: lastTick.message },
  };
  return createHash('sha256').update(JSON.stringify(stable)).digest('hex').slice(0, 32);
}

/** Runs the success or failure hook with the outcome in environment variables. */
async function runHook(ctx: DeployerContext, report: TickReport, state: DeployerState): Promise<void> {
  const ok = report.outcome === 'applied' || report.outcome === 'unchanged';
  const command = ok ? ctx.settings.onSuccess : ctx.settings.onFailure;
  if (!command) return;
  const names = (pick: (r: ServiceResult) => boolean) =>
    report.results
      .filter(pick)
      .map((r) => r.name)
      .join(' ');
  const env = {
    DEPLOYER_OUTCOME: report.outcome,
    DEPLOYER_HOST: state.host,
    DEPLOYER_GENERATION: report.generation ?? state.manifest?.generation ?? '',
    DEPLOYER_MESSAGE: report.message ?? '',
    DEPLOYER_CHANGED: names(
      (r) => r.outcome === 'installed' || r.outcome === 'updated' || r.outcome === 'removed',
    ),
    DEPLOYER_FAILED: names(
      (r) => r.outcome === 'rolled-back' || r.outcome === 'failed' || r.outcome === 'refused',
    ),
  };
  try {
    const r = await ctx.adapters.shell.run('/bin/sh', ['-c', command], { env, timeoutMs: 60_000 });
    if (r.exitCode !== 0) {
      ctx.onEvent({
        level: 'warn',
        type: 'hook.failed',
        message: `hook "${command}" exited ${r.exitCode ?? r.signal}: ${r.stderr.trim()}`,
      });
    }
  } catch (error) {
    if (!isDeployError(error)) throw error;
    ctx.onEvent({
      level: 'warn',
      type: 'hook.failed',
      message: `hook "${command}" failed: ${error.message}`,
    });
  }
}
