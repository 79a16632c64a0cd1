import type { Clock } from '../runtime/clock.js';
import { formatDuration } from '../runtime/duration.js';
import type { EventSink } from '../runtime/events.js';

/** Options of {@link watch}. */
export interface WatchOptions {
  /** One reconcile pass. Its errors are reported and the loop goes on. */
  tick: () => Promise<unknown>;
  clock: Clock;
  intervalMs: number;
  /** Fraction of the interval added at random, so a fleet does not poll in lockstep (default 0.1). */
  jitter?: number;
  /** Random number in [0, 1) (injected for tests). */
  random?: () => number;
  /** Aborting stops the loop after the tick in progress, never in the middle of one. */
  signal: AbortSignal;
  onEvent: EventSink;
}

/**
 * Runs ticks forever: tick, sleep `interval + random jitter`, repeat, until `signal` aborts. A SIGTERM
 * (mapped to the signal by the bin) lets the running tick finish, so a host is never left half-applied.
 */
export async function watch(options: WatchOptions): Promise<void> {
  const { tick, clock, intervalMs, signal, onEvent } = options;
  const jitter = options.jitter ?? 0.1;
  const random = options.random ?? Math.random;
  while (!signal.aborted) {
    try {
      await tick();
    } catch (error) {
      onEvent({ level: 'error', type: 'tick.error', message: `tick failed: ${(error as Error).message}` });
    }
    if (signal.aborted) break;
    const wait = Math.round(intervalMs * (1 + jitter * random()));
    onEvent({
      level: 'debug',
      type: 'watch.sleep',
      message: `next poll in ${formatDuration(wait)}`,
      data: { waitMs: wait },
    });
    await clock.sleep(wait, signal);
  }
  onEvent({ level: 'info', type: 'watch.stop', message: 'stopped' });
}
