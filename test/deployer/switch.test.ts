/**
 * Zero-downtime updates with the shipped fakes: the relay of a blue/green update (candidate, switch, the
 * service's own unit, switch back), its failures at each step, a deployer killed after every single change it
 * makes (the next tick converges), overlap updates of workers, and the live instance in routes, status and
 * metrics. "Serving throughout" is checked on every systemd call: the unit Caddy sends traffic to is never
 * stopped or restarted while it does.
 */
import { describe, expect, it } from 'vitest';
import { renderMetrics } from '../../src/deployer/metrics.js';
import { renderPlan } from '../../src/deployer/plan.js';
import type { ProbeResult } from '../../src/deployer/probe.js';
import type { DeployerState } from '../../src/deployer/state.js';
import { buildHostStatus, type HostStatus, renderHostStatus } from '../../src/deployer/status.js';
import { storePath } from '../builders.js';
import { createWorld, type World } from './world.js';

const OK: ProbeResult = { ok: true, status: 200 };
const HTTP = { domain: 'example.com', path: '/', internalPort: 8000, healthCheck: '/healthz' };

/** web reads its port from PORT: blue/green by default. */
const web = (version: string, overrides: Record<string, unknown> = {}) => ({
  name: 'web',
  version,
  overrides: { env: { PORT: '8000', AREA: 'Live' }, http: HTTP, ...overrides },
});

/** Which port each of web's units listens on. */
const PORT_OF: Record<string, number> = { 'deploy-web.service': 8000, 'deploy-web@next.service': 18000 };

/**
 * A world where web's instances answer their health checks, with a watch on every systemd call: stopping or
 * restarting the unit Caddy currently sends web's traffic to is a violation (a request would fail).
 */
async function blueGreenWorld() {
  const world = await createWorld();
  world.probe.set(8000, OK);
  world.probe.set(18000, OK);
  const violations: string[] = [];
  const dials: string[] = [];
  const dial = () => world.routes()['omni-deploy:web'];
  for (const verb of ['stop', 'restart'] as const) {
    const original = world.systemd[verb].bind(world.systemd);
    world.systemd[verb] = async (name: string) => {
      const live = dial();
      if (live !== undefined && live === `127.0.0.1:${PORT_OF[name]}`)
        violations.push(`${verb} ${name} while Caddy sends web's traffic to it`);
      return original(name);
    };
  }
  const patch = world.caddy.patch.bind(world.caddy);
  world.caddy.patch = async (...args) => {
    await patch(...args);
    dials.push(dial() ?? 'none');
  };
  return { world, violations, dials };
}

async function deployV1(world: World) {
  await world.publish(await world.manifestOf([web('1.0')]));
  const first = await world.tick();
  expect(first.outcome).toBe('applied');
  world.systemd.calls.length = 0;
}

async function publishV2(world: World, overrides: Record<string, unknown> = {}) {
  await world.publish(await world.manifestOf([web('2.0', overrides)], '2025-01-15T13:00:00Z'));
}

