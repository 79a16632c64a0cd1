import { describe, expect, it } from 'vitest';
import { isDeployError } from '../../src/errors.js';
import { validateManifest } from '../../src/manifest/index.js';
import { applyServiceChange, nextGeneration, parseServiceSpec } from '../../src/push/spec.js';
import { makeManifest, makeService, storePath } from '../builders.js';

const spec = {
  name: 'web',
  hosts: ['biz'],
  exec: { command: 'web' },
  http: { domain: 'a.com', path: '/', internalPort: 8000 },
};

describe('parseServiceSpec', () => {
  it('accepts a spec without artifact and revision', () => {
    expect(parseServiceSpec(JSON.stringify(spec), 'deploy/web.json')).toEqual(spec);
  });

  it.each([
    [
      'a bad field, with its path relative to the spec',
      { ...spec, http: { ...spec.http, internalPort: 80 } },
      'http.internalPort: expected an integer port',
    ],
    [
      'an artifact',
      { ...spec, artifact: { type: 'nix-closure', storePath: storePath('x') } },
      'artifact: set by push for each deploy',
    ],
    ['a typo', { ...spec, enviroment: {} }, 'enviroment: unknown key'],
    ['hostile env', { ...spec, env: { A: 'x\nB' } }, 'env.A: expected a string without control characters'],
    ['not an object', [1], 'spec: expected a service object'],
  ])('refuses %s', (_name, value, fragment) => {
    try {
      parseServiceSpec(JSON.stringify(value), 'deploy/web.json');
      expect.unreachable();
    } catch (error) {
      expect(isDeployError(error, 'SPEC_INVALID')).toBe(true);
      expect((error as Error).message).toContain('deploy/web.json: invalid service spec:');
      expect((error as Error).message).toContain(fragment);
    }
  });

  it('reports invalid JSON with its position', () => {
    expect(() => parseServiceSpec('{"name": }', 'deploy/web.json')).toThrow(
      'deploy/web.json: invalid JSON at line 1, column 10',
    );
  });
});

describe('applyServiceChange', () => {
  const now = new Date('2025-02-01T00:00:00Z');

  it('replaces the service in place, keeps the others, sets store path, revision and generation', () => {
    const current = makeManifest([
      makeService({ name: 'api' }),
      makeService({ name: 'web', revision: 'old' }),
      makeService({ name: 'z' }),
    ]);
    const next = applyServiceChange(current, { spec, storePath: storePath('web-2'), revision: 'abc' }, now);
    expect(next.services.map((s) => s.name)).toEqual(['api', 'web', 'z']);
    expect(next.services[1]).toEqual({
      ...spec,
      artifact: { type: 'nix-closure', storePath: storePath('web-2') },
      revision: 'abc',
    });
    expect(next.services[0]).toBe(current.services[0]);
    expect(next.generation).toBe('2025-02-01T00:00:00.000Z');
    expect(validateManifest(next).ok).toBe(true);
  });

  it('adds a new service at the end, and creates a first manifest', () => {
    expect(
      applyServiceChange(
        makeManifest([makeService({ name: 'api' })]),
        { spec, storePath: storePath('w') },
        now,
      ).services.map((s) => s.name),
    ).toEqual(['api', 'web']);
    const first = applyServiceChange(undefined, { spec, storePath: storePath('w') }, now);
    expect(first).toEqual({
      version: 1,
      generation: '2025-02-01T00:00:00.000Z',
      services: [{ ...spec, artifact: { type: 'nix-closure', storePath: storePath('w') } }],
    });
  });

  it('never moves the generation backwards when the clock is behind', () => {
    expect(nextGeneration('2030-01-01T00:00:00Z', now)).toBe('2030-01-01T00:00:00.001Z');
    expect(nextGeneration(undefined, now)).toBe('2025-02-01T00:00:00.000Z');
  });
});
