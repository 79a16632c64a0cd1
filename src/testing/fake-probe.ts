import type { HealthProbe, ProbeResult } from '../deployer/probe.js';

/** A {@link HealthProbe} answering from a table the test controls. */
export interface FakeHealthProbe extends HealthProbe {
  /** Sets the answer for a port (default for unknown ports: connection refused). */
  set(port: number, result: ProbeResult): void;
  /**
   * Makes checks of a port never settle, as a real probe would without an overall deadline against a service
   * that trickles its answer: what the health gate must bound on its own. `set` on the port undoes it.
   */
  hang(port: number): void;
  readonly checks: { port: number; path: string }[];
}

/** Creates a {@link FakeHealthProbe}. */
export function createFakeHealthProbe(): FakeHealthProbe {
  const answers = new Map<number, ProbeResult | 'hang'>();
  const checks: { port: number; path: string }[] = [];
  return {
    checks,
    set(port, result) {
      answers.set(port, result);
    },
    hang(port) {
      answers.set(port, 'hang');
    },
    async check(port, path) {
      checks.push({ port, path });
      const answer = answers.get(port) ?? { ok: false, error: 'ECONNREFUSED' };
      return answer === 'hang' ? new Promise<ProbeResult>(() => {}) : answer;
    },
  };
}
