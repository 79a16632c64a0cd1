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
    // The first pause is drawn from the whole window (0.5 × 330 s), the next ones from the jitter (300 s + 15 s).
    expect(ticks).toEqual([0, 165_000, 480_000]);
    expect(events.map((e) => e.type)).toEqual(['watch.sleep', 'tick.error', 'watch.sleep', 'watch.stop']);
    expect(events[1]?.message).toBe('tick failed: S3 unreachable');
  });

  /** The first `n` pauses of a watch whose random numbers are `r`. */
  async function pauses(r: number, n: number): Promise<number[]> {
    const waits: number[] = [];
    const controller = new AbortController();
    await watch({
      clock: createFakeClock(0),
      intervalMs: 1000,
      random: () => r,
      signal: controller.signal,
      onEvent: (e) => {
        if (e.type !== 'watch.sleep') return;
        waits.push(e.data?.waitMs as number);
        if (waits.length === n) controller.abort();
      },
      tick: async () => {},
    });
    return waits;
  }

  it('spreads hosts over the jitter window', async () => {
    expect((await pauses(0, 2))[1]).toBe(1000);
    expect((await pauses(0.99, 2))[1]).toBe(1099);
  });

  it('draws the first pause from the whole interval and jitter, so hosts started together spread out', async () => {
    expect(await pauses(0, 3)).toEqual([0, 1000, 1000]);
    expect(await pauses(0.5, 3)).toEqual([550, 1050, 1050]);
    expect(await pauses(0.99, 3)).toEqual([1089, 1099, 1099]);
  });

  it('leaves no burst after a fleet-wide restart: from the second poll on, 1,000 hosts fill the interval evenly', async () => {
    // 1,000 hosts started at the same moment, each with its own random numbers (a fixed-seed generator).
    let seed = 42;
    const random = () => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const second: number[] = [];
    for (let host = 0; host < 1000; host++) {
      const clock = createFakeClock(0);
      const controller = new AbortController();
      let ticks = 0;
      await watch({
        clock,
        intervalMs: 10_000,
        random,
        signal: controller.signal,
        onEvent: () => {},
        tick: async () => {
          if (++ticks === 3) {
            second.push(clock.now());
            controller.abort();
          }
        },
      });
    }
    // Polls per second over the 11 s window the third ticks fall in: the busiest second holds about 1/11 of the
    // fleet, as for hosts started at random times; drawn from the jitter alone it held all 1,000.
    const perSecond = new Map<number, number>();
    for (const at of second)
      perSecond.set(Math.floor(at / 1000), (perSecond.get(Math.floor(at / 1000)) ?? 0) + 1);
    expect(Math.max(...perSecond.values())).toBeLessThan(150);
  });
});
