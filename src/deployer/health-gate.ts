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
 *
 * The deadline holds whatever the service does: each status read and each probe is raced against the time
 * left on `clock`, so a probe that never settles ends the gate at the deadline exactly (with a fake clock: at
 * `deadlineMs` to the millisecond), and the last pause is cut short to land on it.
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
  const left = () => Math.max(0, timing.deadlineMs - waited());
  const giveUp = (last: string): HealthVerdict => ({
    healthy: false,
    reason: `not healthy within ${formatDuration(timing.deadlineMs)}: ${last}`,
    waitedMs: waited(),
  });
  let baseline: number | undefined;
  let activeSince: number | undefined;
  let last = ''; // what the unit looked like at the last read
  /** How the previous health check failed, while the unit stays active. */
  let failedProbe: string | undefined;
  for (;;) {
    // Out of time while waiting for an answer: the last thing seen is the reason, if there was one.
    const s = await withinDeadline(status(), clock, left());
    if (s === TIMED_OUT) return giveUp(last || 'the unit did not report its status');
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
      const probed = probe ? await withinDeadline(probe(), clock, left()) : { ok: true };
      if (probed === TIMED_OUT) return giveUp(`active, health check ${failedProbe ?? 'did not finish'}`);
      failedProbe = probed.ok ? undefined : describeProbe(probed);
      last = failedProbe ? `active, health check ${failedProbe}` : 'active';
      if (probed.ok && clock.now() - activeSince >= timing.settleMs)
        return { healthy: true, waitedMs: waited() };
    } else {
      activeSince = undefined;
      failedProbe = undefined;
      last = `${s.activeState} (${s.subState})`;
    }
    if (left() <= 0) return giveUp(last);
    await clock.sleep(Math.min(timing.intervalMs, left()));
  }
}

const TIMED_OUT: unique symbol = Symbol('timed out');

/**
 * `operation`, or {@link TIMED_OUT} once `ms` have passed on `clock`. The operation first gets one turn of the
 * event loop on its own: a fake clock's `sleep` returns at once, and an answer that needs no waiting (a fake
 * adapter's) must win the race deterministically; an operation still pending after that is bounded by the
 * clock. The real clock's timer is cancelled when the operation settles first.
 */
async function withinDeadline<T>(
  operation: Promise<T>,
  clock: Clock,
  ms: number,
): Promise<T | typeof TIMED_OUT> {
  const quick = await Promise.race([
    operation.then((value) => ({ value })),
    new Promise<undefined>((resolve) => setImmediate(resolve, undefined)),
  ]);
  if (quick) return quick.value;
  const stop = new AbortController();
  try {
    return await Promise.race([
      operation,
      clock.sleep(ms, stop.signal).then((): typeof TIMED_OUT => TIMED_OUT),
    ]);
  } finally {
    stop.abort();
  }
}

function describeProbe(result: ProbeResult): string {
  if (result.error === undefined) return `answered ${result.status ?? 'nothing'}`;
  return `failed (${result.error}${result.status === undefined ? '' : `, status ${result.status}`})`;
}
