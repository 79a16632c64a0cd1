/**
 * Two services switching in one tick (fakes), with a deployer killed after every single change: Caddy must never
 * be ahead of the saved state (one service's Caddy change must not carry the other's unsaved step), so the next
 * tick never stops an instance Caddy sends traffic to. The health probe answers only on a port whose unit runs,
 * and every Caddy change and every stop or restart is checked against what Caddy routes.
 */
import { describe, expect, it } from 'vitest';
import { reconcileCaddy } from '../../src/deployer/drift.js';
import type { DeployerState, SwitchRecord } from '../../src/deployer/state.js';
import { DEFAULT_HOST_POLICY } from '../../src/policy/index.js';
import { storePath } from '../builders.js';
import { createWorld, type World } from './world.js';

/** Each service's units and the port each listens on. */
const SERVICES = {
  web: { domain: 'example.com', main: 8000, next: 18000 },
  api: { domain: 'api.example.com', main: 8001, next: 18001 },
} as const;
const UNIT_OF_PORT = new Map<number, string>(
  Object.entries(SERVICES).flatMap(([name, s]) => [
    [s.main, `deploy-${name}.service`],
    [s.next, `deploy-${name}@next.service`],
  ]),
);

const spec = (name: keyof typeof SERVICES, version: string) => ({
  name,
  version,
  overrides: {
    env: { PORT: String(SERVICES[name].main) },
    http: {
      domain: SERVICES[name].domain,
      path: '/',
      internalPort: SERVICES[name].main,
      healthCheck: '/healthz',
    },
  },
});

/** What a SIGKILL looks like to the code under test: nothing it catches. */
class Killed {
  constructor(readonly after: number) {}
}

/**
 * A world with web and api, a probe that answers only where a unit is active, a slow state store (a save lets
 * the other switch run on meanwhile, as a disk write would), a watch on Caddy and systemd, and a crash point
 * after every change.
 */
async function twoServiceWorld() {
  const world = await createWorld();
  const violations: string[] = [];
  const isActive = async (unit: string) => (await world.systemd.status(unit)).activeState === 'active';
  world.probe.check = async (port) => {
    const unit = UNIT_OF_PORT.get(port);
    return unit && (await isActive(unit)) ? { ok: true, status: 200 } : { ok: false, error: 'ECONNREFUSED' };
  };
  const dialedPorts = () =>
    Object.values(world.routes())
      .filter((dial) => dial.startsWith('127.0.0.1:'))
      .map((dial) => Number(dial.slice('127.0.0.1:'.length)));

  // A kill is final: once it happened, every later call of the killed tick (the other switch, still under way
  // in the same process) throws too, as nothing runs after a SIGKILL.
  let n = 0;
  let at = Number.POSITIVE_INFINITY;
  let dead = false;
  const hit = () => {
    n += 1;
    if (n === at) {
      dead = true;
      throw new Killed(n);
    }
  };
  const alive = () => {
    if (dead) throw new Killed(n);
  };
  for (const target of [world.systemd, world.caddy, world.state, world.probe, world.connections, world.nix]) {
    const methods = target as unknown as Record<string, unknown>;
    for (const key of Object.keys(methods)) {
      const original = methods[key];
      if (typeof original !== 'function') continue;
      methods[key] = (...args: unknown[]) => {
        alive();
        return (original as (...a: unknown[]) => unknown).apply(target, args);
      };
    }
  }
  for (const verb of ['stop', 'restart'] as const) {
    const original = world.systemd[verb].bind(world.systemd);
    world.systemd[verb] = async (name: string) => {
      // Starting a unit that is down (after a reboot) is not a violation; stopping one that serves is.
      for (const port of dialedPorts())
        if (UNIT_OF_PORT.get(port) === name && (await isActive(name)))
          violations.push(`${verb} ${name} while Caddy sends traffic to it`);
      await original(name);
      hit();
    };
  }
  for (const verb of ['installUnit', 'removeUnit', 'daemonReload', 'start', 'enable', 'disable'] as const) {
    const original = (world.systemd[verb] as (...a: unknown[]) => Promise<void>).bind(world.systemd);
    (world.systemd as unknown as Record<string, unknown>)[verb] = async (...args: unknown[]) => {
      await original(...args);
      hit();
    };
  }
  for (const verb of ['put', 'post', 'patch', 'delete'] as const) {
    const original = (world.caddy[verb] as (...a: unknown[]) => Promise<unknown>).bind(world.caddy);
    (world.caddy as unknown as Record<string, unknown>)[verb] = async (...args: unknown[]) => {
      const result = await original(...args);
      for (const port of dialedPorts())
        if (!(await isActive(UNIT_OF_PORT.get(port) as string)))
          violations.push(`Caddy sends traffic to port ${port}, where nothing runs`);
      // Caddy never ahead of the saved state: a candidate gets traffic only once its switch is saved as switched
      // (behind it is fine: at `returning` Caddy is about to be pointed back).
      const saved = world.state.current;
      for (const [name, s] of Object.entries(SERVICES)) {
        const phase = saved?.services[name]?.switch?.phase;
        if (
          world.routes()[`omni-deploy:${name}`] === `127.0.0.1:${s.next}` &&
          !['switched', 'main', 'returning'].includes(phase as string)
        )
          violations.push(
            `Caddy sends ${name}'s traffic to its candidate while the saved state says ${phase ?? 'no switch'}`,
          );
      }
      hit();
      return result;
    };
  }
  const save = world.state.save.bind(world.state);
  world.state.save = async (state) => {
    for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
    await save(state);
    hit();
  };
  return {
    world,
    violations,
    arm(k: number) {
      n = 0;
      at = k;
    },
    /** After a kill: lets what the killed tick still had under way die, then lets the host live again. */
    async reboot() {
      for (let i = 0; i < 50; i++) await new Promise((resolve) => setImmediate(resolve));
      dead = false;
      at = Number.POSITIVE_INFINITY;
    },
    count: () => n,
  };
}

