import { describe, expect, it } from 'vitest';
import {
  judgeRollout,
  judgeRolloutHost,
  type RolloutJudgement,
  type RolloutObservation,
} from '../../src/push/rollout-judge.js';
import { storePath } from '../builders.js';

const OLD = storePath('web-1');
const NEW = storePath('web-2');
const SINCE = Date.parse('2025-01-15T12:00:00Z');
const want = { service: 'web', storePath: NEW as string | undefined, etag: '"e2"', since: SINCE };

/** A host's report as a deployer publishes it, `overrides` over a host that runs the old version, healthy. */
function report(overrides: Record<string, unknown> = {}, host = 'a') {
  return {
    host,
    deployerVersion: '0.1.0',
    updatedAt: '2025-01-15T12:00:05Z',
    etag: '"e1"',
    generation: '2025-01-15T11:00:00Z',
    lastTick: { at: '2025-01-15T11:00:01Z', outcome: 'applied' },
    services: [{ name: 'web', storePath: OLD, health: 'healthy', since: '2025-01-15T11:00:01Z' }],
    failures: [],
    refused: [],
    rollbacks: 0,
    ...overrides,
  };
}
const runs = (path: string, health = 'healthy') => ({
  services: [{ name: 'web', storePath: path, health, since: '2025-01-15T12:00:03Z' }],
});
const after = { lastTick: { at: '2025-01-15T12:00:03Z', outcome: 'applied' } };
const ours = { etag: '"e2"', ...after };

describe('judgeRolloutHost: one report against the version the host should run', () => {
  it.each([
    ['no report yet', undefined, want, 'pending', /no status reported yet/],
    [
      'an older report, still on the old version',
      report(),
      want,
      'pending',
      /runs web-1 \(healthy\), waiting for web-2/,
    ],
    [
      'the new version, healthy, after our write',
      report({ ...ours, ...runs(NEW) }),
      want,
      'healthy',
      /web web-2 healthy/,
    ],
    [
      'the new version, healthy, under a later manifest (another push landed after ours)',
      report({ etag: '"e3"', ...after, ...runs(NEW) }),
      want,
      'healthy',
      /web-2 healthy/,
    ],
    [
      'the new version, health not known yet',
      report({ ...ours, ...runs(NEW, 'unknown') }),
      want,
      'pending',
      /health not known/,
    ],
    [
      'the new version, then found down',
      report({ ...ours, ...runs(NEW, 'unhealthy') }),
      want,
      'failed',
      /runs but is unhealthy/,
    ],
    [
      'tried the new version and rolled back (a failure record of exactly it)',
      report({
        ...ours,
        failures: [
          {
            service: 'web',
            storePath: NEW,
            specHash: 'h',
            at: '2025-01-15T12:00:03Z',
            reason: 'health check failed',
          },
        ],
      }),
      want,
      'failed',
      /tried web-2 and rolled back at 2025-01-15T12:00:03Z: health check failed/,
    ],
    [
      'a failure record of another version is not ours',
      report({
        failures: [
          {
            service: 'web',
            storePath: storePath('web-0'),
            specHash: 'h',
            at: '2025-01-15T10:00:00Z',
            reason: 'x',
          },
        ],
      }),
      want,
      'pending',
      /waiting for web-2/,
    ],
    [
      'refused the new version (host policy)',
      report({
        ...after,
        refused: [
          {
            service: 'web',
            scope: 'service',
            rule: 'exec-user',
            message: 'root is not allowed',
            storePath: NEW,
            since: 'x',
          },
        ],
      }),
      want,
      'failed',
      /refused web-2: root is not allowed/,
    ],
    [
      'a refused route is not a failure of the version',
      report({
        ...after,
        refused: [
          { service: 'web', scope: 'route', rule: 'domains', message: 'domain not allowed', since: 'x' },
        ],
      }),
      want,
      'pending',
      /waiting for web-2/,
    ],
    [
      'refused the manifest itself',
      report({ rejected: { etag: '"e2"', at: 'x', reason: 'bad_signature', message: 'bad signature' } }),
      want,
      'failed',
      /refused the manifest: bad signature/,
    ],
    [
      'applied our manifest and still runs the old version',
      report({ ...ours }),
      want,
      'failed',
      /applied the manifest \(tick applied\) but runs web-1 \(healthy\), not web-2/,
    ],
    [
      'a busy tick is not a verdict',
      report({ etag: '"e2"', lastTick: { at: '2025-01-15T12:00:03Z', outcome: 'busy' } }),
      want,
      'pending',
      /waiting/,
    ],
    [
      'its last tick after our write failed',
      report({
        lastTick: { at: '2025-01-15T12:00:03Z', outcome: 'failed', message: 'cannot read the manifest' },
      }),
      want,
      'failed',
      /last tick failed: cannot read the manifest/,
    ],
    [
      'a failed tick before our write is old news',
      report({ lastTick: { at: '2025-01-15T11:59:00Z', outcome: 'failed' } }),
      want,
      'pending',
      /waiting/,
    ],
    [
      'not a host status: never counted',
      { host: 'a', services: 'all fine' },
      want,
      'pending',
      /^invalid status report, not counted/,
    ],
    [
      "another host's report: never counted",
      report({ ...ours, ...runs(NEW) }, 'b'),
      want,
      'pending',
      /^untrusted status report, not counted/,
    ],
    [
      'back on the old version, after a revert',
      report({ ...ours }),
      { ...want, storePath: OLD },
      'healthy',
      /web-1 healthy/,
    ],
    [
      'a new service reverted: runs none',
      report({ ...ours, services: [] }),
      { ...want, storePath: undefined },
      'healthy',
      /runs no web/,
    ],
    [
      'a new service reverted: still runs it',
      report({ ...runs(NEW) }),
      { ...want, storePath: undefined },
      'pending',
      /waiting for no/,
    ],
  ] as const)('$0 → $3', (_name, reported, wanted, state, message) => {
    const verdict = judgeRolloutHost('a', reported, wanted);
    expect(verdict.state).toBe(state);
    expect(verdict.message).toMatch(message);
  });
});

