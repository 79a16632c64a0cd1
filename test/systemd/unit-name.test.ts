import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { assertOwnedUnit, serviceNameOf, unitNameFor } from '../../src/systemd/index.js';

describe('unit names', () => {
  it('prefixes the service name and adds .service', () => {
    expect(unitNameFor('podcastitlater-web')).toBe('deploy-podcastitlater-web.service');
    expect(unitNameFor('web', 'biz-')).toBe('biz-web.service');
  });

  it.each(['../etc', 'Web', 'web.service', 'web\n', '', 'a'.repeat(64), '1web'])(
    'refuses the service name %j',
    (name) => {
      expect(() => unitNameFor(name)).toThrow(/service name/);
    },
  );

  it.each(['', 'deploy', 'Deploy-', '../', 'a b-', '-'])('refuses the prefix %j', (prefix) => {
    expect(() => unitNameFor('web', prefix)).toThrow(/unit prefix/);
  });

  it.each([
    ['deploy-web.service', 'web'],
    ['deploy-a-b-1.service', 'a-b-1'],
    ['web.service', undefined],
    ['deploy-web.socket', undefined],
    ['deploy-.service', undefined],
    ['deploy-../x.service', undefined],
    ['deploy-Web.service', undefined],
    ['xdeploy-web.service', undefined],
    ['deploy-web.service.d', undefined],
  ])('serviceNameOf(%j) is %j', (unit, service) => {
    expect(serviceNameOf(unit)).toBe(service);
  });

  it('serviceNameOf inverts unitNameFor', () => {
    fc.assert(
      fc.property(fc.stringMatching(/^[a-z][a-z0-9-]{0,62}$/), (name) => {
        expect(serviceNameOf(unitNameFor(name))).toBe(name);
        expect(() => assertOwnedUnit(unitNameFor(name))).not.toThrow();
      }),
    );
  });
});
