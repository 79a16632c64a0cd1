import { describe, expect, it } from 'vitest';
import { DeployError, isDeployError } from '../../src/errors.js';
import { storePath } from '../builders.js';
import { createWorld, FOREIGN_ROUTE, http, type World } from './world.js';

/** web, api and worker on host biz; `other` on another host. */
async function threeServices(world: World, versions: { web?: string; api?: string; worker?: string } = {}) {
  const m = await world.manifestOf([
    { name: 'web', version: versions.web ?? '1.0', overrides: http(8000, '/') },
    { name: 'api', version: versions.api ?? '1.0', overrides: http(8001, '/api') },
    { name: 'worker', version: versions.worker ?? '1.0' },
    { name: 'other', version: '1.0', overrides: { hosts: ['elsewhere'] } },
  ]);
  return m;
}

describe('a deployer tick (fakes)', () => {
  it('first deploy: pulls, pins, installs, starts, gates and routes only this host’s services', async () => {
    const world = await createWorld();
    await world.publish(await threeServices(world));
    const report = await world.tick();

    expect(report.outcome).toBe('applied');
    expect(report.results.map((r) => [r.name, r.outcome]).sort()).toEqual([
      ['api', 'installed'],
      ['web', 'installed'],
      ['worker', 'installed'],
    ]);
    expect([...world.systemd.files.keys()].sort()).toEqual([
      'deploy-api.service',
      'deploy-web.service',
      'deploy-worker.service',
    ]);
    expect(world.systemdChanges().filter((c) => c === 'daemon-reload')).toHaveLength(1);
    expect(world.nix.store.has(storePath('web-1.0'))).toBe(true);
    expect(world.nix.store.has(storePath('other-1.0'))).toBe(false);
    expect(
      (await world.nix.listGenerations('/nix/var/nix/profiles/biz/web.d/profile')).map((g) => g.storePath),
    ).toEqual([storePath('web-1.0')]);
    expect(world.routes()).toEqual({
      'omni-deploy:web': '127.0.0.1:8000',
      'omni-deploy:api': '127.0.0.1:8001',
      'someone-else': 'foreign',
    });
    const state = world.state.current;
    expect(Object.keys(state?.services ?? {}).sort()).toEqual(['api', 'web', 'worker']);
    expect(state?.manifest?.generation).toBe('2025-01-15T12:00:00Z');
    const status = await world.manifests.readStatus('biz');
    expect(status?.status).toMatchObject({
      host: 'biz',
      generation: '2025-01-15T12:00:00Z',
      lastTick: { outcome: 'applied' },
    });
  });

  it('updates one of three services with exactly one restart and no other systemd change', async () => {
    const world = await createWorld();
    await world.publish(await threeServices(world));
    await world.tick();
    world.systemd.calls.length = 0;
    await world.publish(await threeServices(world, { api: '1.1' }));
    const report = await world.tick();

    expect(report.outcome).toBe('applied');
    expect(world.systemdChanges()).toEqual([
      'install deploy-api.service',
      'daemon-reload',
      'restart deploy-api.service',
    ]);
    expect(report.results.filter((r) => r.outcome !== 'unchanged')).toEqual([
      { name: 'api', action: 'update', outcome: 'updated', storePath: storePath('api-1.1') },
    ]);
    expect(world.state.current?.services.api?.previous?.storePath).toBe(storePath('api-1.0'));
  });

  it('removes a service: stopped, unit and route gone, profile kept for rollback', async () => {
    const world = await createWorld();
    await world.publish(await threeServices(world));
    await world.tick();
    const m = await threeServices(world);
    m.services = m.services.filter((s) => s.name !== 'api');
    await world.publish(m);
    const report = await world.tick();

    expect(report.results.find((r) => r.name === 'api')?.outcome).toBe('removed');
    expect(world.systemd.files.has('deploy-api.service')).toBe(false);
    expect(world.routes()).toEqual({ 'omni-deploy:web': '127.0.0.1:8000', 'someone-else': 'foreign' });
    expect(world.state.current?.services.api).toBeUndefined();
    expect((await world.nix.listGenerations('/nix/var/nix/profiles/biz/api.d/profile')).length).toBe(1);
  });

  it('an invalid manifest changes nothing, is reported, and is not parsed again until it changes', async () => {
    const world = await createWorld();
    await world.publish(await threeServices(world));
    await world.tick();
    world.systemd.calls.length = 0;
    const before = world.state.current;
    const evil = JSON.stringify(await threeServices(world)).replace(
      '"command":"web"',
      '"command":"../../bin/sh"',
    );
    await world.publish(evil);
    const report = await world.tick();

    expect(report.outcome).toBe('invalid-manifest');
    expect(report.message).toContain('services[0].exec.command');
    expect(world.systemdChanges()).toEqual([]);
    expect(world.state.current?.services).toEqual(before?.services);
    expect(world.state.current?.rejected?.message).toContain('exec.command');
    expect((await world.manifests.readStatus('biz'))?.status).toMatchObject({
      lastTick: { outcome: 'invalid-manifest' },
    });
    const again = await world.tick();
    expect(again.outcome).toBe('invalid-manifest');
    expect(world.manifests.objects.requests.at(-1)).toMatchObject({ method: 'GET', status: 304 });
  });

  it('a pull failure (unsigned closure) changes nothing', async () => {
    const world = await createWorld();
    const firstEtag = await world.publish(await threeServices(world));
    await world.tick();
    world.systemd.calls.length = 0;
    const m = await threeServices(world);
    const unsigned = await world.build('web-6.6.6', { signed: false });
    (m.services[0] as { artifact: { storePath: string } }).artifact.storePath = unsigned;
    await world.publish(m);
    const report = await world.tick();

    expect(report.outcome).toBe('failed');
    expect(report.message).toMatch(/pull failed, nothing changed: .*signature/);
    expect(world.systemdChanges()).toEqual([]);
    expect(world.state.current?.services.web?.storePath).toBe(storePath('web-1.0'));
    expect(world.state.current?.manifest?.etag).toBe(firstEtag);
  });

  it('accepts an unsigned closure only with the explicit insecure setting', async () => {
    const world = await createWorld();
    const unsigned = await world.build('web-0.9', { signed: false });
    const m = await world.manifestOf([{ name: 'api', version: '1.0' }]);
    m.services.push({
      ...(m.services[0] as (typeof m.services)[0]),
      name: 'web',
      artifact: { type: 'nix-closure', storePath: unsigned },
    });
    await world.publish(m);
    expect((await world.tick()).outcome).toBe('failed');
    world.ctx.settings.insecureAllowUnsigned = true;
    world.ctx.settings.trustedPublicKeys = [];
    // Without any trusted key, a manifest cannot be verified either: only an unsigned one, explicitly allowed.
    expect((await world.tick()).message).toContain('no trusted public keys are configured');
    world.ctx.settings.insecureAllowUnsignedManifest = true;
    await world.publish(m, { signWith: false });
    expect((await world.tick()).outcome).toBe('applied');
    expect(world.state.current?.services.web?.storePath).toBe(unsigned);
  });

  it('rolls back only the service that fails its health gate, records it, holds it, retries after a manifest change', async () => {
    const world = await createWorld();
    await world.publish(await threeServices(world));
    await world.tick();
    const bad = await world.build('web-2.0');
    world.crash(bad);
    await world.publish(await threeServices(world, { web: '2.0', api: '1.1' }));
    const report = await world.tick();

    expect(report.outcome).toBe('partial');
    expect(report.results.filter((r) => r.outcome !== 'unchanged').map((r) => [r.name, r.outcome])).toEqual([
      ['api', 'updated'],
      ['web', 'rolled-back'],
    ]);
    const state = world.state.current;
    expect(state?.services.web).toMatchObject({ storePath: storePath('web-1.0'), health: 'healthy' });
    expect(world.systemd.files.get('deploy-web.service')).toContain(storePath('web-1.0'));
    expect(state?.services.api?.storePath).toBe(storePath('api-1.1'));
    expect(state?.failures).toEqual([expect.objectContaining({ service: 'web', storePath: bad })]);
    expect(state?.rollbacks).toBe(1);
    expect(
      (await world.nix.listGenerations('/nix/var/nix/profiles/biz/web.d/profile')).find((g) => g.current)
        ?.storePath,
    ).toBe(storePath('web-1.0'));
    expect(world.routes()['omni-deploy:web']).toBe('127.0.0.1:8000');

    // The next tick (manifest unchanged) does not retry the known-bad version.
    world.systemd.calls.length = 0;
    const again = await world.tick();
    expect(again.outcome).toBe('unchanged');
    expect(world.systemdChanges()).toEqual([]);

    // A manifest that changes the service (a fixed build) is tried again.
    await world.publish(await threeServices(world, { web: '2.1', api: '1.1' }));
    const fixed = await world.tick();
    expect(fixed.results.find((r) => r.name === 'web')?.outcome).toBe('updated');
    expect(world.state.current?.failures).toEqual([]);
  });

  it('stops a brand-new service that fails and leaves the others alone', async () => {
    const world = await createWorld();
    const m = await threeServices(world);
    const bad = await world.build('cron-1.0');
    world.crash(bad);
    const manifest = await world.manifestOf([{ name: 'cron', version: '1.0' }]);
    m.services.push(manifest.services[0] as (typeof m.services)[0]);
    await world.publish(m);
    const report = await world.tick();

    expect(report.results.find((r) => r.name === 'cron')).toMatchObject({ outcome: 'failed' });
    expect(world.systemd.files.has('deploy-cron.service')).toBe(false);
    expect(world.state.current?.services.cron).toBeUndefined();
    expect(Object.keys(world.state.current?.services ?? {}).sort()).toEqual(['api', 'web', 'worker']);
  });

  it('gates on the HTTP health check when the manifest gives one', async () => {
    const world = await createWorld();
    const m = await world.manifestOf([
      { name: 'web', version: '1.0', overrides: http(8000, '/', '/healthz') },
    ]);
    await world.publish(m);
    const failed = await world.tick();
    expect(failed.results[0]).toMatchObject({
      outcome: 'failed',
      reason: expect.stringContaining('health check failed (ECONNREFUSED)'),
    });

    world.probe.set(8000, { ok: true, status: 200 });
    await world.publish(
      await world.manifestOf([{ name: 'web', version: '1.1', overrides: http(8000, '/', '/healthz') }]),
    );
    const ok = await world.tick();
    expect(ok.results[0]).toMatchObject({ outcome: 'installed' });
    expect(world.probe.checks.at(-1)).toEqual({ port: 8000, path: '/healthz' });
  });

  it('refuses a service whose pre-flight fails, touching nothing of it, and retries next tick', async () => {
    const world = await createWorld();
    const m = await world.manifestOf([
      {
        name: 'web',
        version: '1.0',
        overrides: {
          exec: { command: 'web', user: 'pil-web', group: 'pil' },
          envFile: '/var/lib/biz-secrets/web.env',
        },
      },
      { name: 'api', version: '1.0' },
    ]);
    await world.publish(m);
    const report = await world.tick();

    expect(report.results.find((r) => r.name === 'web')).toMatchObject({
      outcome: 'refused',
      reason: 'pre-flight: envFile /var/lib/biz-secrets/web.env does not exist',
    });
    expect(world.systemd.files.has('deploy-web.service')).toBe(false);
    expect(world.state.current?.services.api).toBeDefined();
    expect(world.state.current?.manifest).toBeUndefined();

    world.checks.paths.set('/var/lib/biz-secrets/web.env', { type: 'file', uid: 0, gid: 0, mode: 0o644 });
    expect((await world.tick()).results.find((r) => r.name === 'web')?.reason).toContain(
      'has mode 0644, expected no access for others',
    );
    world.checks.paths.set('/var/lib/biz-secrets/web.env', { type: 'file', uid: 0, gid: 0, mode: 0o600 });
    expect((await world.tick()).results.find((r) => r.name === 'web')?.outcome).toBe('installed');
    world.checks.users.delete('pil-web');
    await world.publish(
      await world.manifestOf([
        { name: 'web', version: '1.1', overrides: { exec: { command: 'web', user: 'pil-web' } } },
      ]),
    );
    expect((await world.tick()).results.find((r) => r.name === 'web')?.reason).toBe(
      'pre-flight: exec.user "pil-web" does not exist on this host',
    );
  });

  it('a second concurrent tick waits briefly, then reports busy without touching anything', async () => {
    const world = await createWorld();
    await world.publish(await threeServices(world));
    const other = await world.lock.share(99).acquire();
    const report = await world.tick();
    expect(report.outcome).toBe('busy');
    expect(world.systemd.calls).toEqual([]);
    expect(world.manifests.objects.requests).toHaveLength(1); // only the publish above
    await other?.release();
    expect((await world.tick()).outcome).toBe('applied');
  });

  it('takes over a lock left by a dead deployer', async () => {
    const world = await createWorld();
    await world.publish(await threeServices(world));
    await world.lock.share(99).acquire();
    world.lock.abandon();
    expect((await world.tick()).outcome).toBe('applied');
  });

  it('an idle tick (304) costs one manifest request and one Caddy read: no writes, no subprocess', async () => {
    const world = await createWorld();
    await world.publish(await threeServices(world));
    await world.tick();
    const counts = () => ({
      manifestRequests: world.manifests.objects.requests.length,
      caddyRequests: world.caddy.requests.length,
      caddyMutations: world.caddy.mutations,
      saves: world.state.saves.length,
      nix: world.nix.calls.length,
      shell: world.shell.calls.length,
      systemd: world.systemdChanges().length,
      systemctlStatus: world.systemd.calls.filter((c) => c.startsWith('status')).length,
    });
    const before = counts();
    const report = await world.tick();
    const after = counts();
    expect(report.outcome).toBe('unchanged');
    expect(after).toEqual({
      ...before,
      manifestRequests: before.manifestRequests + 1,
      caddyRequests: before.caddyRequests + 1,
    });
    expect(world.manifests.objects.requests.at(-1)).toMatchObject({ method: 'GET', status: 304 });
  });

  it('heals drift without a manifest change: a deleted or edited unit, lost Caddy routes', async () => {
    const world = await createWorld();
    await world.publish(await threeServices(world));
    await world.tick();
    const original = world.systemd.files.get('deploy-web.service') as string;
    world.systemd.files.delete('deploy-api.service');
    world.systemd.files.set('deploy-web.service', `${original}\nExecStartPre=/bin/evil\n`);
    world.caddy.restart();
    const report = await world.tick();

    expect(report.repaired.sort()).toEqual(['api', 'web']);
    expect(world.systemd.files.get('deploy-web.service')).toBe(original);
    expect(world.systemd.calls).toContain('restart deploy-api.service');
    expect(world.routes()).toEqual({
      'omni-deploy:web': '127.0.0.1:8000',
      'omni-deploy:api': '127.0.0.1:8001',
      'someone-else': 'foreign',
    });
    expect(world.events.map((e) => e.type)).toContain('drift.unit-missing');
  });

  it('restores every unit after a reboot even when the manifest bucket is unreachable', async () => {
    const world = await createWorld();
    await world.publish(await threeServices(world));
    await world.tick();
    for (const name of [...world.systemd.files.keys()]) world.systemd.files.delete(name);
    world.manifests.objects.beforeRequest = () => {
      throw new Error('getaddrinfo ENOTFOUND bucket');
    };
    const report = await world.tick();

    expect(report.outcome).toBe('failed');
    expect(report.message).toContain('cannot read the manifest');
    expect(report.repaired.sort()).toEqual(['api', 'web', 'worker']);
    expect([...world.systemd.files.keys()].sort()).toEqual([
      'deploy-api.service',
      'deploy-web.service',
      'deploy-worker.service',
    ]);
    expect((await world.systemd.status('deploy-web.service')).activeState).toBe('active');
  });

  it('refuses an archived (older-generation) manifest put back as it was, and converges to its services under a fresh generation', async () => {
    const world = await createWorld();
    const v1 = await threeServices(world);
    await world.publish(v1);
    await world.tick();
    await world.publish(
      await world.manifestOf(
        [{ name: 'web', version: '2.0', overrides: http(8000) }],
        '2025-02-01T00:00:00Z',
      ),
    );
    await world.tick();
    expect(Object.keys(world.state.current?.services ?? {})).toEqual(['web']);
    await world.publish(v1);
    const stale = await world.tick();
    expect(stale.outcome).toBe('invalid-manifest');
    expect(stale.message).toContain('stale or replayed manifest');
    expect(Object.keys(world.state.current?.services ?? {})).toEqual(['web']);
    // What push rollback writes: the archived services under a generation later than the current one.
    await world.publish({ ...v1, generation: '2025-02-01T00:00:01Z' });
    const report = await world.tick();
    expect(report.outcome).toBe('applied');
    expect(world.state.current?.services.web?.storePath).toBe(storePath('web-1.0'));
    expect(Object.keys(world.state.current?.services ?? {}).sort()).toEqual(['api', 'web', 'worker']);
  });

  it('refuses to use another host’s state', async () => {
    const world = await createWorld();
    await world.publish(await threeServices(world));
    await world.tick();
    const error = await runOtherHost(world).catch((e) => e);
    expect(isDeployError(error, 'STATE_HOST')).toBe(true);
  });

  it('runs the hooks with the outcome in the environment', async () => {
    const world = await createWorld();
    world.ctx.settings.onSuccess = 'notify ok';
    world.ctx.settings.onFailure = 'notify failed';
    world.shell.on(() => ({ exitCode: 0 }));
    await world.publish(await threeServices(world));
    await world.tick();
    expect(world.shell.calls.at(-1)).toMatchObject({
      command: '/bin/sh',
      args: ['-c', 'notify ok'],
      options: {
        env: {
          DEPLOYER_OUTCOME: 'applied',
          DEPLOYER_HOST: 'biz',
          DEPLOYER_CHANGED: 'api web worker',
          DEPLOYER_FAILED: '',
        },
      },
    });
    const calls = world.shell.calls.length;
    await world.tick();
    expect(world.shell.calls).toHaveLength(calls); // idle: no hook
  });
});

