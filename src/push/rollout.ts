/**
 * The staged rollout driver (`push deploy --canary`): the hosts stay simple, push switches them wave by wave.
 * Each wave is one signed manifest write; between writes the driver reads the switched hosts' status reports and
 * lets {@link judgeRollout} decide. Everything it needs is injected (the manifest store, the clock, the event
 * sink), so a test, or a fleet simulation, drives it with fakes.
 */
import { isDeepStrictEqual } from 'node:util';
import { DeployError } from '../errors.js';
import type { Manifest, Rollout, RolloutState, Service } from '../manifest/schema.js';
import { signManifest } from '../manifest/signature.js';
import { formatIssues, parseManifest, validateManifest } from '../manifest/validate.js';
import { renderTable } from '../render-table.js';
import type { LeaseOptions } from '../s3/lease.js';
import { updateManifest } from '../s3/update-manifest.js';
import type { PushContext } from './context.js';
import { checkTextNotPutBack, readArchiveFloor, readBefore } from './freshness.js';
import { currentManifest, manifestUpdateOptions, renderManifestText } from './manifest-change.js';
import { findRollbackPoint } from './rollback-point.js';
import {
  judgeRollout,
  judgeRolloutHost,
  type RolloutHostVerdict,
  type RolloutObservation,
  type RolloutWant,
} from './rollout-judge.js';
import {
  applyRollout,
  describeParameters,
  describeRollout,
  hostsOfWaves,
  isOpenRollout,
  planRollout,
  type RolloutRequest,
  type RolloutTarget,
  rolloutParameters,
  sameButHosts,
  sameRollout,
  stepRecord,
  storeName,
  wavesSwitched,
} from './rollout-plan.js';
import { type ManifestSigning, openPushedManifest } from './signing.js';
import { type ServiceChange, serviceOfChange } from './spec.js';
import { createStatusReader, type StatusReader } from './status-reader.js';

/** What the driver needs: the bucket, the clock, the event sink and the secrets directory (for validation). */
export type RolloutContext = Pick<PushContext, 'manifests' | 'clock' | 'onEvent' | 'secretsDir'>;

/** Options of {@link runRollout}. */
export interface RolloutOptions {
  /** The service to roll out: its spec, store path and revision, as `push deploy` builds them. */
  change: ServiceChange;
  /** The rollout flags. Resuming, the recorded wave flags stand (others are refused); timing flags given win. */
  request: RolloutRequest;
  /** What every write is signed with, and which signatures the manifest it builds on may carry. */
  signing: ManifestSigning;
  /** How often the hosts' reports are read. Default 2 s. */
  pollMs?: number;
  lease?: LeaseOptions;
}

/** One host of a rollout at its end: its wave, the version it should run, and what its report showed last. */
export interface RolloutHostRow {
  host: string;
  /** 1-based. */
  wave: number;
  /** `new`: switched (and left so); `previous`: never switched, or put back. */
  version: 'new' | 'previous';
  state: 'healthy' | 'failed' | 'pending' | 'not switched' | 'reverted';
  message: string;
}

/** What {@link runRollout} did. */
export interface RolloutResult {
  /**
   * `done`: every host on the new version; `halted`: stopped, switched hosts left as they are (`--no-auto-revert`);
   * `reverted`: stopped, switched hosts put back; `unchanged`: the service already ran exactly this everywhere.
   */
  outcome: 'done' | 'halted' | 'reverted' | 'unchanged';
  /** The record as last written (absent for `unchanged`). */
  record?: Rollout;
  /** Why it halted, or how it ended. */
  reason: string;
  /** True when it took over a rollout an earlier push had started. */
  resumed: boolean;
  hosts: RolloutHostRow[];
}

/** Raised when the manifest's rollout is not the one this push drives (see the message for the way out). */
const conflict = (message: string) => new DeployError('ROLLOUT_CONFLICT', message);

