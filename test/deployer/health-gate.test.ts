import { describe, expect, it } from 'vitest';
import { type UnitHealthStatus, waitHealthy } from '../../src/deployer/health-gate.js';
import type { ProbeResult } from '../../src/deployer/probe.js';
import { createClock } from '../../src/runtime/clock.js';
import { createFakeClock } from '../../src/testing/index.js';

const timing = { settleMs: 3000, intervalMs: 1000, deadlineMs: 10_000 };
const st = (activeState: string, nRestarts = 0, extra: Partial<UnitHealthStatus> = {}): UnitHealthStatus => ({
  activeState,
  subState: activeState === 'active' ? 'running' : 'auto-restart',
  result: 'success',
  execMainStatus: 0,
  nRestarts,
  ...extra,
});

/** Replays statuses (the last one repeats) and probe answers. */
function run(statuses: UnitHealthStatus[], probes?: ProbeResult[]) {
  const clock = createFakeClock();
  let i = 0;
  let p = 0;
  return waitHealthy({
    status: async () => statuses[Math.min(i++, statuses.length - 1)] as UnitHealthStatus,
    probe: probes ? async () => probes[Math.min(p++, probes.length - 1)] as ProbeResult : undefined,
    clock,
    timing,
  });
}

describe('waitHealthy', () => {
  it('is healthy once active for the settle time', async () => {
    expect(await run([st('activating'), st('active')])).toEqual({ healthy: true, waitedMs: 4000 });
  });

  it('waits for the health check to answer 2xx', async () => {
    const verdict = await run(
      [st('active')],
      [
        { ok: false, error: 'ECONNREFUSED' },
        { ok: false, status: 503 },
        { ok: true, status: 200 },
      ],
    );
    expect(verdict).toEqual({ healthy: true, waitedMs: 3000 });
  });

  it('fails at once when the unit fails', async () => {
    const verdict = await run([
      st('activating'),
      st('failed', 0, { result: 'exit-code', execMainStatus: 3 }),
    ]);
    expect(verdict).toEqual({
      healthy: false,
      reason: 'unit failed (result exit-code, exit status 3)',
      waitedMs: 1000,
    });
  });

  it('fails when the restart counter grows, even if the unit is active again', async () => {
    const verdict = await run([st('active', 0), st('active', 0), st('active', 1, { execMainStatus: 1 })]);
    expect(verdict).toMatchObject({ healthy: false, reason: 'unit restarted 1 time (last exit status 1)' });
  });

  it('restarts the settle timer when the unit leaves active', async () => {
    const verdict = await run([st('active'), st('active'), st('deactivating'), st('active')]);
    expect(verdict).toEqual({ healthy: true, waitedMs: 6000 });
  });

  it('gives up at the deadline with the last thing seen', async () => {
    expect(await run([st('activating')])).toEqual({
      healthy: false,
      reason: 'not healthy within 10s: activating (auto-restart)',
      waitedMs: 10_000,
    });
    expect(await run([st('active')], [{ ok: false, status: 500 }])).toMatchObject({
      healthy: false,
      reason: 'not healthy within 10s: active, health check answered 500',
    });
  });

  it('ends exactly at the deadline when a health check never settles', async () => {
    const clock = createFakeClock();
    const verdict = await waitHealthy({
      status: async () => st('active'),
      probe: () => new Promise<ProbeResult>(() => {}),
      clock,
      timing,
    });
    expect(verdict).toEqual({
      healthy: false,
      reason: 'not healthy within 10s: active, health check did not finish',
      waitedMs: 10_000,
    });
  });

  it('ends exactly at the deadline when a later check hangs, naming how the one before failed', async () => {
    const clock = createFakeClock();
    let n = 0;
    const verdict = await waitHealthy({
      status: async () => st('active'),
      probe: () =>
        n++ < 2
          ? Promise.resolve({ ok: false, status: 200, error: 'response not complete within 1000ms' })
          : new Promise<ProbeResult>(() => {}),
      clock,
      timing,
    });
    expect(verdict).toEqual({
      healthy: false,
      reason:
        'not healthy within 10s: active, health check failed (response not complete within 1000ms, status 200)',
      waitedMs: 10_000,
    });
  });

  it('ends exactly at the deadline when the unit status never comes', async () => {
    const clock = createFakeClock();
    let n = 0;
    const verdict = await waitHealthy({
      status: () => (n++ < 3 ? Promise.resolve(st('activating')) : new Promise<UnitHealthStatus>(() => {})),
      clock,
      timing,
    });
    expect(verdict).toEqual({
      healthy: false,
      reason: 'not healthy within 10s: activating (auto-restart)',
      waitedMs: 10_000,
    });
  });

  it('lands on the deadline even when it is not a multiple of the interval', async () => {
    const clock = createFakeClock();
    const verdict = await waitHealthy({
      status: async () => st('activating'),
      clock,
      timing: { ...timing, deadlineMs: 2500 },
    });
    expect(verdict).toMatchObject({ healthy: false, waitedMs: 2500 });
  });

  it('lets a real answer that takes longer than one turn of the event loop win over the deadline', async () => {
    // A real clock and a status that takes a few milliseconds: the deadline timer is cancelled, not awaited.
    const verdict = await waitHealthy({
      status: () => new Promise((resolve) => setTimeout(() => resolve(st('active')), 5)),
      clock: createClock(),
      timing: { settleMs: 0, intervalMs: 10, deadlineMs: 60_000 },
    });
    expect(verdict).toMatchObject({ healthy: true });
  });
});
