import type { HealthProbe, ProbeResult } from '../deployer/probe.js';

/** A {@link HealthProbe} answering from a table the test controls. */
export interface FakeHealthProbe extends HealthProbe {
  /** Sets the answer for a port (default for unknown ports: connection refused). */
  set(port: number, result: ProbeResult): void;
  readonly checks: { port: number; path: string }[];
}

/** Creates a {@link FakeHealthProbe}. */
export function createFakeHealthProbe(): FakeHealthProbe {
  const answers = new Map<number, ProbeResult>();
  const checks: { port: number; path: string }[] = [];
  return {
    checks,
    set(port, result) {
      answers.set(port, result);
    },
    async check(port, path) {
      checks.push({ port, path });
      return answers.get(port) ?? { ok: false, error: 'ECONNREFUSED' };
    },
  };
}
