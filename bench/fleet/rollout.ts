/**
 * Staged rollouts in the fleet simulation: the driver of `push deploy --canary` (`runRollout`, the library code
 * the CLI calls) rolls a new version out over the running fleet, wave by wave, with the developer's push context
 * and the real clock. The bench measures each driver here next to the plain push (all hosts at once) of the same
 * run.
 */
import { renderRolloutResult, runRollout } from '../../src/push/index.js';
import { formatDuration } from '../../src/runtime/duration.js';
import type { DeployerEvent } from '../../src/runtime/events.js';
import type { Fleet } from './sim.js';

/** What a rollout did, stage by stage. */
export interface RolloutResult {
  /** From the first write to the rollout recorded done (when `push deploy --canary` returns), in ms. */
  totalMs: number;
  /** From the first write to the last host of the last stage seen healthy on the new version, in ms. */
  liveMs: number;
  /**
   * Each stage (wave): its hosts; `ms` from its write to the next stage's write (or to done), `liveMs` from its
   * write to its last host seen healthy by the driver. The rest of a stage is `--min-healthy-time`.
   */
  stages: { hosts: number; ms: number; liveMs: number }[];
}

/**
 * Rolls `service` to `version` out over the running fleet (its hosts are already polling) and resolves when the
 * rollout is over. It may write the manifest as often as it needs (`fleet.push` is the developer's push
 * context) and watch the hosts' status or `fleet.hosts[i].liveAt`.
 */
export interface RolloutDriver {
  name: string;
  run(fleet: Fleet, change: { service: string; version: string }): Promise<RolloutResult>;
}

/** The flags of the staged rollout the bench runs (`push deploy SVC --canary ... --max-parallel ...`). */
export interface StagedRolloutOptions {
  canary: number;
  /** Hosts per wave after the canary. Default: a quarter of the service's hosts ({@link quarterOfFleet}). */
  maxParallel?: number;
  minHealthyTimeMs: number;
  /** How often the driver reads the hosts' reports (`push`'s poll). */
  pollMs: number;
}

/** The bench's default waves: one canary, then a quarter of the fleet at a time (four waves after the canary). */
export const quarterOfFleet = (hosts: number) => Math.max(1, Math.ceil(hosts / 4));

/** `push deploy SVC --canary C --max-parallel M --min-healthy-time T`, timed stage by stage. */
export function stagedRollout(options: StagedRolloutOptions): RolloutDriver {
  return {
    name: `push deploy --canary ${options.canary} --max-parallel ${options.maxParallel ?? 'N/4'} --min-healthy-time ${formatDuration(options.minHealthyTimeMs)}`,
    async run(fleet, { service, version }) {
      const { change, signing } = await fleet.prepare(service, version);
      const waves: { hosts: string[]; at: number }[] = [];
      const healthy = new Map<string, number>();
      const onEvent = (event: DeployerEvent) => {
        fleet.push.onEvent(event);
        if (event.type === 'rollout.wave')
          waves.push({ hosts: event.data?.hosts as string[], at: Date.now() });
        if (event.type === 'rollout.host' && event.data?.state === 'healthy') {
          const host = event.data.host as string;
          if (!healthy.has(host)) healthy.set(host, Date.now());
        }
      };
      const start = Date.now();
      const result = await runRollout(
        { ...fleet.push, onEvent },
        {
          change,
          signing,
          request: {
            canary: options.canary,
            maxParallel: options.maxParallel ?? quarterOfFleet(change.spec.hosts.length),
            minHealthyTimeMs: options.minHealthyTimeMs,
          },
          pollMs: options.pollMs,
        },
      );
      const end = Date.now();
      if (result.outcome !== 'done')
        throw new Error(`the staged rollout ended ${result.outcome}:\n${renderRolloutResult(result)}`);
      const lastHealthy = (hosts: string[]) => Math.max(...hosts.map((h) => healthy.get(h) ?? end));
      return {
        totalMs: end - start,
        liveMs: lastHealthy(waves.flatMap((w) => w.hosts)) - start,
        stages: waves.map((w, i) => ({
          hosts: w.hosts.length,
          ms: (waves[i + 1]?.at ?? end) - w.at,
          liveMs: lastHealthy(w.hosts) - w.at,
        })),
      };
    },
  };
}