/**
 * Rolls `options.change` out in waves (canary, then `maxParallel` at a time), or resumes the open rollout of
 * that service to that store path. Each wave is written with compare-and-swap (re-applied on top of whatever
 * other pushes wrote meanwhile) and signed; then the switched hosts must report the new version healthy, and the
 * wave's hosts stay so for `minHealthyTimeMs`, before the next. A failure (a host tried the version and rolled
 * back, refused it, or did not report healthy within `healthyDeadlineMs`) halts it: the switched hosts go back to
 * the previous version (`autoRevert`), the driver waits for them to report it, and the result says so. Interrupted
 * (the process killed), the manifest stays consistent with its record `in-progress`: running it again resumes.
 * Throws `ROLLOUT_CONFLICT` when another rollout is open (or this one is ended by someone else meanwhile), and
 * `USAGE` for wave flags that do not fit the service's hosts.
 */
export async function runRollout(ctx: RolloutContext, options: RolloutOptions): Promise<RolloutResult> {
  const pollMs = options.pollMs ?? 2000;
  const begun = await beginRollout(ctx, options);
  if (begun.outcome === 'unchanged')
    return {
      outcome: 'unchanged',
      reason: `every host of ${options.change.spec.name} already runs ${storeName(options.change.storePath)}`,
      resumed: false,
      hosts: [],
    };
  let { record, etag } = begun;
  const { target } = begun;
  const name = target.to.name;
  const parameters = record.parameters;
  const newVersion = target.to.artifact.storePath;
  // When the manifest the hosts should follow was written: a failed tick before it is old news.
  let since = begun.since;
  let wave = Math.max(0, wavesSwitched(record) - 1);
  let observations = new Map<string, RolloutObservation>();
  let waveStartedAt = ctx.clock.now();
  let lastReason = '';
  // One reader for the whole run: past a few dozen hosts a round lists status/ and reads only what changed.
  const reader = createStatusReader(ctx.manifests);
  for (;;) {
    const seen = await observe(reader, record.switched, {
      service: name,
      storePath: newVersion,
      etag,
      since,
    });
    const now = ctx.clock.now();
    observations = track(observations, seen, now, (h) =>
      ctx.onEvent({
        level: h.state === 'failed' ? 'error' : 'info',
        type: 'rollout.host',
        service: name,
        message: `${h.host}: ${h.message}`,
        data: { host: h.host, state: h.state },
      }),
    );
    const verdict = judgeRollout({
      hosts: [...observations.values()],
      wave: record.waves[wave] ?? [],
      lastWave: wave >= record.waves.length - 1,
      waveStartedAt,
      now,
      parameters,
    });
    if (verdict.action === 'wait') {
      if (verdict.reason !== lastReason)
        ctx.onEvent({ level: 'debug', type: 'rollout.waiting', service: name, message: verdict.reason });
      lastReason = verdict.reason;
      await ctx.clock.sleep(pollMs);
      continue;
    }
    if (verdict.action === 'continue') {
      wave++;
      since = ctx.clock.now();
      ({ record, etag } = await writeStep(ctx, options, target, record, {
        state: 'in-progress',
        switched: hostsOfWaves(record.waves, wave + 1),
      }));
      waveStartedAt = ctx.clock.now();
      announceWave(ctx, record, wave, verdict.reason);
      continue;
    }
    if (verdict.action === 'done') {
      ({ record } = await writeStep(ctx, options, target, record, {
        state: 'done',
        message: verdict.reason,
      }));
      ctx.onEvent({ level: 'info', type: 'rollout.done', service: name, message: describeRollout(record) });
      return {
        outcome: 'done',
        record,
        reason: verdict.reason,
        resumed: begun.resumed,
        hosts: rows(record, observations),
      };
    }
    // halt or revert
    const state: RolloutState = verdict.action === 'revert' ? 'reverted' : 'halted';
    const reason = `halted: ${verdict.reason}`;
    ctx.onEvent({ level: 'error', type: `rollout.${verdict.action}`, service: name, message: reason });
    since = ctx.clock.now();
    ({ record, etag } = await writeStep(ctx, options, target, record, { state, message: reason }));
    if (state === 'halted')
      return { outcome: 'halted', record, reason, resumed: begun.resumed, hosts: rows(record, observations) };
    const previous = target.from?.artifact.storePath;
    const back = await confirmRevert(
      ctx,
      reader,
      record,
      { service: name, storePath: previous, etag, since },
      pollMs,
    );
    return {
      outcome: 'reverted',
      record,
      reason,
      resumed: begun.resumed,
      hosts: rows(record, observations, back),
    };
  }
}

