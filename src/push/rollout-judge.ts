/**
 * The judgement of a staged rollout, pure: what one host's status report says about the version it should run
 * ({@link judgeRolloutHost}), and what the reports of every switched host, the wave's timing and the rollout's
 * parameters say to do next ({@link judgeRollout}): wait, continue with the next wave, done, or halt (and revert).
 */
import { parseHostStatus } from '../deployer/status.js';
import type { RolloutParameters } from '../manifest/schema.js';
import { formatDuration } from '../runtime/duration.js';
import { otherHost } from './bucket.js';
import { storeName } from './rollout-plan.js';

/** One host of a rollout as its report shows it. */
export interface RolloutHostVerdict {
  host: string;
  /** `healthy`: runs the wanted version, healthy; `failed`: tried it and failed, or refused it; `pending`: not yet. */
  state: 'healthy' | 'failed' | 'pending';
  message: string;
}

/** What a host should run: `storePath` of `service` (`undefined`: not run it at all), after the write `etag` at `since`. */
export interface RolloutWant {
  service: string;
  storePath: string | undefined;
  /** The ETag of the manifest write that asked for it. */
  etag: string;
  /** When that write happened (ms since the epoch). */
  since: number;
}

/**
 * Judges one host's report (`status/<host>.json`, untrusted) against the version it should run. `healthy` when
 * it runs `want.storePath` of the service and reports it healthy (for "not at all": when it runs no such
 * service), whichever manifest it applied last: a concurrent push of another service does not hide it. `failed`
 * when it runs that version unhealthy, when it recorded a failure of exactly that version (it tried it, failed its health gate and rolled back), when
 * it refused that version (host policy, pre-flight), when it applied the write `want.etag` and does not run
 * that version, or when it refused the manifest or its last tick after the write failed while it does not run
 * it. `pending` otherwise (a busy tick, an older report), and for a report that is not a valid host status or
 * names another host: such a report is never counted, and the healthy deadline decides.
 */
export function judgeRolloutHost(host: string, reported: unknown, want: RolloutWant): RolloutHostVerdict {
  if (reported === undefined || reported === null)
    return { host, state: 'pending', message: 'no status reported yet' };
  const parsed = parseHostStatus(reported);
  if (!parsed.ok)
    return { host, state: 'pending', message: `invalid status report, not counted: ${parsed.message}` };
  const status = parsed.status;
  const other = otherHost(host, status.host);
  if (other !== undefined)
    return { host, state: 'pending', message: `untrusted status report, not counted: ${other}` };
  const wanted = want.storePath === undefined ? 'no' : storeName(want.storePath);
  const running = status.services?.find((s) => s.name === want.service);
  if (want.storePath === undefined ? running === undefined : running?.storePath === want.storePath) {
    if (running === undefined) return { host, state: 'healthy', message: `runs no ${want.service}` };
    if (running.health === 'healthy')
      return { host, state: 'healthy', message: `${want.service} ${wanted} healthy` };
    // Switched, then found down (a crash the deployer's drift check saw): what --min-healthy-time is for.
    if (running.health === 'unhealthy')
      return { host, state: 'failed', message: `${want.service} ${wanted} runs but is unhealthy` };
    return { host, state: 'pending', message: `${want.service} ${wanted} runs, health not known yet` };
  }
  if (want.storePath !== undefined) {
    const failure = status.failures?.find(
      (f) => f.service === want.service && f.storePath === want.storePath,
    );
    if (failure)
      return {
        host,
        state: 'failed',
        message: `tried ${wanted} and rolled back at ${failure.at}: ${failure.reason}`,
      };
    // A refused route leaves the service running (and says nothing of this version): not a failure of it.
    const refusal = status.refused?.find(
      (r) =>
        r.service === want.service &&
        r.scope === 'service' &&
        (r.storePath === undefined || r.storePath === want.storePath),
    );
    if (refusal) return { host, state: 'failed', message: `refused ${wanted}: ${refusal.message}` };
  }
  const ours = status.etag === want.etag;
  const outcome = status.lastTick?.outcome;
  const recent = Date.parse(status.lastTick?.at ?? '') >= want.since;
  const now = running ? `${storeName(running.storePath)} (${running.health ?? 'unknown'})` : 'nothing';
  if (status.rejected && (status.rejected.etag === want.etag || recent))
    return { host, state: 'failed', message: `refused the manifest: ${status.rejected.message}` };
  if (ours && outcome !== 'busy')
    return {
      host,
      state: 'failed',
      message: `applied the manifest (tick ${outcome ?? 'unknown'}) but runs ${now}, not ${wanted}`,
    };
  if (recent && (outcome === 'failed' || outcome === 'invalid-manifest'))
    return {
      host,
      state: 'failed',
      message: `last tick ${outcome}${status.lastTick?.message ? `: ${status.lastTick.message}` : ''}`,
    };
  return {
    host,
    state: 'pending',
    message: `runs ${now}, waiting for ${wanted} (generation ${status.generation ?? 'none'})`,
  };
}