describe('review findings: one service’s trouble stays that service’s', () => {
  it('a restore that fails for one service after a reboot still restores the others, and is retried', async () => {
    const world = await createWorld();
    await world.publish(await threeServices(world));
    await world.tick();
    for (const name of [...world.systemd.files.keys()]) world.systemd.files.delete(name);
    world.systemd.failOn('restart deploy-api.service');
    const report = await world.tick();
    expect(report.repaired.sort()).toEqual(['api', 'web', 'worker']);
    expect((await world.systemd.status('deploy-web.service')).activeState).toBe('active');
    expect((await world.systemd.status('deploy-worker.service')).activeState).toBe('active');
    expect(world.state.current?.services.api?.health).toBe('unhealthy');
    expect(world.routes()['omni-deploy:api']).toBeUndefined();
    // The next tick checks the unhealthy service again, starts it, and gives it its route back.
    await world.tick();
    expect(world.state.current?.services.api?.health).toBe('healthy');
    expect(world.routes()['omni-deploy:api']).toBe('127.0.0.1:8001');
  });

  it('a pre-flight check that cannot be made refuses that service only', async () => {
    const world = await createWorld();
    const m = await world.manifestOf([
      { name: 'web', version: '1.0', overrides: { envFile: '/var/lib/biz-secrets/web.env' } },
      { name: 'api', version: '1.0' },
    ]);
    world.checks.pathInfo = async () => {
      throw new DeployError('HOST_CHECK', 'stat /var/lib/biz-secrets/web.env: Permission denied');
    };
    await world.publish(m);
    const report = await world.tick();
    expect(report.results.find((r) => r.name === 'web')).toMatchObject({
      outcome: 'refused',
      reason: expect.stringContaining('Permission denied'),
    });
    expect(report.results.find((r) => r.name === 'api')?.outcome).toBe('installed');
  });

  it('a status read that fails in one health gate rolls back that service only', async () => {
    const world = await createWorld();
    await world.publish(await threeServices(world));
    await world.tick();
    world.systemd.failOn(/^status deploy-api/);
    await world.publish(await threeServices(world, { api: '2.0', worker: '2.0' }));
    const report = await world.tick();
    expect(report.results.filter((r) => r.outcome !== 'unchanged').map((r) => [r.name, r.outcome])).toEqual([
      ['api', 'rolled-back'],
      ['worker', 'updated'],
    ]);
  });

  it('removes a unit of ours that neither the state nor the manifest knows (left by a crash)', async () => {
    const world = await createWorld();
    await world.publish(await threeServices(world));
    await world.tick();
    await world.systemd.installUnit({
      name: 'deploy-cron.service',
      text: '[Service]\nExecStart=/bin/true\n',
    });
    await world.systemd.daemonReload();
    await world.systemd.start('deploy-cron.service');
    const report = await world.tick();
    expect(report.orphans).toEqual(['deploy-cron.service']);
    expect(world.systemd.files.has('deploy-cron.service')).toBe(false);
    expect(world.state.current?.services.web).toBeDefined();
  });

  it('a route-only change updates the route without restarting the service', async () => {
    const world = await createWorld();
    await world.publish(await threeServices(world));
    await world.tick();
    world.systemd.calls.length = 0;
    const m = await threeServices(world);
    (m.services[1] as { http: { path: string } }).http.path = '/v2';
    await world.publish(m);
    const report = await world.tick();
    expect(report.results.find((r) => r.name === 'api')?.outcome).toBe('updated');
    expect(world.systemdChanges()).toEqual([]);
    expect(world.state.current?.services.api?.route).toMatchObject({ path: '/v2' });
  });

  it('two services claiming one route (after a rollback) shadow one another instead of dropping every route', async () => {
    const world = await createWorld();
    await world.publish(await threeServices(world));
    await world.tick();
    const bad = await world.build('web-9.0');
    world.crash(bad);
    const m = await world.manifestOf([
      { name: 'web', version: '9.0', overrides: http(8000, '/old') },
      { name: 'site', version: '1.0', overrides: http(8005, '/') },
      { name: 'api', version: '1.0', overrides: http(8001, '/api') },
      { name: 'worker', version: '1.0' },
    ]);
    await world.publish(m);
    const report = await world.tick();
    expect(report.results.find((r) => r.name === 'web')?.outcome).toBe('rolled-back');
    expect(world.routes()).toMatchObject({
      'omni-deploy:site': '127.0.0.1:8005',
      'omni-deploy:api': '127.0.0.1:8001',
    });
    expect(world.routes()['omni-deploy:web']).toBeUndefined();
    expect(world.events.find((e) => e.type === 'routes.shadowed')?.service).toBe('web');
  });

  it('the same failure tick after tick writes nothing and runs no hook', async () => {
    const world = await createWorld();
    world.ctx.settings.onFailure = 'notify';
    world.shell.on(() => ({ exitCode: 0 }));
    await world.publish(await threeServices(world));
    await world.tick();
    world.manifests.objects.beforeRequest = () => {
      throw new Error('ENOTFOUND');
    };
    await world.tick();
    const saves = world.state.saves.length;
    const hooks = world.shell.calls.length;
    await world.tick();
    await world.tick();
    expect(world.state.saves.length).toBe(saves);
    expect(world.shell.calls.length).toBe(hooks);
  });
});

