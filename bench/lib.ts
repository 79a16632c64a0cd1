/** Shared measuring helpers of the bench scripts: timed samples and a one-line summary per figure. */

/** Median, minimum, 95th and 99th percentile of samples (milliseconds). */
export function stats(samples: number[]) {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;
  return { min: sorted[0] as number, median: at(0.5), p95: at(0.95), p99: at(0.99) };
}

/** Collects garbage between samples when allowed (`--expose-gc`), so one run's leftovers don't bill the next. */
export const collect = (globalThis as { gc?: () => void }).gc ?? (() => {});

/** Milliseconds with two decimals. */
export const ms = (n: number) => `${n.toFixed(2)} ms`;

/** Prints one figure as `label  median  min  p95[extra]` and returns its stats. */
export function row(label: string, samples: number[], extra = '') {
  const s = stats(samples);
  console.log(
    `  ${label.padEnd(50)} median ${ms(s.median).padStart(10)}  min ${ms(s.min).padStart(10)}  p95 ${ms(s.p95).padStart(10)}${extra}`,
  );
  return s;
}

/** Runs a synchronous `fn` `runs` times, collecting garbage before each, and returns the durations. */
export function time(fn: () => void, runs: number): number[] {
  const samples: number[] = [];
  for (let i = 0; i < runs; i++) {
    collect();
    const start = performance.now();
    fn();
    samples.push(performance.now() - start);
  }
  return samples;
}

/** Like {@link time}, awaiting `fn`. */
export async function timeAsync(fn: () => unknown, runs: number): Promise<number[]> {
  const samples: number[] = [];
  for (let i = 0; i < runs; i++) {
    collect();
    const start = performance.now();
    await fn();
    samples.push(performance.now() - start);
  }
  return samples;
}