describe('a blue/green update (fakes)', () => {
  it('starts the new version beside the old one, switches Caddy, moves it home and switches back', async () => {
    const { world, violations, dials } = await blueGreenWorld();
    await deployV1(world);
    const installed: Record<string, string> = {};
    const install = world.systemd.installUnit.bind(world.systemd);
    world.systemd.installUnit = async (unit) => {
      installed[unit.name] ??= unit.text;
      return install(unit);
    };
    await publishV2(world);
    const saves = world.state.saves.length;
    const report = await world.tick();

    expect(report.outcome).toBe('applied');
    expect(report.results).toEqual([
      { name: 'web', action: 'update', outcome: 'updated', storePath: storePath('web-2.0') },
    ]);
    expect(world.systemdChanges()).toEqual([
      'install deploy-web@next.service',
      'daemon-reload',
      'restart deploy-web@next.service',
      'install deploy-web.service',
      'daemon-reload',
      'restart deploy-web.service',
      'stop deploy-web@next.service',
      'remove deploy-web@next.service',
      'daemon-reload',
    ]);
    expect(dials).toEqual(['127.0.0.1:18000', '127.0.0.1:8000']);
    expect(violations).toEqual([]);
    // Only the port variable differs between the instances; everything else is as the manifest wrote it.
    expect(installed['deploy-web@next.service']).toContain('\nEnvironment="PORT=18000"\n');
    expect(installed['deploy-web@next.service']).toContain('\nEnvironment="AREA=Live"\n');
    expect(installed['deploy-web.service']).toContain('\nEnvironment="PORT=8000"\n');
    expect(world.systemd.files.has('deploy-web@next.service')).toBe(false);
    expect(world.probe.checks.filter((c) => c.port === 18000).length).toBeGreaterThan(0);
    const state = world.state.current;
    expect(state?.services.web).toMatchObject({
      storePath: storePath('web-2.0'),
      health: 'healthy',
      previous: { storePath: storePath('web-1.0') },
    });
    expect(state?.services.web?.switch).toBeUndefined();
    // Every step was saved before it was taken.
    const phases = world.state.saves.slice(saves).map((s) => s.services.web?.switch?.phase ?? 'rest');
    expect(phases.filter((p, i) => p !== phases[i - 1])).toEqual([
      'candidate',
      'switched',
      'main',
      'returning',
      'rest',
    ]);
    expect((await world.tick()).outcome).toBe('unchanged');
  });

  it('waits for the old instance to drain before restarting it, up to --drain-timeout', async () => {
    const { world, violations } = await blueGreenWorld();
    await deployV1(world);
    world.connections.drainAfter(8000, [3, 2, 1]);
    world.connections.drainAfter(18000, [1]);
    await publishV2(world);
    await world.tick();
    expect(violations).toEqual([]);
    expect(world.events.filter((e) => e.type === 'service.drained').map((e) => e.data)).toEqual([
      { port: 8000, waitedMs: 300 },
      { port: 18000, waitedMs: 100 },
    ]);

    // A connection that never finishes holds the drain until the timeout, then the switch goes on.
    world.connections.set(18000, [
      {
        local: '127.0.0.1:40000',
        remote: '127.0.0.1:18000',
        lastSentMs: 0,
        lastReceivedMs: 90_000,
        segmentsOut: 1,
        segmentsIn: 0,
      },
    ]);
    await world.publish(await world.manifestOf([web('3.0')], '2025-01-15T14:00:00Z'));
    const report = await world.tick();
    expect(report.results[0]?.outcome).toBe('updated');
    expect(world.events.find((e) => e.type === 'service.drain-timeout')).toMatchObject({
      message: expect.stringContaining('1 request(s) still in flight to port 18000 after 30s'),
    });
  });

  it('does not count the pooled idle connections of Caddy as in flight', async () => {
    const { world } = await blueGreenWorld();
    await deployV1(world);
    world.connections.set(8000, [
      // Answered 4 s ago, nothing sent since: an idle connection in Caddy's pool.
      {
        local: '127.0.0.1:40000',
        remote: '127.0.0.1:8000',
        lastSentMs: 4010,
        lastReceivedMs: 4000,
        segmentsOut: 3,
        segmentsIn: 3,
      },
    ]);
    await publishV2(world);
    await world.tick();
    expect(world.events.find((e) => e.type === 'service.drained' && e.data?.port === 8000)?.data).toEqual({
      port: 8000,
      waitedMs: 0,
    });
  });

  it('refuses a bad version at the candidate: no request reaches it, the old one is never restarted', async () => {
    const { world, violations, dials } = await blueGreenWorld();
    await deployV1(world);
    world.crash(await world.build('web-2.0'));
    await publishV2(world);
    const report = await world.tick();

    expect(report.outcome).toBe('partial');
    expect(report.results[0]).toMatchObject({
      outcome: 'rolled-back',
      reason: expect.stringMatching(/^unit (failed|restarted)/),
    });
    expect(world.events.find((e) => e.type === 'service.unhealthy')?.message).toContain(
      '(in deploy-web@next.service; the running version was not touched)',
    );
    expect(world.systemdChanges()).not.toContain('restart deploy-web.service');
    expect(world.systemdChanges()).toContain('stop deploy-web@next.service');
    expect(dials).toEqual([]); // Caddy never changed
    expect(violations).toEqual([]);
    const state = world.state.current;
    expect(state?.services.web).toMatchObject({ storePath: storePath('web-1.0'), health: 'healthy' });
    expect(state?.services.web?.switch).toBeUndefined();
    expect(state?.failures).toEqual([
      expect.objectContaining({ service: 'web', storePath: storePath('web-2.0') }),
    ]);
    expect(state?.rollbacks).toBe(1);
    expect(
      (await world.nix.listGenerations('/nix/var/nix/profiles/biz/web.d/profile')).find((g) => g.current)
        ?.storePath,
    ).toBe(storePath('web-1.0'));
    // Held, as today: the next tick does not retry it.
    world.systemd.calls.length = 0;
    expect((await world.tick()).outcome).toBe('unchanged');
    expect(world.systemdChanges()).toEqual([]);
  });

  it('sends traffic back to the old instance when the candidate fails while it serves', async () => {
    const { world, violations, dials } = await blueGreenWorld();
    await deployV1(world);
    await publishV2(world);
    // Healthy for the short gate (two checks), then its health check fails.
    let checks = 0;
    const check = world.probe.check.bind(world.probe);
    world.probe.check = async (port, path, timeout) => {
      if (port === 18000 && ++checks > 2) return { ok: false, status: 500 };
      return check(port, path, timeout);
    };
    const report = await world.tick();

    expect(report.results[0]).toMatchObject({
      outcome: 'rolled-back',
      reason: expect.stringContaining(
        'health check answered 500 (while serving from deploy-web@next.service',
      ),
    });
    expect(dials).toEqual(['127.0.0.1:18000', '127.0.0.1:8000']);
    expect(world.systemdChanges()).not.toContain('restart deploy-web.service');
    expect(violations).toEqual([]);
    expect(world.state.current?.services.web?.storePath).toBe(storePath('web-1.0'));
    expect(world.state.current?.failures).toHaveLength(1);
  });

  it('rolls back through the same relay when the new version fails in the service’s own unit', async () => {
    const { world, violations, dials } = await blueGreenWorld();
    await deployV1(world);
    await publishV2(world);
    // The new version answers on its second port, but not on its own (its own unit holds web-2.0).
    const check = world.probe.check.bind(world.probe);
    world.probe.check = async (port, path, timeout) =>
      port === 8000 && world.systemd.files.get('deploy-web.service')?.includes(storePath('web-2.0'))
        ? { ok: false, error: 'ECONNREFUSED' }
        : check(port, path, timeout);
    const report = await world.tick();

    expect(report.results[0]).toMatchObject({
      outcome: 'rolled-back',
      reason: expect.stringContaining('(in deploy-web.service, after it ran in deploy-web@next.service)'),
    });
    expect(dials).toEqual(['127.0.0.1:18000', '127.0.0.1:8000']);
    expect(violations).toEqual([]);
    expect(world.systemd.files.get('deploy-web.service')).toContain(storePath('web-1.0'));
    expect(world.systemd.files.has('deploy-web@next.service')).toBe(false);
    expect(world.state.current?.services.web).toMatchObject({
      storePath: storePath('web-1.0'),
      health: 'healthy',
    });
    expect(world.state.current?.services.web?.switch).toBeUndefined();
    expect(world.state.current?.failures).toEqual([
      expect.objectContaining({ storePath: storePath('web-2.0') }),
    ]);
  });

  it('a push rollback (an older manifest) is a blue/green update too', async () => {
    const { world, violations, dials } = await blueGreenWorld();
    await deployV1(world);
    await publishV2(world);
    await world.tick();
    dials.length = 0;
    // push rollback writes the archived services again under a new generation.
    await world.publish(await world.manifestOf([web('1.0')], '2025-01-15T14:00:00Z'));
    const report = await world.tick();
    expect(report.results[0]).toMatchObject({ outcome: 'updated', storePath: storePath('web-1.0') });
    expect(dials).toEqual(['127.0.0.1:18000', '127.0.0.1:8000']);
    expect(violations).toEqual([]);
  });

  it('refuses at pre-flight, touching nothing, when a stranger listens on the second port; retried next tick', async () => {
    const { world, dials } = await blueGreenWorld();
    await deployV1(world);
    const listeners = world.checks.listeners.bind(world.checks);
    let stranger = true;
    world.checks.listeners = async (port) =>
      port === 18000 && stranger
        ? [{ address: '127.0.0.1:18000', pid: 77, process: 'nc', unit: 'nc.service' }]
        : listeners(port);
    await publishV2(world);
    const report = await world.tick();
    expect(report.results[0]).toMatchObject({
      outcome: 'refused',
      reason: expect.stringContaining(
        'services[0].http.secondPort: port 18000 is taken on this host by unit nc.service (nc 77) on 127.0.0.1:18000',
      ),
    });
    expect(world.systemdChanges()).toEqual([]);
    expect(dials).toEqual([]);
    stranger = false;
    expect((await world.tick()).results[0]?.outcome).toBe('updated');
  });

  it('undoes the switch when Caddy cannot be reached: the old version keeps serving, retried next tick', async () => {
    const { world, violations } = await blueGreenWorld();
    await deployV1(world);
    await publishV2(world);
    world.caddy.setReachable(false);
    const report = await world.tick();
    expect(report.results[0]).toMatchObject({
      outcome: 'refused',
      reason: expect.stringContaining('interrupted at step switched: Caddy admin API memory'),
    });
    world.caddy.setReachable(true);
    expect(world.routes()['omni-deploy:web']).toBe('127.0.0.1:8000');
    expect(violations).toEqual([]);
    expect(world.systemdChanges()).not.toContain('restart deploy-web.service');
    const retried = await world.tick();
    expect(retried.results.find((r) => r.name === 'web')?.outcome).toBe('updated');
    expect(world.state.current?.services.web?.switch).toBeUndefined();
  });

  it('restarts in place what blue/green cannot keep serving: opted out, port in the arguments, first install', async () => {
    const { world } = await blueGreenWorld();
    await world.publish(
      await world.manifestOf([
        web('1.0', { update: 'restart' }),
        {
          name: 'storybook',
          version: '1.0',
          overrides: {
            exec: { command: 'storybook', args: ['--port', '8010'] },
            http: { domain: 'example.com', path: '/storybook', internalPort: 8010 },
          },
        },
      ]),
    );
    const first = await world.tick();
    expect(first.results.map((r) => r.outcome)).toEqual(['installed', 'installed']);
    expect(world.systemdChanges().filter((c) => c.includes('@next'))).toEqual([]);
  });

  it('shows the strategy in the plan', async () => {
    const { world } = await blueGreenWorld();
    await deployV1(world);
    await publishV2(world);
    const report = await world.tick();
    expect(renderPlan(report.plan as NonNullable<typeof report.plan>)).toContain(
      'blue/green: the new version starts on port 18000 beside the running one, Caddy switches to it, then it moves back to 8000',
    );
  });
});