async function deployBoth(world: World, version: string, generation?: string) {
  await world.publish(await world.manifestOf([spec('web', version), spec('api', version)], generation));
}

describe('two services switching in one tick, killed after each change (fakes)', () => {
  it('converges at the next tick, the live instance of each serving throughout', async () => {
    const dry = await twoServiceWorld();
    await deployBoth(dry.world, '1.0');
    expect((await dry.world.tick()).outcome).toBe('applied');
    await deployBoth(dry.world, '2.0', '2025-01-15T13:00:00Z');
    dry.arm(Number.POSITIVE_INFINITY);
    const whole = await dry.world.tick();
    expect(whole.results.map((r) => r.outcome)).toEqual(['updated', 'updated']);
    expect(dry.violations).toEqual([]);
    const changes = dry.count();
    expect(changes).toBeGreaterThan(10);

    for (let k = 1; k <= changes; k++) {
      const { world, violations, arm, reboot } = await twoServiceWorld();
      await deployBoth(world, '1.0');
      await world.tick();
      await deployBoth(world, '2.0', '2025-01-15T13:00:00Z');
      arm(k);
      await expect(world.tick(), `change ${k}`).rejects.toEqual(new Killed(k));
      await reboot();
      world.events.length = 0;
      world.systemd.calls.length = 0;
      const next = await world.tick();
      if (process.env.DBG) {
        console.log(world.events.map((e) => `${e.type} ${e.service ?? ''} ${e.message}`).join('\n'));
        console.log(world.systemdChanges().join('\n'));
      }
      const where = `killed after change ${k} of ${changes}: ${next.outcome} ${next.message ?? ''}`;
      expect(violations, where).toEqual([]);
      const state = world.state.current;
      for (const [name, s] of Object.entries(SERVICES)) {
        expect(state?.services[name]?.storePath, where).toBe(storePath(`${name}-2.0`));
        expect(state?.services[name]?.switch, where).toBeUndefined();
        expect(world.routes()[`omni-deploy:${name}`], where).toBe(`127.0.0.1:${s.main}`);
        expect(world.systemd.files.has(`deploy-${name}@next.service`), where).toBe(false);
      }
    }
  });
});

