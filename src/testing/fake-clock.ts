import type { Clock } from '../runtime/clock.js';

/** A {@link Clock} whose time only moves when code sleeps (or the test calls `advance`). */
export interface FakeClock extends Clock {
  /** Moves time forward without sleeping. */
  advance(ms: number): void;
  /** Total milliseconds slept so far. */
  readonly slept: number;
}

/**
 * Creates a {@link FakeClock} starting at `start` (ms since the epoch, default 2025-01-15T12:00:00Z).
 * `sleep` returns at once and advances time, so a 30 s health timeout takes no real time in a test.
 */
export function createFakeClock(start = Date.UTC(2025, 0, 15, 12)): FakeClock {
  let time = start;
  let slept = 0;
  return {
    now: () => time,
    async sleep(ms) {
      time += ms;
      slept += ms;
    },
    advance(ms) {
      time += ms;
    },
    get slept() {
      return slept;
    },
  };
}