/** One switched host as the driver saw it: its verdict, and since when it has been healthy without a break. */
export interface RolloutObservation extends RolloutHostVerdict {
  /** When it was first seen healthy in this unbroken run (ms since the epoch); absent unless healthy. */
  healthySince?: number;
}

/** What to do next. `halt` and `revert` name the hosts that failed; `revert` when `autoRevert` is on. */
export type RolloutVerdict =
  | { action: 'wait'; reason: string }
  | { action: 'continue'; reason: string }
  | { action: 'done'; reason: string }
  | { action: 'halt' | 'revert'; reason: string; failed: string[] };

/** What {@link judgeRollout} weighs. */
export interface RolloutJudgement {
  /** Every switched host (the waves so far), judged. */
  hosts: readonly RolloutObservation[];
  /** The hosts of the wave now running: they must stay healthy for `minHealthyTimeMs`. */
  wave: readonly string[];
  /** True when the wave now running is the last. */
  lastWave: boolean;
  /** When this wave's manifest was written (or the rollout resumed): the healthy deadline counts from here. */
  waveStartedAt: number;
  now: number;
  parameters: Pick<RolloutParameters, 'minHealthyTimeMs' | 'healthyDeadlineMs' | 'autoRevert'>;
}

/**
 * The rollout's next step, from the reports of every switched host: a failed host halts it (`revert`, or
 * `halt` with `autoRevert` off); so does a host still not healthy `healthyDeadlineMs` after the wave started.
 * While any host is pending, `wait`. Once every host is healthy and each of this wave's hosts has been for
 * `minHealthyTimeMs`: `continue` with the next wave, or `done` after the last; until then `wait`. Pure.
 */
export function judgeRollout(input: RolloutJudgement): RolloutVerdict {
  const { hosts, parameters, now } = input;
  const stop = parameters.autoRevert ? 'revert' : 'halt';
  const failed = hosts.filter((h) => h.state === 'failed');
  if (failed.length)
    return {
      action: stop,
      failed: failed.map((h) => h.host),
      reason: failed.map((h) => `${h.host}: ${h.message}`).join('; '),
    };
  const pending = hosts.filter((h) => h.state === 'pending');
  const deadline = input.waveStartedAt + parameters.healthyDeadlineMs;
  if (pending.length && now >= deadline)
    return {
      action: stop,
      failed: pending.map((h) => h.host),
      reason: `no healthy report within ${formatDuration(parameters.healthyDeadlineMs)}: ${pending.map((h) => `${h.host}: ${h.message}`).join('; ')}`,
    };
  if (pending.length)
    return { action: 'wait', reason: `waiting for ${pending.map((h) => h.host).join(', ')}` };
  const inWave = new Set(input.wave.map((h) => h.toLowerCase()));
  const holding = hosts.filter(
    (h) => inWave.has(h.host.toLowerCase()) && now - (h.healthySince ?? now) < parameters.minHealthyTimeMs,
  );
  if (holding.length) {
    const left = Math.max(
      ...holding.map((h) => parameters.minHealthyTimeMs - (now - (h.healthySince ?? now))),
    );
    return {
      action: 'wait',
      reason: `${holding.map((h) => h.host).join(', ')} healthy; holding ${formatDuration(left)} more (--min-healthy-time ${formatDuration(parameters.minHealthyTimeMs)})`,
    };
  }
  const wave = input.wave.join(', ');
  return input.lastWave
    ? {
        action: 'done',
        reason: `${wave} healthy for ${formatDuration(parameters.minHealthyTimeMs)}: every host is on the new version`,
      }
    : { action: 'continue', reason: `${wave} healthy for ${formatDuration(parameters.minHealthyTimeMs)}` };
}