/** What {@link beginRollout} found or wrote. */
type Begun =
  | { outcome: 'unchanged' }
  | {
      outcome: 'started' | 'resumed';
      resumed: boolean;
      record: Rollout;
      target: RolloutTarget;
      etag: string;
      /** When the manifest the hosts should follow was written (for a resumed rollout: now). */
      since: number;
    };

/**
 * Starts the rollout (writes its first wave), or takes over the open rollout of the same service and store path:
 * a halted one is set in progress again (with the timing flags given), one in progress is followed as it is.
 */
async function beginRollout(ctx: RolloutContext, options: RolloutOptions): Promise<Begun> {
  const { change, signing } = options;
  const to = serviceOfChange(change);
  const read = await ctx.manifests.read();
  const first = currentManifest(
    read.status === 'found' ? read.text : undefined,
    ctx.manifests.url,
    ctx.secretsDir,
    signing,
  );
  const open = isOpenRollout(first?.rollout) ? first?.rollout : undefined;
  if (open) refuseOther(open, to);
  if (open && first) {
    // Resuming: the version recorded at the start (its revision too), and the previous version as it ran before.
    const { revision: _now, ...spec } = to;
    const target: RolloutTarget = {
      to: { ...spec, ...revisionOf(open.to.revision) } as Service,
      from: await previousVersion(ctx, first, open, signing),
    };
    const problems = resumeProblems(first, open, target.to, options.request);
    if (problems.length)
      throw conflict(
        `the rollout of ${open.service} cannot be resumed as asked; nothing was written:\n${problems.map((p) => `  ${p}`).join('\n')}`,
      );
    const parameters = { ...open.parameters, ...timing(options.request) };
    const since = ctx.clock.now();
    let record = open;
    let etag = read.status === 'found' ? read.etag : '';
    if (open.state !== 'in-progress' || !isDeepStrictEqual(parameters, open.parameters)) {
      ({ record, etag } = await writeStep(ctx, options, target, open, { state: 'in-progress' }, parameters));
    }
    ctx.onEvent({
      level: 'info',
      type: 'rollout.resume',
      service: open.service,
      message: `resuming: ${describeRollout(record)}`,
    });
    return { outcome: 'resumed', resumed: true, record, target, etag, since };
  }
  const parameters = rolloutParameters(options.request);
  let begun: { record: Rollout; target: RolloutTarget } | undefined;
  const since = ctx.clock.now();
  const floor = await readArchiveFloor(ctx, signing);
  const before = await readBefore(ctx);
  const result = await updateManifest(
    ctx.manifests,
    (text) => {
      const current = currentManifest(text, ctx.manifests.url, ctx.secretsDir, signing);
      checkTextNotPutBack(floor, text, current, ctx.manifests.url, before);
      const theirs = current?.rollout;
      if (theirs && isOpenRollout(theirs)) {
        refuseOther(theirs, to);
        throw conflict(
          `a rollout of ${to.name} to ${to.artifact.storePath} was started by another push meanwhile; run push deploy again to follow it`,
        );
      }
      const planned = planRollout(current, to, parameters, new Date(ctx.clock.now()));
      begun = planned;
      if (!planned) return text as string;
      return signed(planned.manifest, ctx.secretsDir, signing);
    },
    manifestUpdateOptions(ctx, options.lease),
  );
  if (!begun) return { outcome: 'unchanged' };
  const { record, target } = begun;
  ctx.onEvent({
    level: 'info',
    type: 'rollout.start',
    service: record.service,
    message: `rollout of ${record.service} to ${storeName(record.to.storePath)} in ${record.waves.length} wave(s): ${record.waves.map((w) => w.join(', ')).join(' | ')} (${describeParameters(record.parameters)})`,
    data: { waves: record.waves },
  });
  announceWave(ctx, record, 0, 'canary');
  return { outcome: 'started', resumed: false, record, target, etag: result.etag, since };
}