/** What a SIGKILL looks like to the code under test: nothing it catches (not even as an `Error`). */
class Killed {
  constructor(readonly after: number) {}
}

/** Every call that changes the world: the crash points of the SIGKILL tests. */
function armCrash(world: World): { arm(k: number): void; count(): number } {
  let n = 0;
  let at = Number.POSITIVE_INFINITY;
  const hit = () => {
    n += 1;
    if (n === at) throw new Killed(n);
  };
  const wrap = <T extends object>(target: T, names: (keyof T)[]) => {
    for (const name of names) {
      const original = (target[name] as (...a: unknown[]) => Promise<unknown>).bind(target);
      (target as Record<keyof T, unknown>)[name] = async (...args: unknown[]) => {
        const result = await original(...args);
        hit();
        return result;
      };
    }
  };
  wrap(world.systemd, [
    'installUnit',
    'removeUnit',
    'daemonReload',
    'start',
    'restart',
    'stop',
    'enable',
    'disable',
  ]);
  wrap(world.caddy, ['put', 'post', 'patch', 'delete']);
  wrap(world.state, ['save']);
  return {
    arm(k) {
      n = 0;
      at = k;
    },
    count: () => n,
  };
}

/** How a killed update must end, by scenario: the version that serves and whether the new one is held back. */
const SCENARIOS = [
  { name: 'an update', ends: 'web-2.0', held: false, setup: (_world: World) => {} },
  {
    name: 'an update whose new version fails in the service’s own unit (rolled back through the relay)',
    ends: 'web-1.0',
    held: true,
    setup: (world: World) => {
      const check = world.probe.check.bind(world.probe);
      world.probe.check = async (port, path, timeout) =>
        port === 8000 && world.systemd.files.get('deploy-web.service')?.includes(storePath('web-2.0'))
          ? { ok: false, error: 'ECONNREFUSED' }
          : check(port, path, timeout);
    },
  },
  {
    name: 'an update refused at its candidate',
    ends: 'web-1.0',
    held: true,
    setup: async (world: World) => world.crash(await world.build('web-2.0')),
  },
];