describe('a switch discarded at its first step', () => {
  it('moves Caddy back before it stops the candidate, if Caddy was ahead of the saved state', async () => {
    const { world, violations, reboot } = await twoServiceWorld();
    await deployBoth(world, '1.0');
    await world.tick();
    // Killed right after the candidate started (saved step: candidate).
    const restart = world.systemd.restart.bind(world.systemd);
    world.systemd.restart = async (name) => {
      await restart(name);
      if (name.endsWith('@next.service')) throw new Killed(0);
    };
    await world.publish(await world.manifestOf([spec('web', '2.0'), spec('api', '1.0')]));
    await expect(world.tick()).rejects.toEqual(new Killed(0));
    world.systemd.restart = restart;
    await reboot();
    expect(world.state.current?.services.web?.switch?.phase).toBe('candidate');
    // Caddy ahead of the saved state (what a deployer that routed from memory could leave).
    const ahead = structuredClone(world.state.current as DeployerState);
    (ahead.services.web?.switch as SwitchRecord).phase = 'switched';
    await reconcileCaddy(world.ctx, ahead);
    expect(world.routes()['omni-deploy:web']).toBe('127.0.0.1:18000');
    violations.length = 0;

    await world.tick();
    expect(violations).toEqual([]);
    expect(world.routes()['omni-deploy:web']).toBe('127.0.0.1:8000');
    expect(world.state.current?.services.web?.storePath).toBe(storePath('web-2.0'));
  });
});

describe('a switch whose undo fails', () => {
  it('keeps the candidate serving over several ticks and a reboot; a new version then converges', async () => {
    const { world, violations } = await twoServiceWorld();
    await deployBoth(world, '1.0');
    await world.tick();
    // web 2.0 passes as the candidate but not in web's own unit, and 1.0 no longer starts (a lost dependency).
    const check = world.probe.check.bind(world.probe);
    world.probe.check = async (port, path, timeout) =>
      port === 8000 && world.systemd.files.get('deploy-web.service')?.includes(storePath('web-2.0'))
        ? { ok: false, error: 'ECONNREFUSED' }
        : check(port, path, timeout);
    world.crash(storePath('web-1.0'));
    await world.publish(await world.manifestOf([spec('web', '2.0'), spec('api', '1.0')]));
    const failed = await world.tick();
    expect(failed.results.find((r) => r.name === 'web')?.outcome).toBe('rolled-back');
    const serving = async (where: string) => {
      expect(world.state.current?.services.web?.switch, where).toMatchObject({ phase: 'main', undo: true });
      expect(world.routes()['omni-deploy:web'], where).toBe('127.0.0.1:18000');
      expect((await world.systemd.status('deploy-web@next.service')).activeState, where).toBe('active');
      expect(violations, where).toEqual([]);
    };
    await serving('after the failed undo');
    for (let i = 0; i < 3; i++) {
      // Each tick tries to undo again (1.0 still does not start).
      expect((await world.tick()).outcome, `tick ${i}`).not.toBe('applied');
      await serving(`tick ${i}`);
    }

    // A reboot: /run is empty, nothing runs; the candidate is what Caddy's saved route points at.
    for (const name of [...world.systemd.files.keys()]) {
      await world.systemd.stop(name);
      world.systemd.files.delete(name);
    }
    await world.systemd.daemonReload();
    violations.length = 0;
    await world.tick();
    await serving('after the reboot');
    expect(world.events.map((e) => e.type)).toContain('switch.candidate-restored');

    // A fixed version replaces the stuck switch.
    await world.publish(await world.manifestOf([spec('web', '3.0'), spec('api', '1.0')]));
    const fixed = await world.tick();
    expect(fixed.results.find((r) => r.name === 'web')).toMatchObject({
      outcome: 'updated',
      storePath: storePath('web-3.0'),
    });
    expect(violations).toEqual([]);
    const state = world.state.current;
    expect(state?.services.web).toMatchObject({ storePath: storePath('web-3.0'), health: 'healthy' });
    expect(state?.services.web?.switch).toBeUndefined();
    expect(world.routes()['omni-deploy:web']).toBe('127.0.0.1:8000');
    expect(world.systemd.files.has('deploy-web@next.service')).toBe(false);
    expect(world.systemd.files.get('deploy-web.service')).toContain(storePath('web-3.0'));
    expect((await world.tick()).outcome).toBe('unchanged');
  });

  it('a new version that fails too is held, and the candidate keeps serving', async () => {
    const { world, violations } = await twoServiceWorld();
    await deployBoth(world, '1.0');
    await world.tick();
    const check = world.probe.check.bind(world.probe);
    world.probe.check = async (port, path, timeout) =>
      port === 8000 && world.systemd.files.get('deploy-web.service')?.includes(storePath('web-2.0'))
        ? { ok: false, error: 'ECONNREFUSED' }
        : check(port, path, timeout);
    world.crash(storePath('web-1.0'));
    await world.publish(await world.manifestOf([spec('web', '2.0'), spec('api', '1.0')]));
    await world.tick();
    world.crash(await world.build('web-3.0'));
    await world.publish(await world.manifestOf([spec('web', '3.0'), spec('api', '1.0')]));
    expect((await world.tick()).results.find((r) => r.name === 'web')?.outcome).toBe('rolled-back');
    expect(world.state.current?.failures.map((f) => f.storePath)).toContain(storePath('web-3.0'));
    await world.tick();
    expect(world.state.current?.services.web?.switch).toMatchObject({ phase: 'main', undo: true });
    expect(world.routes()['omni-deploy:web']).toBe('127.0.0.1:18000');
    expect((await world.systemd.status('deploy-web@next.service')).activeState).toBe('active');
    expect(violations).toEqual([]);
  });
});

