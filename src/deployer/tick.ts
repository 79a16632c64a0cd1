import { createHash } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import { readCaddyConfig } from '../caddy/reconcile.js';
import { DEFAULT_CADDY_ID_PREFIX } from '../caddy/routes.js';
import { DeployError, isDeployError } from '../errors.js';
import type { Manifest, ServiceHttp } from '../manifest/schema.js';
import { type ForeignRoute, foreignRoutes } from '../policy/routes.js';
import { servicePorts } from '../policy/service.js';
import { admitManifest, lastAccepted, trustFingerprint } from './admit.js';
import { applyServices, type PreflightContext, preflight, type ServiceResult } from './apply.js';
import type { DeployerContext } from './context.js';
import { desiredServices } from './desired.js';
import { type RouteRefusal, reconcileCaddy, removeOrphans, repairUnits } from './drift.js';
import { policyContext, tickPolicy } from './host-policy.js';
import { serviceUnits } from './live.js';
import { renderMetrics } from './metrics.js';
import { type DeployPlan, type DesiredService, planDeploy, type ServicePlan } from './plan.js';
import {
  type DeployerState,
  emptyState,
  type ManifestRefusalReason,
  type RefusalRecord,
  type TickOutcome,
} from './state.js';
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
  /**
   * Caddy admin requests made (and how many changed something), and the routes of ours refused because a route
   * of someone else's names their domain (the service runs; Caddy does not route to it).
   */
  routes?: { requests: number; mutations: number; refused: RouteRefusal[] };
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
    state = recordRouteRefusals(ctx, state, report.routes.refused, report);
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
  const admitted = validateManifest(ctx, read, state, report);
  if (!admitted.ok) return refuse(ctx, state, read.etag, admitted.reason, report);
  const { manifest, digest } = admitted;
  // Accepted: from now on nothing older is, even if this manifest is never applied in full.
  const accepted = acceptManifest(ctx, state, manifest.generation, digest);
  const { plans, desired, pulls } = planManifest(ctx, manifest, accepted, report);
  if (!(await pullClosures(ctx, pulls, report))) return accepted;
  const ready = await preflightServices(ctx, plans, { manifest, state: accepted }, report);
  const { switching, others, blocked } = splitSwitches(ctx, ready, accepted);
  const applied = await applyServices(
    ctx,
    [...others, ...plans.filter((p) => p.action === 'remove')],
    accepted,
  );
  const switched = await applySwitches(ctx, switching, applied.state);
  report.results.push(...blocked, ...applied.results, ...switched.results);
  reportUntouched(ctx, plans, report);
  return settle(ctx, switched.state, { etag: read.etag, manifest, digest, desired }, report);
}

/** The state after a refused manifest: the refusal recorded (and counted); everything else as it was. */
function refuse(
  ctx: DeployerContext,
  state: DeployerState,
  etag: string,
  reason: ManifestRefusalReason,
  report: TickReport,
): DeployerState {
  const manifestRefusals = {
    ...state.manifestRefusals,
    [reason]: (state.manifestRefusals?.[reason] ?? 0) + 1,
  };
  const trust = trustFingerprint(ctx.settings);
  const rejected = { etag, at: now(ctx), message: report.message ?? '', reason, trust };
  return { ...state, rejected, manifestRefusals };
}