describe('a deployer killed in the middle of a blue/green update (fakes)', () => {
  it.each(SCENARIOS)(
    '$name: converges at the next tick whatever change it died after, serving throughout',
    async (scenario) => {
      // How many changes the uninterrupted tick makes.
      const probe = await blueGreenWorld();
      await deployV1(probe.world);
      await scenario.setup(probe.world);
      const counter = armCrash(probe.world);
      await publishV2(probe.world);
      counter.arm(Number.POSITIVE_INFINITY);
      await probe.world.tick();
      const changes = counter.count();
      expect(changes).toBeGreaterThan(5);

      for (let k = 1; k <= changes; k++) {
        const { world, violations } = await blueGreenWorld();
        await deployV1(world);
        await scenario.setup(world);
        const crash = armCrash(world);
        await publishV2(world);
        crash.arm(k);
        await expect(world.tick(), `change ${k}`).rejects.toEqual(new Killed(k));
        crash.arm(Number.POSITIVE_INFINITY);
        const next = await world.tick();
        const where = `killed after change ${k} of ${changes}: ${next.outcome} ${next.message ?? ''}`;
        const state = world.state.current;
        expect(state?.services.web?.storePath, where).toBe(storePath(scenario.ends));
        expect(state?.services.web?.health, where).toBe('healthy');
        expect(state?.services.web?.switch, where).toBeUndefined();
        expect(
          state?.failures.map((f) => f.storePath),
          where,
        ).toEqual(scenario.held ? [storePath('web-2.0')] : []);
        expect(world.systemd.files.get('deploy-web.service'), where).toContain(storePath(scenario.ends));
        expect(world.systemd.files.has('deploy-web@next.service'), where).toBe(false);
        expect((await world.systemd.status('deploy-web.service')).activeState, where).toBe('active');
        expect(world.routes()['omni-deploy:web'], where).toBe('127.0.0.1:8000');
        expect(violations, where).toEqual([]);
        world.systemd.calls.length = 0;
        expect((await world.tick()).outcome, where).toBe('unchanged');
        expect(world.systemdChanges(), where).toEqual([]);
      }
    },
  );

  it('after a reboot in the middle, restores only the service’s own unit, with the old version', async () => {
    const { world } = await blueGreenWorld();
    await deployV1(world);
    const crash = armCrash(world);
    await publishV2(world);
    // Die right after Caddy was switched to the candidate.
    const patch = world.caddy.patch.bind(world.caddy);
    world.caddy.patch = async (...args) => {
      await patch(...args);
      throw new Error('SIGKILL');
    };
    await expect(world.tick()).rejects.toThrow('SIGKILL');
    world.caddy.patch = patch;
    crash.arm(Number.POSITIVE_INFINITY);
    expect(world.state.current?.services.web?.switch?.phase).toBe('switched');
    // The reboot: /run is empty, nothing runs.
    for (const name of [...world.systemd.files.keys()]) {
      await world.systemd.stop(name);
      world.systemd.files.delete(name);
    }
    await world.systemd.daemonReload();
    // With the bucket unreachable, the tick can only restore what the state knows: the old version.
    world.manifests.objects.beforeRequest = () => {
      throw new Error('getaddrinfo ENOTFOUND bucket');
    };
    const report = await world.tick();
    expect(report.outcome).toBe('failed');
    expect(report.repaired).toEqual(['web']);
    expect(world.systemd.files.get('deploy-web.service')).toContain(storePath('web-1.0'));
    expect((await world.systemd.status('deploy-web.service')).activeState).toBe('active');
    expect(world.systemd.files.has('deploy-web@next.service')).toBe(false);
    expect(world.routes()['omni-deploy:web']).toBe('127.0.0.1:8000');
    expect(world.state.current?.services.web?.switch).toBeUndefined();
    // Once the bucket answers, the update is made again.
    world.manifests.objects.beforeRequest = undefined;
    expect((await world.tick()).results[0]?.outcome).toBe('updated');
    expect(world.systemd.files.get('deploy-web.service')).toContain(storePath('web-2.0'));
  });
});