/** An open rollout of another service, or of this one to another store path, is not ours to touch. */
function refuseOther(open: Rollout, to: Service): void {
  if (open.service !== to.name)
    throw conflict(
      `${describeRollout(open)}; one rollout at a time: finish or end it before rolling out ${to.name} (a plain push deploy ${to.name}, without rollout flags, lands meanwhile); nothing was written`,
    );
  if (open.to.storePath !== to.artifact.storePath)
    throw conflict(
      `${describeRollout(open)}; this push has ${to.artifact.storePath}: end the open rollout first (push rollback), or resume it; nothing was written`,
    );
}

/** Why resuming `open` with `to` and `request` would not be the same rollout (empty: it would). */
function resumeProblems(current: Manifest, open: Rollout, to: Service, request: RolloutRequest): string[] {
  const problems: string[] = [];
  const recorded = open.parameters;
  for (const key of ['canary', 'canaryHosts', 'maxParallel'] as const) {
    if (request[key] !== undefined && !isDeepStrictEqual(request[key], recorded[key]))
      problems.push(
        `it was started with ${describeParameters(recorded)}; its waves are fixed: resume it without --canary, --canary-hosts or --max-parallel`,
      );
  }
  const planned = new Set(open.waves.flat().map((h) => h.toLowerCase()));
  const hosts = new Set(to.hosts.map((h) => h.toLowerCase()));
  if (!isDeepStrictEqual(planned, hosts))
    problems.push(
      `the spec's hosts (${to.hosts.join(', ')}) are not the rollout's (${open.waves.flat().join(', ')})`,
    );
  const switched = new Set(open.switched.map((h) => h.toLowerCase()));
  const live = current.services.find(
    (s) => s.name === to.name && s.hosts.some((h) => switched.has(h.toLowerCase())),
  );
  if (live && !sameButHosts(live, { ...to, hosts: live.hosts }))
    problems.push(
      `the spec of ${to.name} changed since the rollout started; resume it with the spec it started with`,
    );
  return [...new Set(problems)];
}

/** The timing flags given (they may change when a rollout is resumed). */
function timing(request: RolloutRequest) {
  return {
    ...(request.minHealthyTimeMs === undefined ? {} : { minHealthyTimeMs: request.minHealthyTimeMs }),
    ...(request.healthyDeadlineMs === undefined ? {} : { healthyDeadlineMs: request.healthyDeadlineMs }),
    ...(request.autoRevert === undefined ? {} : { autoRevert: request.autoRevert }),
  };
}

const revisionOf = (revision: string | undefined) => (revision === undefined ? {} : { revision });

/**
 * The service as it ran before the rollout: its entry in the rollback point (verified: a revert writes it back),
 * or none when the service is new (no `from`, or no manifest before).
 */
async function previousVersion(
  ctx: RolloutContext,
  current: Manifest,
  open: Rollout,
  signing: ManifestSigning,
): Promise<Service | undefined> {
  if (!open.from || !open.rollbackPoint) return undefined;
  try {
    // The rollback point has it whole, on all its hosts.
    const point = await findRollbackPoint(ctx, open.rollbackPoint.generation, signing);
    return point.manifest.services.find((s) => s.name === open.service);
  } catch (error) {
    // Else the current manifest has it on the hosts not yet switched (and the switched ones ran it before).
    const switched = new Set(open.switched.map((h) => h.toLowerCase()));
    const unswitched = current.services.find(
      (s) =>
        s.name === open.service &&
        s.artifact.storePath === open.from?.storePath &&
        !s.hosts.some((h) => switched.has(h.toLowerCase())),
    );
    if (!unswitched) throw error;
    ctx.onEvent({
      level: 'warn',
      type: 'rollout.rollback-point-missing',
      service: open.service,
      message: `${(error as Error).message}; the previous version is taken from the current manifest`,
    });
    return { ...unswitched, hosts: [...unswitched.hosts, ...open.switched] };
  }
}

