/**
 * Where a staged rollout plugs into the fleet simulation. Staged rollouts (a new version reaching the fleet in
 * stages, each gated on the previous one's health) are a later issue; until a driver is registered here, the
 * bench prints a placeholder line for this figure instead of a number.
 */
import type { Fleet } from './sim.js';

/** What a rollout did, stage by stage. */
export interface RolloutResult {
  /** From the first write to the last host of the last stage live, in ms. */
  totalMs: number;
  stages: { hosts: number; ms: number }[];
}

/**
 * Rolls `service` to `version` out over the running fleet (its hosts are already polling) and resolves when the
 * last stage is live. It may write the manifest as often as it needs (`fleet.push` is the developer's push
 * context) and watch the hosts' status or `fleet.hosts[i].liveAt`.
 */
export interface RolloutDriver {
  name: string;
  run(fleet: Fleet, change: { service: string; version: string }): Promise<RolloutResult>;
}

/** The registered drivers; the bench measures each, next to the plain push (all hosts at once) as baseline. */
export const ROLLOUT_DRIVERS: RolloutDriver[] = [];

/** The line the bench prints while no driver is registered. */
export const ROLLOUT_PLACEHOLDER =
  'staged rollout: not measured yet (staged rollouts are a later issue; register a RolloutDriver in bench/fleet/rollout.ts)';