/** The same world, but this deployer thinks it is another host. */
async function runOtherHost(world: World) {
  const { runTick } = await import('../../src/deployer/tick.js');
  return runTick({ ...world.ctx, settings: { ...world.ctx.settings, host: 'other' } });
}

describe('a crash after any step of a tick', () => {
  /** Steps at which a tick can die, as the failure a test injects there. */
  const steps: [string, (world: World) => void][] = [
    ['while pinning the profile', (w) => failNix(w, 'setProfile')],
    ['while writing a unit', (w) => w.systemd.failOn('install deploy-api.service', crash())],
    ['at the daemon-reload', (w) => w.systemd.failOn('daemon-reload', crash())],
    ['while restarting', (w) => w.systemd.failOn('restart deploy-api.service', crash())],
    ['while reading status in the health gate', (w) => w.systemd.failOn(/^status deploy-api/, crash())],
    ['while saving state', (w) => failSave(w)],
  ];

  it.each(steps)('%s: the next tick converges', async (_step, inject) => {
    const world = await createWorld();
    await world.publish(await threeServices(world));
    await world.tick();
    await world.publish(await threeServices(world, { api: '2.0', worker: '2.0' }));
    inject(world);
    await world.tick().catch(() => undefined); // the "process" dies here
    const report = await world.tick();

    expect(['applied', 'unchanged']).toContain(report.outcome);
    const state = world.state.current;
    expect(state?.services.api?.storePath).toBe(storePath('api-2.0'));
    expect(state?.services.worker?.storePath).toBe(storePath('worker-2.0'));
    expect(world.systemd.files.get('deploy-api.service')).toContain(storePath('api-2.0'));
    expect((await world.systemd.status('deploy-api.service')).activeState).toBe('active');
    expect(
      (await world.nix.listGenerations('/nix/var/nix/profiles/biz/api.d/profile')).find((g) => g.current)
        ?.storePath,
    ).toBe(storePath('api-2.0'));
    expect(world.routes()).toEqual({
      'omni-deploy:web': '127.0.0.1:8000',
      'omni-deploy:api': '127.0.0.1:8001',
      'someone-else': FOREIGN_ROUTE['@id'] && 'foreign',
    });
    // And a tick after that has nothing left to do.
    expect((await world.tick()).outcome).toBe('unchanged');
  });
});

/** An error standing in for the process dying (not a DeployError: nothing may catch it as an expected failure). */
function crash(): Error {
  return new Error('simulated crash');
}

function failNix(world: World, method: string) {
  let failed = false;
  world.nix.beforeCall = (call) => {
    if (!failed && call.method === method) {
      failed = true;
      throw crash();
    }
  };
}

function failSave(world: World) {
  const save = world.state.save.bind(world.state);
  let failed = false;
  world.state.save = async (state) => {
    if (!failed) {
      failed = true;
      throw crash();
    }
    return save(state);
  };
}
