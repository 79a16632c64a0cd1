import { describe, expect, it } from 'vitest';
import { liveInstance, recordPorts, serviceUnits } from '../../src/deployer/live.js';
import type { CandidateUnit, ServicePlan } from '../../src/deployer/plan.js';
import type { ServiceRecord, SwitchRecord } from '../../src/deployer/state.js';
import { parseState } from '../../src/deployer/state.js';
import { planRecovery, routeUpdate } from '../../src/deployer/switch-plan.js';

const HTTP = { domain: 'example.com', path: '/', internalPort: 8000, healthCheck: '/healthz' };
const candidate: CandidateUnit = {
  strategy: 'blue-green',
  unitName: 'deploy-web@next.service',
  unitText: 'next',
  port: 18000,
};
const record = (overrides: Partial<ServiceRecord> = {}): ServiceRecord => ({
  storePath: '/nix/store/a-web-1',
  unitName: 'deploy-web.service',
  unitText: 'v1',
  specHash: 'h1',
  route: HTTP,
  health: 'healthy',
  since: '2025-01-15T12:00:00.000Z',
  ...overrides,
});
const plan = (overrides: Partial<ServicePlan> = {}, desired: Record<string, unknown> = {}): ServicePlan =>
  ({
    name: 'web',
    action: 'update',
    unitName: 'deploy-web.service',
    storePath: '/nix/store/b-web-2',
    changes: [],
    desired: { unitText: 'v2', specHash: 'h2', route: HTTP, candidate, ...desired },
    ...overrides,
  }) as ServicePlan;
const pending = (phase: SwitchRecord['phase'], more: Partial<SwitchRecord> = {}): SwitchRecord => ({
  phase,
  strategy: 'blue-green',
  candidate: { unitName: 'deploy-web@next.service', port: 18000 },
  target: {
    storePath: '/nix/store/b-web-2',
    unitText: 'v2',
    specHash: 'h2',
    route: { ...HTTP, internalPort: 8100 },
  },
  startedAt: '2025-01-15T13:00:00.000Z',
  ...more,
});

describe('routeUpdate', () => {
  it.each([
    ['an update with a candidate', plan(), record(), true, 'switch'],
    ['without Caddy (routes off)', plan(), record(), false, 'restart'],
    ['an install', plan({ action: 'install' }), undefined, true, 'restart'],
    ['a route-only change', plan({}, { unitText: 'v1' }), record(), true, 'restart'],
    ['a service that restarts in place', plan({}, { candidate: undefined }), record(), true, 'restart'],
    ['a service that is down anyway', plan(), record({ health: 'unhealthy' }), true, 'restart'],
    ['a service that had no route', plan(), record({ route: undefined }), true, 'restart'],
    ['an unfinished switch', plan(), record({ switch: pending('main') }), true, 'blocked'],
    [
      'a second port the old version listens on',
      plan(),
      record({ route: { ...HTTP, internalPort: 18000 } }),
      true,
      'restart',
    ],
  ])('%s → %s', (_, p, current, caddy, kind) => {
    expect(routeUpdate(p, current, { caddy }).kind).toBe(kind);
  });

  it('switches a worker in overlap mode without Caddy', () => {
    const overlap = { ...candidate, strategy: 'overlap' as const, port: undefined };
    expect(
      routeUpdate(plan({}, { candidate: overlap, route: undefined }), record({ route: undefined }), {
        caddy: false,
      }).kind,
    ).toBe('switch');
  });
});

describe('planRecovery', () => {
  const up = (text: string) => ({ text, active: true });
  it.each([
    ['candidate', pending('candidate'), up('v1'), { kind: 'discard' }],
    ['switched, own unit untouched', pending('switched'), up('v1'), { kind: 'undo', restartMain: false }],
    [
      'switched, after a reboot',
      pending('switched'),
      { text: undefined, active: false },
      { kind: 'undo', restartMain: true },
    ],
    ['main (whatever its file says)', pending('main'), up('v1'), { kind: 'undo', restartMain: true }],
    ['returning, own unit runs the new version', pending('returning'), up('v2'), { kind: 'finish' }],
    [
      'returning, own unit down',
      pending('returning'),
      { text: 'v2', active: false },
      { kind: 'undo', restartMain: true },
    ],
    [
      'returning from an undo',
      pending('returning', { undo: true }),
      up('v1'),
      { kind: 'undo', restartMain: false },
    ],
    [
      'switched while undoing',
      pending('switched', { undo: true }),
      up('v1'),
      { kind: 'undo', restartMain: false },
    ],
  ])('%s', (_, s, main, expected) => {
    expect(planRecovery(record({ switch: s }), s, main)).toEqual(expected);
  });
});

describe('the live instance', () => {
  it.each([
    ['at rest', undefined, 'deploy-web.service', 8000],
    ['candidate started, not switched', pending('candidate'), 'deploy-web.service', 8000],
    ['switched', pending('switched'), 'deploy-web@next.service', 18000],
    ['own unit restarting', pending('main'), 'deploy-web@next.service', 18000],
    ['switching back to the new version', pending('returning'), 'deploy-web.service', 8100],
    ['switching back while undoing', pending('returning', { undo: true }), 'deploy-web.service', 8000],
  ])('%s: %s on %i', (_, s, unit, port) => {
    expect(liveInstance(record(s ? { switch: s } : {}))).toMatchObject({ unit, port });
  });

  it('knows every unit and port a service may hold', () => {
    expect(serviceUnits(record())).toEqual(['deploy-web.service']);
    expect(serviceUnits(record({ switch: pending('main') }))).toEqual([
      'deploy-web.service',
      'deploy-web@next.service',
    ]);
    expect(recordPorts(record())).toEqual([8000]);
    expect(recordPorts(record({ switch: pending('main') }))).toEqual([8000, 8100, 18000]);
    expect(recordPorts(record({ route: undefined }))).toEqual([]);
  });

  it('survives a save and a load of the state', () => {
    const state = {
      version: 1,
      host: 'biz',
      services: { web: record({ switch: pending('switched', { undo: true }) }) },
      failures: [],
      rollbacks: 0,
    };
    expect(parseState(JSON.stringify(state), 'state.json')).toEqual(state);
    const bad = {
      ...state,
      services: { web: record({ switch: { ...pending('main'), phase: 'later' } as never }) },
    };
    expect(() => parseState(JSON.stringify(bad), 'state.json')).toThrow(/services\.web\.switch\.phase/);
  });
});
