/**
 * A tick against a bucket writer without the signing key and against services that never answer, with fakes:
 * nothing of an untrusted path is switched, and a health gate that would wait forever ends at the deadline.
 */
import { describe, expect, it } from 'vitest';
import { serviceLayout } from '../../src/nix/index.js';
import { makeManifest, makeService, storePath } from '../builders.js';
import { createWorld, http, type World } from './world.js';

const profileOf = (world: World, name: string) =>
  serviceLayout(name, {
    profilesDir: world.ctx.settings.profilesDir,
    gcrootsDir: world.ctx.settings.gcrootsDir,
  }).profile;

/** A manifest whose `web` runs `path` (a program of the host's own, say) with arguments of the attacker's. */
const hijack = (path: string, generation: string) =>
  makeManifest(
    [
      makeService({
        name: 'web',
        artifact: { type: 'nix-closure', storePath: path },
        exec: { command: 'bash', args: ['-c', 'echo owned > /root/owned'] },
      }),
    ],
    { generation },
  );

describe('closure trust in a tick (fakes)', () => {
  async function deployedWorld() {
    const world = await createWorld();
    await world.publish(await world.manifestOf([{ name: 'web', version: '1.0' }]));
    expect((await world.tick()).outcome).toBe('applied');
    // The host's own bash: in its store, unsigned, as everything the host built or got from elsewhere.
    const bash = storePath('bash-5.2');
    world.nix.addPath(bash);
    world.dev.addPath(bash);
    world.systemd.calls.length = 0;
    return { world, bash, before: await world.nix.listGenerations(profileOf(world, 'web')) };
  }

  async function expectNothingSwitched(world: World, before: unknown) {
    expect(world.systemdChanges()).toEqual([]);
    expect(await world.nix.listGenerations(profileOf(world, 'web'))).toEqual(before);
    expect(world.state.current?.services.web?.storePath).toBe(storePath('web-1.0'));
    expect(world.systemd.files.get('deploy-web.service')).toContain(storePath('web-1.0'));
  }

  it('refuses a path the host already has when the bucket offers an unsigned narinfo for it', async () => {
    const { world, bash, before } = await deployedWorld();
    await world.dev.exportToCache([bash], '/cache'); // what anyone with write access to the bucket can upload
    await world.publish(hijack(bash, '2025-01-15T12:01:00Z'));
    const report = await world.tick();
    expect(report.outcome).toBe('failed');
    expect(report.message).toBe(
      `pull failed, nothing changed: signature check failed: ${bash} has no valid signature by a trusted key (test-1), neither in this store nor in file:///cache`,
    );
    await expectNothingSwitched(world, before);
  });

  it('refuses it when the narinfo is signed by a key of the attacker’s own', async () => {
    const { world, bash, before } = await deployedWorld();
    await world.dev.generateKey('test-1', '/evil/sk', '/evil/pk'); // even under the trusted key's name
    await world.dev.sign([bash], '/evil/sk');
    await world.dev.exportToCache([bash], '/cache');
    await world.publish(hijack(bash, '2025-01-15T12:01:00Z'));
    const report = await world.tick();
    expect(report.outcome).toBe('failed');
    expect(report.message).toContain('signature check failed');
    await expectNothingSwitched(world, before);
  });

  it('accepts a path the host has unsigned once the bucket holds a trusted signature of that content', async () => {
    const { world, bash } = await deployedWorld();
    await world.dev.sign([bash], '/keys/sk'); // really pushed: signed by the deploy key
    await world.dev.exportToCache([bash], '/cache');
    await world.publish(hijack(bash, '2025-01-15T12:01:00Z'));
    const report = await world.tick();
    expect(report.outcome).toBe('applied');
    expect(world.state.current?.services.web?.storePath).toBe(bash);
  });

  it('skips the check with --insecure-allow-unsigned, as that setting says', async () => {
    const { world, bash } = await deployedWorld();
    world.ctx.settings.insecureAllowUnsigned = true;
    await world.dev.exportToCache([bash], '/cache');
    await world.publish(hijack(bash, '2025-01-15T12:01:00Z'));
    expect((await world.tick()).outcome).toBe('applied');
  });
});

describe('a health check that never ends (fakes)', () => {
  it('rolls the update back exactly at --deploy-timeout and saves the state', async () => {
    const world = await createWorld();
    world.probe.set(8000, { ok: true, status: 200 });
    await world.publish(
      await world.manifestOf([{ name: 'web', version: '1.0', overrides: http(8000, '/', '/healthz') }]),
    );
    expect((await world.tick()).outcome).toBe('applied');

    // v2 listens on 8001 and trickles its answer: a probe without its own deadline never settles.
    world.probe.hang(8001);
    const at = new Map<string, number>();
    const onEvent = world.ctx.onEvent;
    world.ctx.onEvent = (event) => {
      if (!at.has(event.type)) at.set(event.type, world.clock.now());
      onEvent(event);
    };
    await world.publish(
      await world.manifestOf(
        [{ name: 'web', version: '2.0', overrides: http(8001, '/', '/healthz') }],
        '2025-01-15T12:01:00Z',
      ),
    );
    const report = await world.tick();

    expect(report.outcome).toBe('partial');
    expect(report.results).toEqual([
      expect.objectContaining({
        name: 'web',
        outcome: 'rolled-back',
        reason: 'not healthy within 20s: active, health check did not finish',
      }),
    ]);
    expect((at.get('service.unhealthy') as number) - (at.get('service.restart') as number)).toBe(
      world.ctx.settings.deployTimeoutMs,
    );
    expect(world.state.current?.services.web).toMatchObject({
      storePath: storePath('web-1.0'),
      health: 'healthy',
    });
    expect(world.state.current?.lastTick?.outcome).toBe('partial');
    expect(world.systemd.files.get('deploy-web.service')).toContain(storePath('web-1.0'));
  });
});
