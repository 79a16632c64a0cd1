import { describe, expect, it } from 'vitest';
import { watch } from '../../src/deployer/watch.js';
import type { DeployerEvent } from '../../src/runtime/events.js';
import { createFakeClock } from '../../src/testing/index.js';

describe('watch', () => {
  it('ticks, sleeps interval + jitter, and stops after the tick in progress when aborted', async () => {
    const clock = createFakeClock(0);
    const controller = new AbortController();
    const ticks: number[] = [];
    const events: DeployerEvent[] = [];
    await watch({
      clock,
      intervalMs: 300_000,
      random: () => 0.5,
      signal: controller.signal,
      onEvent: (e) => events.push(e),
      tick: async () => {
        ticks.push(clock.now());
        if (ticks.length === 3) controller.abort();
        if (ticks.length === 2) throw new Error('S3 unreachable');
      },
    });
    expect(ticks).toEqual([0, 315_000, 630_000]);
    expect(events.map((e) => e.type)).toEqual(['watch.sleep', 'tick.error', 'watch.sleep', 'watch.stop']);
    expect(events[1]?.message).toBe('tick failed: S3 unreachable');
  });

  it('spreads hosts over the jitter window', async () => {
    const waits: number[] = [];
    for (const r of [0, 0.99]) {
      const controller = new AbortController();
      await watch({
        clock: createFakeClock(0),
        intervalMs: 1000,
        random: () => r,
        signal: controller.signal,
        onEvent: (e) => {
          if (e.type === 'watch.sleep') {
            waits.push(e.data?.waitMs as number);
            controller.abort();
          }
        },
        tick: async () => {},
      });
    }
    expect(waits).toEqual([1000, 1099]);
  });
});