describe('a switch left under way', () => {
  it('shows its live instance in status, metrics and routes, and blocks the service until it is settled', async () => {
    const { world, violations } = await blueGreenWorld();
    await deployV1(world);
    await publishV2(world);
    // Killed right after the state recorded that Caddy is being switched to the candidate.
    const save = world.state.save.bind(world.state);
    world.state.save = async (state) => {
      await save(state);
      if (state.services.web?.switch?.phase === 'switched') throw new Killed(0);
    };
    await expect(world.tick()).rejects.toEqual(new Killed(0));
    world.state.save = save;
    // The next tick cannot settle it (systemd does not answer once).
    world.systemd.failOn('read deploy-web.service');
    const blocked = await world.tick();
    expect(blocked.results).toEqual([
      expect.objectContaining({
        name: 'web',
        outcome: 'refused',
        reason: expect.stringContaining('interrupted switch'),
      }),
    ]);
    expect(world.events.map((e) => e.type)).toContain('switch.recover-failed');
    const status = (await world.manifests.readStatus('biz'))?.status as HostStatus;
    expect(status.services[0]).toMatchObject({
      name: 'web',
      storePath: storePath('web-1.0'),
      live: { unit: 'deploy-web@next.service', port: 18000 },
      switching: { step: 'switched', storePath: storePath('web-2.0') },
    });
    expect(world.routes()['omni-deploy:web']).toBe('127.0.0.1:18000');
    const metrics = renderMetrics(world.state.current as DeployerState, '0');
    expect(metrics).toContain(
      'omni_deployer_service_live{host="biz",service="web",unit="deploy-web@next.service",port="18000"} 1',
    );
    expect(metrics).toContain('omni_deployer_service_switching{host="biz",service="web",step="switched"} 1');
    expect(renderHostStatus(buildHostStatus(world.state.current as DeployerState, '0', 'now'), 0)).toContain(
      `  web: to ${storePath('web-2.0')}, step switched; serving: deploy-web@next.service on port 18000`,
    );

    // Settled by the next tick, which then makes the update again.
    const next = await world.tick();
    expect(next.repaired).toEqual(['web']);
    expect(next.results[0]?.outcome).toBe('updated');
    expect(world.state.current?.services.web?.switch).toBeUndefined();
    expect(world.routes()['omni-deploy:web']).toBe('127.0.0.1:8000');
    expect(violations).toEqual([]);
    expect(renderMetrics(world.state.current as DeployerState, '0')).toContain(
      'omni_deployer_service_live{host="biz",service="web",unit="deploy-web.service",port="8000"} 1',
    );
  });
});