describe('a reboot once the new version passed both gates (step returning)', () => {
  /** web 2.0 switched and gated in its own unit; the deployer dies right after saving `returning`; reboot. */
  async function rebootAtReturning(setup: (world: World) => Promise<void> | void = () => {}) {
    const { world, violations } = await twoServiceWorld();
    await deployBoth(world, '1.0');
    await world.tick();
    const save = world.state.save.bind(world.state);
    world.state.save = async (state) => {
      await save(state);
      const s = state.services.web?.switch;
      if (s?.phase === 'returning' && !s.undo) throw new Killed(0);
    };
    await world.publish(await world.manifestOf([spec('web', '2.0'), spec('api', '1.0')]));
    await expect(world.tick()).rejects.toEqual(new Killed(0));
    world.state.save = save;
    for (const name of [...world.systemd.files.keys()]) {
      await world.systemd.stop(name);
      world.systemd.files.delete(name);
    }
    await world.systemd.daemonReload();
    await setup(world);
    // The bucket unreachable: only what the state knows decides.
    world.manifests.objects.beforeRequest = () => {
      throw new Error('getaddrinfo ENOTFOUND bucket');
    };
    violations.length = 0;
    const installed: string[] = [];
    const install = world.systemd.installUnit.bind(world.systemd);
    world.systemd.installUnit = async (unit) => {
      if (unit.name === 'deploy-web.service') installed.push(unit.text);
      return install(unit);
    };
    await world.tick();
    // After a reboot nothing runs until the tick starts it: what counts is that nothing serving is stopped.
    return { world, violations: violations.filter((v) => !v.endsWith('where nothing runs')), installed };
  }

  it('goes forward: the new version in the service’s own unit, never the old one', async () => {
    const { world, violations, installed } = await rebootAtReturning();
    const state = world.state.current;
    expect(state?.services.web).toMatchObject({ storePath: storePath('web-2.0'), health: 'healthy' });
    expect(state?.services.web?.switch).toBeUndefined();
    expect(state?.failures).toEqual([]);
    expect(world.systemd.files.get('deploy-web.service')).toContain(storePath('web-2.0'));
    expect((await world.systemd.status('deploy-web.service')).activeState).toBe('active');
    expect(world.systemd.files.has('deploy-web@next.service')).toBe(false);
    expect(world.routes()['omni-deploy:web']).toBe('127.0.0.1:8000');
    expect(installed.length).toBeGreaterThan(0);
    expect(installed.filter((text) => text.includes(storePath('web-1.0')))).toEqual([]);
    expect(violations).toEqual([]);
  });

  it('undoes only when the new version fails there', async () => {
    const { world, violations } = await rebootAtReturning((w) => w.crash(storePath('web-2.0')));
    const state = world.state.current;
    expect(state?.services.web).toMatchObject({ storePath: storePath('web-1.0'), health: 'healthy' });
    expect(state?.services.web?.switch).toBeUndefined();
    expect(state?.failures.map((f) => f.storePath)).toEqual([storePath('web-2.0')]);
    expect(world.systemd.files.get('deploy-web.service')).toContain(storePath('web-1.0'));
    expect(world.routes()['omni-deploy:web']).toBe('127.0.0.1:8000');
    expect(violations).toEqual([]);
  });
});

