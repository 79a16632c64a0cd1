import { describe, expect, it } from 'vitest';
import { isDeployError } from '../../src/errors.js';
import { type Rollout, validateManifest } from '../../src/manifest/index.js';
import {
  applyRollout,
  planRollout,
  planWaves,
  rolloutParameters,
  stepRecord,
} from '../../src/push/rollout-plan.js';
import { makeManifest, makeService, storePath } from '../builders.js';

const P = rolloutParameters({});
const HOSTS = ['a', 'b', 'c', 'd', 'e'];

describe('planWaves: the canary, then waves of --max-parallel', () => {
  it.each([
    ['--canary 1', { canary: 1 }, [['a'], ['b', 'c', 'd', 'e']]],
    ['--canary 2 --max-parallel 2', { canary: 2, maxParallel: 2 }, [['a', 'b'], ['c', 'd'], ['e']]],
    ['--canary 1 --max-parallel 1', { canary: 1, maxParallel: 1 }, [['a'], ['b'], ['c'], ['d'], ['e']]],
    ['--max-parallel 2 without a canary', { maxParallel: 2 }, [['a', 'b'], ['c', 'd'], ['e']]],
    [
      "--canary-hosts by name, in the service's order",
      { canaryHosts: ['D', 'b'] },
      [
        ['b', 'd'],
        ['a', 'c', 'e'],
      ],
    ],
    ['a canary of every host: one wave', { canary: 9 }, [HOSTS]],
    ['--max-parallel larger than the rest', { canary: 1, maxParallel: 10 }, [['a'], ['b', 'c', 'd', 'e']]],
  ])('%s', (_name, request, waves) => {
    expect(planWaves(HOSTS, { ...P, ...request })).toEqual(waves);
  });

  it.each([
    [
      { canaryHosts: ['z', 'a', 'y'] },
      "--canary-hosts: z, y are not among the service's hosts (a, b, c, d, e)",
    ],
    [{ canary: 1, canaryHosts: ['a'] }, 'give --canary or --canary-hosts, not both'],
  ])('refuses %j', (request, message) => {
    let error: unknown;
    try {
      planWaves(HOSTS, { ...P, ...request });
    } catch (e) {
      error = e;
    }
    expect(isDeployError(error, 'USAGE')).toBe(true);
    expect((error as Error).message).toBe(message);
  });
});

const OLD = storePath('web-1');
const NEW = storePath('web-2');
const web = (path: string, hosts = ['a', 'b', 'c']) =>
  makeService({ artifact: { type: 'nix-closure', storePath: path }, hosts });
const api = makeService({ name: 'api', hosts: ['a'] });
const db = makeService({ name: 'db', hosts: ['b'] });
const NOW = new Date('2025-01-15T13:00:00Z');

describe('applyRollout: the manifest of each step', () => {
  const current = makeManifest([api, web(OLD), db], {
    generation: '2025-01-15T12:00:00Z',
    rollbackOf: '20250115T110000.000Z',
  });
  const planned = planRollout(current, web(NEW), { ...P, canary: 1 }, NOW);
  if (!planned) throw new Error('expected a rollout');
  const { target, record } = planned;
  const step = (state: Rollout['state'], switched: string[] = []) =>
    applyRollout(current, target, stepRecord(record, { state, switched }, NOW), NOW);
  const entries = (m: ReturnType<typeof step>) =>
    m.services.map((s) => `${s.name}@${s.artifact.storePath.slice(44)}:${s.hosts.join(',')}`);

  it('the first wave: the new version on the canary, the old one on the others, where the service was', () => {
    expect(entries(planned.manifest)).toEqual([
      'api@api-1.0.0:a',
      'web@web-2:a',
      'web@web-1:b,c',
      'db@db-1.0.0:b',
    ]);
    expect(planned.manifest).toMatchObject({ generation: '2025-01-15T13:00:00.000Z', rollout: record });
    expect(planned.manifest.rollbackOf).toBeUndefined();
    expect(record).toMatchObject({
      service: 'web',
      state: 'in-progress',
      from: { storePath: OLD },
      to: { storePath: NEW },
      waves: [['a'], ['b', 'c']],
      switched: ['a'],
      rollbackPoint: { generation: '2025-01-15T12:00:00Z' },
    });
    expect(validateManifest(planned.manifest).ok).toBe(true);
  });

  it.each([
    [
      'every host switched, still in progress',
      'in-progress',
      ['a', 'b', 'c'],
      ['api@api-1.0.0:a', 'web@web-2:a,b,c', 'db@db-1.0.0:b'],
    ],
    [
      'halted after the canary',
      'halted',
      ['a'],
      ['api@api-1.0.0:a', 'web@web-2:a', 'web@web-1:b,c', 'db@db-1.0.0:b'],
    ],
    [
      'done: the new version alone',
      'done',
      ['a', 'b', 'c'],
      ['api@api-1.0.0:a', 'web@web-2:a,b,c', 'db@db-1.0.0:b'],
    ],
    [
      'reverted: the old version alone, on all its hosts',
      'reverted',
      ['a'],
      ['api@api-1.0.0:a', 'web@web-1:a,b,c', 'db@db-1.0.0:b'],
    ],
  ] as const)('%s', (_name, state, switched, expected) => {
    const manifest = step(state, [...switched]);
    expect(entries(manifest)).toEqual(expected);
    expect(validateManifest(manifest).ok).toBe(true);
  });

  it('a step never switches back a host another push already switched', () => {
    const further = stepRecord(record, { state: 'in-progress', switched: ['a', 'b'] }, NOW);
    expect(stepRecord(further, { state: 'in-progress', switched: ['a'] }, NOW).switched).toEqual(['a', 'b']);
  });

  it('a new service: no entry on the hosts not yet switched; reverted, none at all', () => {
    const fresh = planRollout(makeManifest([api]), web(NEW), { ...P, canary: 1 }, NOW);
    expect(fresh && entries(fresh.manifest)).toEqual(['api@api-1.0.0:a', 'web@web-2:a']);
    expect(fresh?.record.from).toBeUndefined();
    const reverted =
      fresh &&
      applyRollout(
        makeManifest([api]),
        fresh.target,
        stepRecord(fresh.record, { state: 'reverted' }, NOW),
        NOW,
      );
    expect(reverted && entries(reverted)).toEqual(['api@api-1.0.0:a']);
  });

  it('nothing to roll out when the service already runs exactly that', () => {
    expect(planRollout(current, web(OLD), { ...P, canary: 1 }, NOW)).toBeUndefined();
  });

  it('hosts the new spec drops stay on the old version until the rollout is done', () => {
    const moved = planRollout(current, web(NEW, ['a', 'b']), { ...P, canary: 1 }, NOW);
    expect(moved && entries(moved.manifest)).toEqual([
      'api@api-1.0.0:a',
      'web@web-2:a',
      'web@web-1:b,c',
      'db@db-1.0.0:b',
    ]);
    const done =
      moved &&
      applyRollout(
        current,
        moved.target,
        stepRecord(moved.record, { state: 'done', switched: ['a', 'b'] }, NOW),
        NOW,
      );
    expect(done && entries(done)).toEqual(['api@api-1.0.0:a', 'web@web-2:a,b', 'db@db-1.0.0:b']);
  });
});
