import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  assertOwnedUnit,
  candidateUnitNameFor,
  isCandidateUnit,
  serviceNameOf,
  unitNameFor,
} from '../../src/systemd/index.js';

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
    ['deploy-web@next.service', 'web'],
    ['deploy-a-b@next.service', 'a-b'],
    ['deploy-web@other.service', undefined],
    ['deploy-web@.service', undefined],
    ['deploy-@next.service', undefined],
    ['deploy-web@next@next.service', undefined],
  ])('serviceNameOf(%j) is %j', (unit, service) => {
    expect(serviceNameOf(unit)).toBe(service);
  });

  it('names the candidate unit of a service so that no service name can make it', () => {
    expect(candidateUnitNameFor('web')).toBe('deploy-web@next.service');
    expect(candidateUnitNameFor('web', 'biz-')).toBe('biz-web@next.service');
    expect(isCandidateUnit('deploy-web@next.service')).toBe(true);
    expect(isCandidateUnit('deploy-web.service')).toBe(false);
    expect(isCandidateUnit('deploy-web-next.service')).toBe(false);
    expect(() => candidateUnitNameFor('../x')).toThrow(/service name/);
  });

  it('serviceNameOf inverts unitNameFor and candidateUnitNameFor', () => {
    fc.assert(
      fc.property(fc.stringMatching(/^[a-z][a-z0-9-]{0,62}$/), (name) => {
        expect(serviceNameOf(unitNameFor(name))).toBe(name);
        expect(serviceNameOf(candidateUnitNameFor(name))).toBe(name);
        expect(() => assertOwnedUnit(unitNameFor(name))).not.toThrow();
        expect(() => assertOwnedUnit(candidateUnitNameFor(name))).not.toThrow();
      }),
    );
  });
});
