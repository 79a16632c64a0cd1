import { createFakeWorld, makeStorePath } from '@omni/deploy/testing';
import { describe, expect, it } from 'vitest';
import { deployRound } from './deploy.js';

/** The service `web` at `version`, served on example.com, health-checked on port 8080. */
const web = (version: string) => ({
  name: 'web',
  version,
  overrides: { http: { domain: 'example.com', path: '/', internalPort: 8080, healthCheck: '/healthz' } },
});

describe('deployRound', () => {
  it('installs a new service and says so; the next round has nothing to do', async () => {
    const world = await createFakeWorld();
    world.probe.set(8080, { ok: true, status: 200 });
    await world.publish(await world.manifestOf([web('1.0')]));

    expect(await deployRound(world.ctx)).toEqual({ ok: true, lines: ['biz: web installed'] });
    expect(world.systemd.files.has('deploy-web.service')).toBe(true);
    expect(world.routes()).toEqual({ 'omni-deploy:web': '127.0.0.1:8080' });
    expect(await deployRound(world.ctx)).toEqual({ ok: true, lines: ['biz: nothing to do'] });
  });

  it('reports a rollback when the new version crashes, and the old version runs again', async () => {
    const world = await createFakeWorld();
    world.probe.set(8080, { ok: true, status: 200 });
    await world.publish(await world.manifestOf([web('1.0')]));
    await deployRound(world.ctx);

    world.crash(makeStorePath('web-1.1'));
    await world.publish(await world.manifestOf([web('1.1')]));
    const round = await deployRound(world.ctx);

    expect(round.ok).toBe(false);
    expect(round.lines).toEqual([expect.stringMatching(/^biz: web rolled-back \(.+\)$/)]);
    expect(world.state.current?.services.web?.storePath).toBe(makeStorePath('web-1.0'));
    expect(world.events.map((e) => e.type)).toContain('service.rollback');
  });
});
