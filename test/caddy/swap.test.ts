/**
 * The primitive of a zero-downtime switch: while load runs through a real Caddy, reconcileRoutes moves a route
 * from one upstream port to another (one PATCH of the proxy's upstreams) and no request fails. Runs in a private
 * network namespace (root, as CI runs) so it can set net.ipv4.tcp_migrate_req=1 there: without it, Linux resets
 * connections still queued on the listener Caddy closes at every config change (bench/caddy.ts shows both).
 */
import { describe, expect, it } from 'vitest';
import { runInNetns } from './swap-scenario.js';

describe('upstream swap under load through caddy run', () => {
  it('drops no request: each swap is one PATCH, requests after it reach the new upstream, the old one can stop', async () => {
    const report = await runInNetns([
      '--migrate',
      '1',
      '--swaps',
      '9',
      '--gap',
      '150',
      '--fresh',
      '4',
      '--keep-alive',
      '0',
    ]);
    expect(report.swaps).toHaveLength(9);
    for (const swap of report.swaps) {
      expect(swap).toMatchObject({ mutations: 1, kinds: ['swap-upstream'] });
      expect(swap.inFlight).toBeGreaterThan(0);
    }
    expect(report.fresh.errors).toEqual([]);
    expect(report.fresh.failed).toBe(0);
    expect(report.misrouted).toBe(0);
    // Both upstreams served between swaps: the load really ran across every switch.
    report.phases.forEach((phase, i) => {
      expect(phase[i % 2 === 0 ? 'A' : 'B'] ?? 0, `phase ${i}`).toBeGreaterThan(0);
    });
    expect(Object.keys(report.afterStop)).toEqual(['B']);
  }, 120_000);
});