const P = { minHealthyTimeMs: 10_000, healthyDeadlineMs: 300_000, autoRevert: true };
const T0 = 1_000_000;
const healthy = (host: string, since: number): RolloutObservation => ({
  host,
  state: 'healthy',
  message: 'web web-2 healthy',
  healthySince: since,
});
const pending = (host: string): RolloutObservation => ({ host, state: 'pending', message: 'runs web-1' });
const failed = (host: string): RolloutObservation => ({
  host,
  state: 'failed',
  message: 'tried web-2 and rolled back',
});

const judgement = (overrides: Partial<RolloutJudgement>): RolloutJudgement => ({
  hosts: [],
  wave: ['a'],
  lastWave: false,
  waveStartedAt: T0,
  now: T0,
  parameters: P,
  ...overrides,
});

describe('judgeRollout: per-host reports, wave timing and parameters → the next step', () => {
  it.each([
    ['the canary has not reported yet', { hosts: [pending('a')], now: T0 + 5_000 }, 'wait', /waiting for a/],
    [
      'the canary is healthy, not for long enough',
      { hosts: [healthy('a', T0 + 2_000)], now: T0 + 5_000 },
      'wait',
      /a healthy; holding 7s more/,
    ],
    [
      'the canary has been healthy for min-healthy-time',
      { hosts: [healthy('a', T0 + 2_000)], now: T0 + 12_000 },
      'continue',
      /a healthy for 10s/,
    ],
    [
      'the last wave has been healthy for min-healthy-time',
      { hosts: [healthy('a', T0)], now: T0 + 10_000, lastWave: true },
      'done',
      /every host is on the new version/,
    ],
    [
      'the last wave, healthy but holding',
      { hosts: [healthy('a', T0)], now: T0 + 9_999, lastWave: true },
      'wait',
      /holding 1ms more/,
    ],
    [
      'a host failed: revert (auto-revert on)',
      { hosts: [failed('a')] },
      'revert',
      /a: tried web-2 and rolled back/,
    ],
    [
      'a host failed: halt (auto-revert off)',
      { hosts: [failed('a')], parameters: { ...P, autoRevert: false } },
      'halt',
      /a: tried web-2/,
    ],
    [
      'a failure halts even while others hold',
      { hosts: [healthy('a', T0), failed('b')], wave: ['a', 'b'] },
      'revert',
      /b: tried/,
    ],
    [
      "an earlier wave's host that fails later halts the rollout",
      { hosts: [failed('a'), healthy('b', T0)], wave: ['b'], now: T0 + 20_000 },
      'revert',
      /a: tried/,
    ],
    [
      'no healthy report within the deadline',
      { hosts: [pending('a')], now: T0 + 300_000 },
      'revert',
      /no healthy report within 5m: a: runs web-1/,
    ],
    [
      'the deadline, auto-revert off',
      { hosts: [pending('a')], now: T0 + 300_000, parameters: { ...P, autoRevert: false } },
      'halt',
      /within 5m/,
    ],
    ['just before the deadline', { hosts: [pending('a')], now: T0 + 299_999 }, 'wait', /waiting for a/],
    [
      'a wave waits for its slowest host',
      { hosts: [healthy('a', T0), healthy('b', T0), pending('c')], wave: ['b', 'c'], now: T0 + 60_000 },
      'wait',
      /waiting for c/,
    ],
    [
      "only this wave's hosts hold min-healthy-time (earlier ones did)",
      { hosts: [healthy('a', T0 + 50_000), healthy('b', T0)], wave: ['b'], now: T0 + 10_000 },
      'continue',
      /b healthy/,
    ],
    [
      'min-healthy-time 0: healthy is enough',
      { hosts: [healthy('a', T0)], parameters: { ...P, minHealthyTimeMs: 0 } },
      'continue',
      /a healthy/,
    ],
  ] as const)('$0 → $2', (_name, overrides, action, reason) => {
    const verdict = judgeRollout(judgement(overrides as Partial<RolloutJudgement>));
    expect(verdict.action).toBe(action);
    expect(verdict.reason).toMatch(reason);
  });

  it('halting names the hosts that failed', () => {
    expect(judgeRollout(judgement({ hosts: [healthy('a', T0), failed('b'), failed('c')] }))).toMatchObject({
      action: 'revert',
      failed: ['b', 'c'],
    });
    expect(judgeRollout(judgement({ hosts: [pending('a')], now: T0 + 300_000 }))).toMatchObject({
      action: 'revert',
      failed: ['a'],
    });
  });
});
