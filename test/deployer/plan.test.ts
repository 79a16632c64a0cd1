import { describe, expect, it } from 'vitest';
import {
  assumeRunning,
  type DesiredService,
  hashSpec,
  planDeploy,
  renderPlan,
} from '../../src/deployer/plan.js';
import { type DeployerState, emptyState } from '../../src/deployer/state.js';
import type { Service } from '../../src/manifest/index.js';
import { makeService, storePath } from '../builders.js';

/** A stand-in for the systemd/caddy renderers: the unit names the store path and env, the route the port. */
function desire(service: Service): DesiredService {
  const env = Object.entries(service.env ?? {}).map(([k, v]) => `Environment=${k}=${v}`);
  const unitText = [
    '[Service]',
    `ExecStart=${service.artifact.storePath}/bin/${service.exec.command}`,
    ...env,
    '',
  ].join('\n');
  const route = service.http ? { upstream: service.http.internalPort } : undefined;
  return {
    service,
    unitName: `omni-${service.name}.service`,
    unitText,
    route,
    specHash: hashSpec(unitText, route),
  };
}

const stateWith = (...services: DesiredService[]): DeployerState => assumeRunning('biz', services, 'x');

const web1 = desire(
  makeService({
    name: 'web',
    env: { PORT: '8000' },
    http: { domain: 'a.com', path: '/', internalPort: 8000 },
  }),
);
const api1 = desire(makeService({ name: 'api' }));
const old1 = desire(makeService({ name: 'old' }));

describe('planDeploy', () => {
  it('first deploy: everything installs and every closure is pulled', () => {
    const plan = planDeploy({
      host: 'biz',
      generation: 'g',
      desired: [web1, api1],
      state: emptyState('biz'),
    });
    expect(plan.services.map((s) => [s.name, s.action])).toEqual([
      ['api', 'install'],
      ['web', 'install'],
    ]);
    expect(plan.pulls).toEqual([api1.service.artifact.storePath, web1.service.artifact.storePath]);
  });

  it('changes only what changed: update one of three, remove one, leave one', () => {
    const web2 = desire({
      ...web1.service,
      artifact: { type: 'nix-closure', storePath: storePath('web-2') },
      env: { PORT: '8001' },
    });
    const plan = planDeploy({
      host: 'biz',
      generation: 'g',
      desired: [web2, api1],
      state: stateWith(web1, api1, old1),
    });
    expect(plan.services.map((s) => [s.name, s.action])).toEqual([
      ['api', 'unchanged'],
      ['old', 'remove'],
      ['web', 'update'],
    ]);
    expect(plan.pulls).toEqual([storePath('web-2')]);
    expect(plan.services.find((s) => s.name === 'web')?.changes).toEqual([
      `store path ${web1.service.artifact.storePath} → ${storePath('web-2')}`,
      'unit - Environment=PORT=8000',
      'unit + Environment=PORT=8001',
    ]);
  });

  it('an env-only change is an update; a route-only change too', () => {
    const env = desire({ ...web1.service, env: { PORT: '9' } });
    expect(
      planDeploy({ host: 'biz', generation: 'g', desired: [env], state: stateWith(web1) }).services[0]
        ?.action,
    ).toBe('update');
    const route = desire({ ...web1.service, http: { domain: 'a.com', path: '/', internalPort: 8002 } });
    const plan = planDeploy({ host: 'biz', generation: 'g', desired: [route], state: stateWith(web1) });
    expect(plan.services[0]).toMatchObject({ action: 'update', changes: ['route changed'] });
    expect(plan.pulls).toEqual([web1.service.artifact.storePath]);
  });

  it('holds a version that failed its health gate until the manifest changes the service', () => {
    const bad = desire({ ...web1.service, artifact: { type: 'nix-closure', storePath: storePath('web-3') } });
    const state = stateWith(web1);
    state.failures.push({
      service: 'web',
      storePath: storePath('web-3'),
      specHash: bad.specHash,
      at: 'T',
      reason: 'unit failed',
    });
    const held = planDeploy({ host: 'biz', generation: 'g', desired: [bad], state });
    expect(held.services[0]).toMatchObject({
      action: 'hold',
      currentStorePath: web1.service.artifact.storePath,
    });
    expect(held.pulls).toEqual([]);
    const fixed = desire({ ...bad.service, env: { PORT: '8000', FIX: '1' } });
    expect(planDeploy({ host: 'biz', generation: 'g', desired: [fixed], state }).services[0]?.action).toBe(
      'update',
    );
  });

  it('renders a readable plan', () => {
    const plan = planDeploy({
      host: 'biz',
      generation: '2025-01-15T12:34:56Z',
      desired: [web1, api1],
      state: stateWith(api1, old1),
    });
    expect(renderPlan(plan)).toBe(
      [
        'host biz, manifest generation 2025-01-15T12:34:56Z: 1 to install, 0 to update, 1 to remove, 1 unchanged',
        '  - old (omni-old.service)',
        `      stop and remove (was ${old1.service.artifact.storePath}); its profile stays for rollback`,
        '  + web (omni-web.service)',
        `      new: ${web1.service.artifact.storePath}`,
        '  closures to pull: 1',
      ].join('\n'),
    );
  });
});