/** Validates and signs a manifest push is about to write. */
function signed(manifest: Manifest, secretsDir: string, signing: ManifestSigning): string {
  const checked = validateManifest(manifest, { secretsDir });
  if (!checked.ok)
    throw new DeployError(
      'MANIFEST_INVALID',
      `the manifest of this rollout step would be invalid; nothing was written:\n${formatIssues(checked.issues)}`,
      { details: checked.issues },
    );
  return signManifest(renderManifestText(manifest), signing.secretKey);
}

/**
 * Writes one step of the rollout (a wave, done, halted, reverted) on top of the current manifest, which must
 * still record this rollout as open: ended meanwhile (push rollback) or replaced, it throws `ROLLOUT_CONFLICT`.
 */
async function writeStep(
  ctx: RolloutContext,
  options: RolloutOptions,
  target: RolloutTarget,
  record: Rollout,
  step: { state: RolloutState; switched?: readonly string[]; message?: string },
  parameters = record.parameters,
): Promise<{ record: Rollout; etag: string; manifest: Manifest }> {
  let written: { record: Rollout; manifest: Manifest } | undefined;
  const floor = await readArchiveFloor(ctx, options.signing);
  const before = await readBefore(ctx);
  const result = await updateManifest(
    ctx.manifests,
    (text) => {
      const current = currentManifest(text, ctx.manifests.url, ctx.secretsDir, options.signing);
      checkTextNotPutBack(floor, text, current, ctx.manifests.url, before);
      const now = current?.rollout;
      if (!now || !sameRollout(now, record) || !isOpenRollout(now))
        throw conflict(
          `the rollout of ${record.service} to ${storeName(record.to.storePath)} was ended or replaced meanwhile (${now ? describeRollout(now) : 'the manifest records no rollout'}); this push stops here`,
        );
      const at = new Date(ctx.clock.now());
      const next = stepRecord({ ...now, parameters }, step, at);
      const manifest = applyRollout(current, target, next, at);
      written = { record: next, manifest };
      return signed(manifest, ctx.secretsDir, options.signing);
    },
    manifestUpdateOptions(ctx, options.lease),
  );
  const { record: next, manifest } = written as NonNullable<typeof written>;
  return { record: next, etag: result.etag, manifest };
}

function announceWave(ctx: RolloutContext, record: Rollout, wave: number, why: string): void {
  ctx.onEvent({
    level: 'info',
    type: 'rollout.wave',
    service: record.service,
    message: `wave ${wave + 1} of ${record.waves.length}: ${(record.waves[wave] ?? []).join(', ')} → ${storeName(record.to.storePath)}${wave === 0 ? '' : ` (${why})`}`,
    data: { wave: wave + 1, hosts: record.waves[wave] },
  });
}

/** Reads (with a bounded number at once, only what changed since the last round) and judges the reports of `hosts`. */
async function observe(
  reader: StatusReader,
  hosts: readonly string[],
  want: RolloutWant,
): Promise<RolloutHostVerdict[]> {
  const reads = await reader.read(hosts);
  return hosts.map((host): RolloutHostVerdict => {
    const record = reads.get(host);
    if (record?.invalid !== undefined)
      return { host, state: 'pending', message: `untrusted status report, not counted: ${record.invalid}` };
    return judgeRolloutHost(host, record?.status, want);
  });
}

/**
 * The observations after a new round: a host healthy again keeps the time it became so, one that is not loses
 * it; `onChange` hears each host whose state changed.
 */
