import type { Clock } from '../runtime/clock.js';
import { formatDuration } from '../runtime/duration.js';
import type { ProbeResult } from './probe.js';

/** The parts of a unit's status the health gate reads (from `systemctl show`). */
export interface UnitHealthStatus {
  activeState: string;
  subState: string;
  result: string;
  execMainStatus: number;
  nRestarts: number;
}

/** Timing of the health gate (the deployer's `health*` settings). */
export interface HealthGateTiming {
  /** The unit must stay active this long without restarting. */
  settleMs: number;
  /** Pause between checks. */
  intervalMs: number;
  /** Give up (and roll back) after this long. */
  deadlineMs: number;
}

/** The verdict of {@link waitHealthy}. */
export type HealthVerdict =
  | { healthy: true; waitedMs: number }
  | { healthy: false; reason: string; waitedMs: number };

/**
 * Waits until a freshly (re)started unit is healthy: `active`, staying up for the settle time without its
 * restart counter growing, and, when the service has an HTTP health check, answering 2xx. Fails fast on a
 * `failed` unit or a restart; otherwise gives up at the deadline, with the last thing seen as the reason.
 */
export async function waitHealthy(input: {
  status: () => Promise<UnitHealthStatus>;
  probe?: () => Promise<ProbeResult>;
  clock: Clock;
  timing: HealthGateTiming;
}): Promise<HealthVerdict> {
  const { status, probe, clock, timing } = input;
  const start = clock.now();
  const waited = () => clock.now() - start;
  let baseline: number | undefined;
  let activeSince: number | undefined;
  let last = 'no status read yet';
  for (;;) {
    const s = await status();
    baseline ??= s.nRestarts;
    if (s.activeState === 'failed') {
      return {
        healthy: false,
        reason: `unit failed (result ${s.result}, exit status ${s.execMainStatus})`,
        waitedMs: waited(),
      };
    }
    if (s.nRestarts > baseline) {
      const times = s.nRestarts - baseline;
      return {
        healthy: false,
        reason: `unit restarted ${times} time${times === 1 ? '' : 's'} (last exit status ${s.execMainStatus})`,
        waitedMs: waited(),
      };
    }
    if (s.activeState === 'active') {
      activeSince ??= clock.now();
      const probed = probe ? await probe() : { ok: true };
      last = probed.ok ? 'active' : `active, health check ${describeProbe(probed)}`;
      if (probed.ok && clock.now() - activeSince >= timing.settleMs)
        return { healthy: true, waitedMs: waited() };
    } else {
      activeSince = undefined;
      last = `${s.activeState} (${s.subState})`;
    }
    if (waited() >= timing.deadlineMs) {
      return {
        healthy: false,
        reason: `not healthy within ${formatDuration(timing.deadlineMs)}: ${last}`,
        waitedMs: waited(),
      };
    }
    await clock.sleep(timing.intervalMs);
  }
}

function describeProbe(result: ProbeResult): string {
  return result.status === undefined
    ? `failed (${result.error ?? 'no response'})`
    : `answered ${result.status}`;
}