describe('a host whose port range excludes the derived second port', () => {
  it('updates the service by restart in place, with a warning, instead of refusing it', async () => {
    const world = await createWorld({
      settings: { policy: { ...DEFAULT_HOST_POLICY, ports: { min: 8000, max: 8999 } } },
    });
    world.probe.set(8000, { ok: true, status: 200 });
    await world.publish(await world.manifestOf([spec('web', '1.0')]));
    expect((await world.tick()).results.map((r) => r.outcome)).toEqual(['installed']);
    world.systemd.calls.length = 0;
    await world.publish(await world.manifestOf([spec('web', '2.0')]));
    const report = await world.tick();
    expect(report.results.map((r) => r.outcome)).toEqual(['updated']);
    expect(world.systemdChanges()).toEqual([
      'install deploy-web.service',
      'daemon-reload',
      'restart deploy-web.service',
    ]);
    expect(world.events.filter((e) => e.type === 'service.restart-in-place')).toContainEqual(
      expect.objectContaining({
        level: 'warn',
        service: 'web',
        message: expect.stringContaining('derived second port 18000'),
      }),
    );
  });
});

describe('a service whose env file assigns its port variable', () => {
  it('updates by restart in place, with a warning naming the file and the variable', async () => {
    const world = await createWorld();
    world.probe.set(8000, { ok: true, status: 200 });
    const envFile = '/var/lib/biz-secrets/web.env';
    world.checks.paths.set(envFile, { type: 'file', uid: 0, gid: 0, mode: 0o600 });
    world.checks.envFiles.set(envFile, ['TOKEN', 'PORT']);
    const withEnvFile = (version: string) => {
      const s = spec('web', version);
      return { ...s, overrides: { ...s.overrides, envFile } };
    };
    await world.publish(await world.manifestOf([withEnvFile('1.0')]));
    expect((await world.tick()).results.map((r) => r.outcome)).toEqual(['installed']);
    world.systemd.calls.length = 0;
    await world.publish(await world.manifestOf([withEnvFile('2.0')]));
    expect((await world.tick()).results.map((r) => r.outcome)).toEqual(['updated']);
    expect(world.systemdChanges()).toEqual([
      'install deploy-web.service',
      'daemon-reload',
      'restart deploy-web.service',
    ]);
    expect(world.events).toContainEqual(
      expect.objectContaining({
        type: 'service.restart-in-place',
        service: 'web',
        message: expect.stringContaining(`envFile ${envFile} assigns PORT`),
      }),
    );
    // Without PORT in the file, the next update is blue/green again.
    world.checks.envFiles.set(envFile, ['TOKEN']);
    world.probe.set(18000, { ok: true, status: 200 });
    world.systemd.calls.length = 0;
    await world.publish(await world.manifestOf([withEnvFile('3.0')]));
    expect((await world.tick()).results.map((r) => r.outcome)).toEqual(['updated']);
    expect(world.systemdChanges()).toContain('restart deploy-web@next.service');
  });
});