function track(
  previous: ReadonlyMap<string, RolloutObservation>,
  seen: readonly RolloutHostVerdict[],
  now: number,
  onChange: (h: RolloutHostVerdict) => void,
): Map<string, RolloutObservation> {
  const next = new Map<string, RolloutObservation>();
  for (const h of seen) {
    const before = previous.get(h.host);
    if (before?.state !== h.state) onChange(h);
    const healthySince = h.state === 'healthy' ? (before?.healthySince ?? now) : undefined;
    next.set(h.host, { ...h, ...(healthySince === undefined ? {} : { healthySince }) });
  }
  return next;
}

/** After a revert: waits (up to the healthy deadline) for the switched hosts to report the previous version. */
async function confirmRevert(
  ctx: RolloutContext,
  reader: StatusReader,
  record: Rollout,
  want: RolloutWant,
  pollMs: number,
): Promise<Map<string, RolloutHostVerdict>> {
  const hosts = record.switched;
  const deadline = ctx.clock.now() + record.parameters.healthyDeadlineMs;
  for (;;) {
    const seen = await observe(reader, hosts, want);
    if (seen.every((h) => h.state !== 'pending') || ctx.clock.now() >= deadline) {
      const back = new Map(seen.map((h) => [h.host, h]));
      ctx.onEvent({
        level: seen.every((h) => h.state === 'healthy') ? 'info' : 'warn',
        type: 'rollout.reverted',
        service: record.service,
        message: seen.map((h) => `${h.host}: ${h.message}`).join('; '),
      });
      return back;
    }
    await ctx.clock.sleep(pollMs);
  }
}

/** The per-host rows of a finished run. */
function rows(
  record: Rollout,
  seen: ReadonlyMap<string, RolloutHostVerdict>,
  reverted?: ReadonlyMap<string, RolloutHostVerdict>,
): RolloutHostRow[] {
  const switched = new Set(record.switched.map((h) => h.toLowerCase()));
  return record.waves.flatMap((hosts, w) =>
    hosts.map((host): RolloutHostRow => {
      const last = seen.get(host);
      if (!switched.has(host.toLowerCase()))
        return {
          host,
          wave: w + 1,
          version: 'previous',
          state: 'not switched',
          message: 'kept the previous version',
        };
      if (reverted) {
        const back = reverted.get(host);
        const before = last ? `${last.state}: ${last.message}` : 'not judged';
        return {
          host,
          wave: w + 1,
          version: 'previous',
          state: back?.state === 'healthy' ? 'reverted' : (back?.state ?? 'pending'),
          message: `${before}; then put back: ${back?.message ?? 'no report'}`,
        };
      }
      return {
        host,
        wave: w + 1,
        version: 'new',
        state: last?.state ?? 'pending',
        message: last?.message ?? 'not judged',
      };
    }),
  );
}

/** The per-host table of a rollout's end, for people. */
export function renderRolloutResult(result: RolloutResult): string {
  const lines = [result.record ? describeRollout(result.record) : result.reason];
  if (result.hosts.length)
    lines.push(
      renderTable(
        ['HOST', 'WAVE', 'VERSION', 'STATE', 'DETAIL'],
        result.hosts.map((h) => [h.host, String(h.wave), h.version, h.state, h.message]),
      ),
    );
  return lines.join('\n');
}

/**
 * The rollout the current manifest records (open or over), for `push status`: read without verifying the
 * signature (display only; every write verifies what it builds on). `undefined` when there is none, or no
 * manifest, or one that does not parse.
 */
export async function readRollout(ctx: Pick<PushContext, 'manifests'>): Promise<Rollout | undefined> {
  const read = await ctx.manifests.read();
  if (read.status !== 'found') return undefined;
  const parsed = parseManifest(openPushedManifest(read.text, 'manifest', 'unverified').payload);
  return parsed.ok ? parsed.manifest.rollout : undefined;
}
