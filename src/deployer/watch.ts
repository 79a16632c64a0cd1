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
 * Runs ticks forever: tick at once, then every `interval + random jitter`, until `signal` aborts. A SIGTERM
 * (mapped to the signal by the bin) lets the running tick finish, so a host is never left half-applied.
 *
 * The first pause is drawn from the whole `interval + jitter` window rather than from the jitter alone: hosts
 * that start together (a fleet rebooted, or the deployer upgraded everywhere at once) would otherwise keep
 * polling within the same tenth of an interval for about a hundred rounds (the jitter widens their spread
 * only with the square root of the rounds), a burst of the whole fleet at the bucket every interval. From
 * the second poll on they are spread over the interval, as hosts started at different times are.
 */
export async function watch(options: WatchOptions): Promise<void> {
  const { tick, clock, intervalMs, signal, onEvent } = options;
  const jitter = options.jitter ?? 0.1;
  const random = options.random ?? Math.random;
  let first = true;
  while (!signal.aborted) {
    try {
      await tick();
    } catch (error) {
      onEvent({ level: 'error', type: 'tick.error', message: `tick failed: ${(error as Error).message}` });
    }
    if (signal.aborted) break;
    const wait = Math.round(
      first ? intervalMs * (1 + jitter) * random() : intervalMs * (1 + jitter * random()),
    );
    first = false;
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