/** The state once a manifest is accepted: the newest accepted one recorded, an earlier refusal forgotten. */
function acceptManifest(
  ctx: DeployerContext,
  state: DeployerState,
  generation: string,
  digest: string,
): DeployerState {
  const { rejected: _gone, ...rest } = state;
  const same = state.accepted?.generation === generation && state.accepted.digest === digest;
  return same ? rest : { ...rest, accepted: { generation, digest, at: now(ctx) } };
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
  const { adapters, settings, onEvent } = ctx;
  // A refusal made under other trust settings (a key added since) is judged again: the manifest is read anew.
  const rejected =
    state.rejected?.trust === undefined || state.rejected.trust === trustFingerprint(settings)
      ? state.rejected
      : undefined;
  // The last settled manifest may be skipped with a 304 only while nothing newer was accepted since: otherwise
  // its ETag in the bucket again means it was put back, and it is read to be judged (and refused) as stale.
  const settledIsNewest = !state.accepted || state.accepted.digest === state.manifest?.digest;
  const known = rejected?.etag ?? (settledIsNewest ? state.manifest?.etag : undefined);
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
    if (rejected) {
      report.outcome = 'invalid-manifest';
      report.message = rejected.message;
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

/**
 * 2. Admission: the signature (before anything else), the content, then the age against the last manifest
 * accepted (`admitManifest`). Refused: the report says why, and nothing changes.
 */
function validateManifest(
  ctx: DeployerContext,
  read: ManifestRead,
  state: DeployerState,
  report: TickReport,
): ReturnType<typeof admitManifest> {
  const { settings, onEvent } = ctx;
  const admitted = admitManifest(read.text, read.etag, settings, lastAccepted(state));
  for (const warning of admitted.warnings)
    onEvent({ level: 'warn', type: 'manifest.warning', message: `${warning.path}: ${warning.message}` });
  if (!admitted.ok) {
    report.outcome = 'invalid-manifest';
    report.message = admitted.message;
    onEvent({
      level: 'error',
      type: admitted.reason === 'invalid' ? 'manifest.invalid' : 'manifest.refused',
      message: report.message,
      data: { reason: admitted.reason },
    });
    return admitted;
  }
  report.generation = admitted.manifest.generation;
  if (admitted.keyName === undefined)
    onEvent({
      level: 'warn',
      type: 'manifest.unsigned',
      message: `manifest ${read.etag} is not signed; applied only because of --insecure-allow-unsigned-manifest`,
    });
  return admitted;
}

/**
 * 3. The plan: this host's services rendered and compared with the state. A service the host policy refuses
 * (judged from the manifest: see docs/security.md) or whose unit cannot be rendered is refused and keeps
 * running as it is (a new one stays absent): it is neither planned nor removed.
 */
function planManifest(ctx: DeployerContext, manifest: Manifest, state: DeployerState, report: TickReport) {
  const { settings, onEvent } = ctx;
  const { desired, failures: renderFailures } = desiredServices(manifest, settings.host, {
    secretsDir: settings.secretsDir,
    policy: { rules: tickPolicy(settings), context: policyContext(settings, Object.keys(state.services)) },
  });
  const plan = planDeploy({ host: settings.host, generation: manifest.generation, desired, state });
  report.plan = plan;
  for (const failure of renderFailures) {
    const refusals = failure.issues ?? [{ rule: 'unit', message: failure.reason }];
    onEvent({
      level: 'error',
      type: 'service.refused',
      service: failure.service,
      message: failure.reason,
      data: { refusals },
    });
    const action = state.services[failure.service] ? 'update' : 'install';
    report.results.push({
      name: failure.service,
      action,
      outcome: 'refused',
      storePath: failure.storePath,
      reason: failure.reason,
      refusals,
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
  { manifest, state }: { manifest: Manifest; state: DeployerState },
  report: TickReport,
): Promise<ServicePlan[]> {
  const changing = plans.filter((p) => p.action === 'install' || p.action === 'update');
  if (changing.length === 0) return [];
  const names = [...new Set([...manifest.services.map((s) => s.name), ...Object.keys(state.services)])];
  const shared: Omit<PreflightContext, 'at'> = {
    policy: policyContext(ctx.settings, names),
    deployerUnits: deployerUnitPorts(state, plans),
    foreign: await readForeignRoutes(ctx, changing),
  };
  const ready: ServicePlan[] = [];
  for (const p of changing) {
    const at = `services[${p.desired ? manifest.services.indexOf(p.desired.service) : -1}]`;
    // A check that cannot be made (getent failing, a permission error) refuses that service, not the tick.
    const refusal = await preflight(ctx, p, { ...shared, at }).catch((error: unknown) => {
      if (!isDeployError(error)) throw error;
      const message = `could not check: ${error.message}`;
      return { reason: `pre-flight: ${message}`, refusals: [{ rule: 'pre-flight', message }] };
    });
    if (refusal === undefined) ready.push(p);
    else {
      ctx.onEvent({
        level: 'error',
        type: 'service.refused',
        service: p.name,
        message: refusal.reason,
        data: { refusals: refusal.refusals },
      });
      report.results.push({
        name: p.name,
        action: p.action,
        outcome: 'refused',
        storePath: p.storePath,
        reason: refusal.reason,
        refusals: refusal.refusals,
      });
    }
  }
  return ready;
}

/**
 * Every unit of ours → the ports it has once this tick's plan is applied: the state's, except that a unit the
 * plan removes has none and one it installs or updates has its new ones. Pre-flight then does not take a port
 * that one of our services is leaving (two services swapping ports) for a port someone else holds.
 */
function deployerUnitPorts(state: DeployerState, plans: readonly ServicePlan[]): Map<string, number[]> {
  const ports = new Map<string, number[]>();
  for (const record of Object.values(state.services)) {
    const http = record.route as ServiceHttp | undefined;
    ports.set(record.unitName, http ? [http.internalPort] : []);
    // A candidate left by an interrupted switch holds its port until the switch is settled.
    const candidate = record.switch?.candidate;
    if (candidate) ports.set(candidate.unitName, candidate.port === undefined ? [] : [candidate.port]);
  }
  for (const p of plans) {
    if (p.action === 'remove') ports.set(p.unitName, []);
    else if ((p.action === 'install' || p.action === 'update') && p.desired) {
      ports.set(p.unitName, servicePorts(p.desired.service));
      const candidate = p.desired.candidate;
      if (candidate?.port !== undefined) ports.set(candidate.unitName, [candidate.port]);
    }
  }
  return ports;
}

/**
 * The routes in Caddy that are not ours, when a service to install or update wants a route (one read); none
 * when Caddy is off or cannot be read now (the reconcile that follows refuses a conflicting route then).
 */
async function readForeignRoutes(
  ctx: DeployerContext,
  changing: readonly ServicePlan[],
): Promise<ForeignRoute[]> {
  const admin = ctx.adapters.caddy;
  if (!admin || !changing.some((p) => p.desired?.service.http)) return [];
  try {
    return foreignRoutes((await readCaddyConfig(admin)).config, DEFAULT_CADDY_ID_PREFIX);
  } catch (error) {
    if (!isDeployError(error)) throw error;
    ctx.onEvent({
      level: 'warn',
      type: 'routes.unchecked',
      message: `Caddy's routes not read for pre-flight (checked again when routes are reconciled): ${error.message}`,
    });
    return [];
  }
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
  applied: { etag: string; manifest: Manifest; digest: string; desired: readonly DesiredService[] },
  report: TickReport,
): DeployerState {
  // Old failures of services the manifest has since changed (or dropped) are no longer relevant.
  const wanted = new Map(applied.desired.map((d) => [d.service.name, d.specHash]));
  next.failures = next.failures.filter((f) => wanted.get(f.service) === f.specHash);
  setRefused(next, 'service', serviceRefusals(report.results, now(ctx)));
  const bad = report.results.filter(
    (r) => r.outcome === 'rolled-back' || r.outcome === 'failed' || r.outcome === 'refused',
  );
  const settled = !report.results.some(
    (r) => r.outcome === 'refused' || (r.action === 'remove' && r.outcome === 'failed'),
  );
  if (settled) {
    // Everything converged or is held back on purpose: the next tick can skip this manifest (304).
    next.manifest = {
      etag: applied.etag,
      generation: applied.manifest.generation,
      appliedAt: now(ctx),
      digest: applied.digest,
    };
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

/** One record per rule of each refused service of the tick. */
function serviceRefusals(results: readonly ServiceResult[], at: string): RefusalRecord[] {
  return results
    .filter((r) => r.outcome === 'refused')
    .flatMap((r) =>
      (r.refusals ?? [{ rule: 'pre-flight', message: r.reason ?? '' }]).map((refusal) => ({
        service: r.name,
        scope: 'service' as const,
        ...refusal,
        storePath: r.storePath,
        since: at,
      })),
    );
}

/**
 * Replaces the refusals of one scope in `state.refused` (the field goes when none are left). A refusal that
 * was already there keeps its `since`, so a refusal that repeats every tick does not change the state.
 */
function setRefused(state: DeployerState, scope: RefusalRecord['scope'], records: RefusalRecord[]): void {
  const same = (a: RefusalRecord, b: RefusalRecord) =>
    a.service === b.service &&
    a.scope === b.scope &&
    a.rule === b.rule &&
    a.path === b.path &&
    a.message === b.message &&
    a.storePath === b.storePath;
  const previous = state.refused ?? [];
  const kept = previous.filter((r) => r.scope !== scope);
  const merged = [
    ...kept,
    ...records.map((r) => ({ ...r, since: previous.find((p) => same(p, r))?.since ?? r.since })),
  ];
  if (merged.length) state.refused = merged;
  else delete state.refused;
}

/**
 * The routes Caddy was not given because a route of someone else's names their domain: recorded in the state
 * (scope `route`), and the tick is `partial` with the reason in its message.
 */
function recordRouteRefusals(
  ctx: DeployerContext,
  state: DeployerState,
  refused: readonly RouteRefusal[],
  report: TickReport,
): DeployerState {
  // The common case, nothing refused now or before: the state is not copied.
  if (refused.length === 0 && !state.refused?.some((r) => r.scope === 'route')) return state;
  const next = structuredClone(state);
  setRefused(
    next,
    'route',
    refused.map((r) => {
      const record: RefusalRecord = {
        service: r.service,
        scope: 'route',
        rule: 'route.foreign-host',
        path: 'http.domain',
        message: r.message,
        since: now(ctx),
      };
      const storePath = state.services[r.service]?.storePath;
      if (storePath !== undefined) record.storePath = storePath;
      return record;
    }),
  );
  if (refused.length) {
    if (report.outcome === 'applied' || report.outcome === 'unchanged') report.outcome = 'partial';
    const text = refused.map((r) => `${r.service}: route refused (${r.message})`).join('; ');
    report.message = [report.message, text].filter(Boolean).join('; ');
  }
  return next;
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