describe('workers', () => {
  const worker = (version: string, overrides: Record<string, unknown> = {}) => ({
    name: 'worker',
    version,
    overrides: { exec: { command: 'worker', args: ['--queue', 'default'] }, ...overrides },
  });

  it('restart in place as before, and roll back as before', async () => {
    const world = await createWorld();
    await world.publish(await world.manifestOf([worker('1.0')]));
    await world.tick();
    world.systemd.calls.length = 0;
    await world.publish(await world.manifestOf([worker('2.0')], '2025-01-15T13:00:00Z'));
    expect((await world.tick()).results[0]?.outcome).toBe('updated');
    expect(world.systemdChanges()).toEqual([
      'install deploy-worker.service',
      'daemon-reload',
      'restart deploy-worker.service',
    ]);
    world.crash(await world.build('worker-3.0'));
    await world.publish(await world.manifestOf([worker('3.0')], '2025-01-15T14:00:00Z'));
    expect((await world.tick()).results[0]?.outcome).toBe('rolled-back');
    expect(world.state.current?.services.worker?.storePath).toBe(storePath('worker-2.0'));
  });

  it('in overlap mode start the new copy, then stop the old one: always one copy running', async () => {
    const world = await createWorld();
    await world.publish(await world.manifestOf([worker('1.0', { update: 'overlap' })]));
    await world.tick();
    world.systemd.calls.length = 0;
    const gaps: string[] = [];
    for (const verb of ['stop', 'restart'] as const) {
      const original = world.systemd[verb].bind(world.systemd);
      world.systemd[verb] = async (name: string) => {
        const other =
          name === 'deploy-worker.service' ? 'deploy-worker@next.service' : 'deploy-worker.service';
        if ((await world.systemd.status(other)).activeState !== 'active')
          gaps.push(`${verb} ${name} with no other copy running`);
        return original(name);
      };
    }
    await world.publish(
      await world.manifestOf([worker('2.0', { update: 'overlap' })], '2025-01-15T13:00:00Z'),
    );
    const report = await world.tick();
    expect(report.results[0]?.outcome).toBe('updated');
    expect(world.systemdChanges()).toEqual([
      'install deploy-worker@next.service',
      'daemon-reload',
      'restart deploy-worker@next.service',
      'install deploy-worker.service',
      'daemon-reload',
      'restart deploy-worker.service',
      'stop deploy-worker@next.service',
      'remove deploy-worker@next.service',
      'daemon-reload',
    ]);
    expect(gaps).toEqual([]);
    expect(world.caddy.mutations).toBe(0);

    // A bad version never replaces the running copy.
    world.crash(await world.build('worker-3.0'));
    world.systemd.calls.length = 0;
    await world.publish(
      await world.manifestOf([worker('3.0', { update: 'overlap' })], '2025-01-15T14:00:00Z'),
    );
    expect((await world.tick()).results[0]?.outcome).toBe('rolled-back');
    expect(world.systemdChanges()).not.toContain('restart deploy-worker.service');
    expect(world.state.current?.services.worker?.storePath).toBe(storePath('worker-2.0'));
  });
});
