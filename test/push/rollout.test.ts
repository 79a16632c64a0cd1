import { describe, expect, it } from 'vitest';
import { isDeployError } from '../../src/errors.js';
import { type Manifest, parseManifest } from '../../src/manifest/index.js';
import { rollbackManifest } from '../../src/push/history.js';
import { writeServiceChange } from '../../src/push/manifest-change.js';
import { renderRolloutResult, runRollout } from '../../src/push/rollout.js';
import { openPushedManifest } from '../../src/push/signing.js';
import { createFakeFleet, current, type FakeFleet, pushCtx, webSpec } from './fake-fleet.js';

const spec = webSpec(['a', 'b', 'c']);

/** Every manifest the bucket held, oldest first (archives, then the current one). */
async function writes(fleet: FakeFleet): Promise<Manifest[]> {
  const archives = [...(await fleet.ctx.manifests.listArchives())].reverse();
  const all: Manifest[] = [];
  for (const a of archives) {
    const { text } = await fleet.ctx.manifests.readArchive(a.id);
    const parsed = parseManifest(openPushedManifest(text, a.id, 'unverified').payload);
    if (parsed.ok) all.push(parsed.manifest);
  }
  return [...all, await current(fleet)];
}

/** A fleet running web-1 everywhere, deployed the plain way. */
async function fleetOnV1(hosts = ['a', 'b', 'c']) {
  const fleet = await createFakeFleet(hosts);
  const v1 = await fleet.build('web-1');
  await writeServiceChange(pushCtx(fleet), { spec: webSpec(hosts), storePath: v1, revision: 'r1' }, fleet);
  await fleet.tick();
  expect(Object.values(fleet.running('web'))).toEqual(hosts.map(() => v1));
  return { fleet, v1 };
}

const quick = { minHealthyTimeMs: 5000, healthyDeadlineMs: 60_000 };

describe('runRollout: a staged rollout over a fleet of fake hosts', () => {
  it('a good version goes through the canary, then waves of --max-parallel, each healthy for --min-healthy-time', async () => {
    const { fleet } = await fleetOnV1();
    const v2 = await fleet.build('web-2');
    const result = await runRollout(fleet.ctx, {
      change: { spec, storePath: v2, revision: 'r2' },
      request: { canary: 1, maxParallel: 1, ...quick },
      signing: fleet.signing,
      pollMs: 1000,
    });
    expect(result.outcome).toBe('done');
    expect(fleet.running('web')).toEqual({ a: v2, b: v2, c: v2 });
    // One write per wave, then done: the hosts switched grew a | a, b | a, b, c.
    const rollouts = (await writes(fleet))
      .filter((m) => m.rollout)
      .map((m) => [m.rollout?.state, m.rollout?.switched]);
    expect(rollouts).toEqual([
      ['in-progress', ['a']],
      ['in-progress', ['a', 'b']],
      ['in-progress', ['a', 'b', 'c']],
      ['done', ['a', 'b', 'c']],
    ]);
    const now = await current(fleet);
    expect(now.services).toHaveLength(1);
    expect(now.services[0]).toMatchObject({ hosts: ['a', 'b', 'c'], revision: 'r2' });
    expect(now.rollout).toMatchObject({
      state: 'done',
      waves: [['a'], ['b'], ['c']],
      rollbackPoint: expect.any(Object),
    });
    expect(result.hosts.map((h) => [h.host, h.wave, h.version, h.state])).toEqual([
      ['a', 1, 'new', 'healthy'],
      ['b', 2, 'new', 'healthy'],
      ['c', 3, 'new', 'healthy'],
    ]);
    const waves = fleet.events.filter((e) => e.type === 'rollout.wave').map((e) => e.message);
    expect(waves).toEqual([
      expect.stringMatching(/^wave 1 of 3: a → web-2$/),
      expect.stringMatching(/^wave 2 of 3: b → web-2 \(a healthy for 5s\)$/),
      expect.stringMatching(/^wave 3 of 3: c → web-2 \(b healthy for 5s\)$/),
    ]);
    expect(renderRolloutResult(result)).toMatch(
      /rollout of web: 3 of 3 hosts on web-2 \(r2\), done[\s\S]*HOST +WAVE +VERSION +STATE/,
    );
  });

  it('a broken version with --canary 1 is tried by one host only, halted and reverted', async () => {
    const { fleet, v1 } = await fleetOnV1();
    const broken = await fleet.build('web-2');
    fleet.crash(broken);
    const result = await runRollout(fleet.ctx, {
      change: { spec, storePath: broken },
      request: { canary: 1, ...quick },
      signing: fleet.signing,
      pollMs: 1000,
    });
    expect(result.outcome).toBe('reverted');
    expect(result.reason).toMatch(/^halted: a: tried web-2 and rolled back/);
    expect(fleet.fetched(broken)).toEqual(['a']);
    expect(fleet.running('web')).toEqual({ a: v1, b: v1, c: v1 });
    const now = await current(fleet);
    expect(now.services.map((s) => [s.artifact.storePath, s.hosts])).toEqual([[v1, ['a', 'b', 'c']]]);
    expect(now.rollout).toMatchObject({
      state: 'reverted',
      switched: ['a'],
      message: expect.stringMatching(/^halted: a: tried/),
    });
    expect(result.hosts.map((h) => [h.host, h.version, h.state])).toEqual([
      ['a', 'previous', 'reverted'],
      ['b', 'previous', 'not switched'],
      ['c', 'previous', 'not switched'],
    ]);
    expect(fleet.events.map((e) => e.type)).toEqual(
      expect.arrayContaining(['rollout.revert', 'rollout.reverted']),
    );
  });

  it('a failure in a later wave reverts every host switched so far', async () => {
    const { fleet, v1 } = await fleetOnV1();
    const v2 = await fleet.build('web-2');
    fleet.crash(v2, ['c']);
    const result = await runRollout(fleet.ctx, {
      change: { spec, storePath: v2 },
      request: { canary: 1, maxParallel: 1, ...quick },
      signing: fleet.signing,
      pollMs: 1000,
    });
    expect(result.outcome).toBe('reverted');
    expect(result.reason).toMatch(/c: tried web-2/);
    expect(fleet.running('web')).toEqual({ a: v1, b: v1, c: v1 });
    expect(result.hosts.map((h) => [h.host, h.state])).toEqual([
      ['a', 'reverted'],
      ['b', 'reverted'],
      ['c', 'reverted'],
    ]);
  });

  it('a host that never reports healthy halts the rollout at --healthy-deadline', async () => {
    const { fleet, v1 } = await fleetOnV1();
    const v2 = await fleet.build('web-2');
    fleet.down.add('a');
    const result = await runRollout(fleet.ctx, {
      change: { spec, storePath: v2 },
      request: { canary: 1, ...quick },
      signing: fleet.signing,
      pollMs: 1000,
    });
    expect(result.outcome).toBe('reverted');
    expect(result.reason).toMatch(
      /no healthy report within 1m: a: runs web-1 \(healthy\), waiting for web-2/,
    );
    expect(fleet.running('web')).toEqual({ a: v1, b: v1, c: v1 });
    // It never left web-1: put back, it is where it should be.
    expect(result.hosts[0]).toMatchObject({
      host: 'a',
      state: 'reverted',
      message: expect.stringMatching(/^pending: .*; then put back: web web-1 healthy$/),
    });
  });

  it('--no-auto-revert halts and leaves the switched hosts as they are; running it again halts again; push rollback ends it', async () => {
    const { fleet, v1 } = await fleetOnV1();
    const broken = await fleet.build('web-2');
    fleet.crash(broken);
    const options = {
      change: { spec, storePath: broken },
      request: { canary: 1, autoRevert: false, ...quick },
      signing: fleet.signing,
      pollMs: 1000,
    };
    const result = await runRollout(fleet.ctx, options);
    expect(result.outcome).toBe('halted');
    let now = await current(fleet);
    expect(now.rollout).toMatchObject({ state: 'halted', switched: ['a'] });
    expect(now.services.map((s) => s.hosts)).toEqual([['a'], ['b', 'c']]);
    const again = await runRollout(fleet.ctx, { ...options, request: {} });
    expect(again).toMatchObject({ outcome: 'halted', resumed: true });
    const rollback = await rollbackManifest(pushCtx(fleet), {}, fleet.signing);
    now = await current(fleet);
    expect(now.services.map((s) => [s.artifact.storePath, s.hosts])).toEqual([[v1, ['a', 'b', 'c']]]);
    expect(now.rollout).toMatchObject({
      state: 'rolled-back',
      message: `ended by push rollback to ${rollback.archive.id}`,
    });
    expect(rollback.endedRollout?.state).toBe('halted');
  });

  it('interrupted (push killed), the manifest is consistent and in progress; running it again resumes from there', async () => {
    const { fleet } = await fleetOnV1();
    const v2 = await fleet.build('web-2');
    const options = {
      change: { spec, storePath: v2, revision: 'r2' },
      request: { canary: 1, maxParallel: 1, ...quick },
      signing: fleet.signing,
      pollMs: 1000,
    };
    fleet.beforeTicks = (round) => {
      // The laptop closes once the second wave is written.
      if (round === 9) throw new Error('killed');
    };
    await expect(runRollout(fleet.ctx, options)).rejects.toThrow('killed');
    const left = await current(fleet);
    expect(left.rollout).toMatchObject({ state: 'in-progress', switched: ['a', 'b'] });
    expect(left.services.map((s) => [s.artifact.storePath, s.hosts])).toEqual([
      [v2, ['a', 'b']],
      [expect.stringContaining('web-1'), ['c']],
    ]);
    fleet.beforeTicks = undefined;
    // The revision is the recorded one, whatever the checkout says now.
    const resumed = await runRollout(fleet.ctx, {
      ...options,
      change: { ...options.change, revision: 'r3' },
      request: {},
    });
    expect(resumed).toMatchObject({ outcome: 'done', resumed: true });
    expect(fleet.running('web')).toEqual({ a: v2, b: v2, c: v2 });
    expect((await current(fleet)).services[0]?.revision).toBe('r2');
    expect(fleet.events.some((e) => e.type === 'rollout.resume')).toBe(true);
  });

  it('resuming keeps the revision recorded at the start, also when there was none', async () => {
    const { fleet } = await fleetOnV1();
    const v2 = await fleet.build('web-2');
    fleet.beforeTicks = (round) => {
      if (round === 1) throw new Error('killed');
    };
    const options = { request: { canary: 1, ...quick }, signing: fleet.signing, pollMs: 1000 };
    await expect(runRollout(fleet.ctx, { ...options, change: { spec, storePath: v2 } })).rejects.toThrow(
      'killed',
    );
    fleet.beforeTicks = undefined;
    const resumed = await runRollout(fleet.ctx, {
      ...options,
      request: {},
      change: { spec, storePath: v2, revision: 'r9' },
    });
    expect(resumed).toMatchObject({ outcome: 'done', resumed: true });
    expect((await current(fleet)).services[0]?.revision).toBeUndefined();
  });

  it('a push of another service during a rollout lands, and the rollout goes on', async () => {
    const { fleet } = await fleetOnV1();
    const v2 = await fleet.build('web-2');
    const api = await fleet.build('api-1');
    fleet.beforeTicks = async (round) => {
      if (round === 2)
        await writeServiceChange(
          pushCtx(fleet),
          { spec: { name: 'api', hosts: ['b'], exec: { command: 'api' } }, storePath: api },
          fleet,
        );
    };
    const result = await runRollout(fleet.ctx, {
      change: { spec, storePath: v2 },
      request: { canary: 1, ...quick },
      signing: fleet.signing,
      pollMs: 1000,
    });
    expect(result.outcome).toBe('done');
    const now = await current(fleet);
    expect(now.services.map((s) => s.name).sort()).toEqual(['api', 'web']);
    expect(fleet.running('api').b).toBe(api);
    // api's write kept the rollout record it found.
    expect(
      (await writes(fleet)).filter((m) => m.services.some((s) => s.name === 'api')).every((m) => m.rollout),
    ).toBe(true);
  });

  it('a push of another service landing between the read and the write of a wave: the wave is re-applied on top, both land', async () => {
    const { fleet } = await fleetOnV1();
    const v2 = await fleet.build('web-2');
    const api = await fleet.build('api-1');
    let puts = 0;
    fleet.manifests.objects.beforeRequest = async ({ method, key }) => {
      // The second wave's write: someone else's write gets in first.
      if (method === 'PUT' && key === 'manifest.json' && ++puts === 2) {
        fleet.manifests.objects.beforeRequest = undefined;
        await writeServiceChange(
          pushCtx(fleet),
          { spec: { name: 'api', hosts: ['c'], exec: { command: 'api' } }, storePath: api },
          fleet,
        );
      }
    };
    const result = await runRollout(fleet.ctx, {
      change: { spec, storePath: v2 },
      request: { canary: 1, ...quick },
      signing: fleet.signing,
      pollMs: 1000,
    });
    expect(result.outcome).toBe('done');
    expect(fleet.events.filter((e) => e.type === 'push.conflict')).toHaveLength(1);
    expect((await current(fleet)).services.map((s) => [s.name, s.hosts])).toEqual([
      ['web', ['a', 'b', 'c']],
      ['api', ['c']],
    ]);
    expect(fleet.running('web')).toEqual({ a: v2, b: v2, c: v2 });
    expect(fleet.running('api').c).toBe(api);
  });

  it('refuses what would break an open rollout, and writes nothing', async () => {
    const { fleet } = await fleetOnV1();
    const v2 = await fleet.build('web-2');
    const v3 = await fleet.build('web-3');
    const broken = v2;
    fleet.crash(broken);
    await runRollout(fleet.ctx, {
      change: { spec, storePath: broken },
      request: { canary: 1, autoRevert: false, ...quick },
      signing: fleet.signing,
      pollMs: 1000,
    });
    const before = await fleet.ctx.manifests.read();
    const attempts = [
      // Another version of web, as a rollout or a plain deploy.
      runRollout(fleet.ctx, {
        change: { spec, storePath: v3 },
        request: { canary: 1 },
        signing: fleet.signing,
      }),
      writeServiceChange(pushCtx(fleet), { spec, storePath: v3 }, fleet),
      // The same version with other waves.
      runRollout(fleet.ctx, {
        change: { spec, storePath: broken },
        request: { canary: 2 },
        signing: fleet.signing,
      }),
      // The same version on other hosts.
      runRollout(fleet.ctx, {
        change: { spec: webSpec(['a', 'b']), storePath: broken },
        request: {},
        signing: fleet.signing,
      }),
    ];
    const messages = [];
    for (const attempt of attempts) {
      const error = await attempt.then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(isDeployError(error, 'ROLLOUT_CONFLICT'), String(error)).toBe(true);
      messages.push((error as Error).message);
    }
    expect(messages[0]).toMatch(
      /rollout of web: 1 of 3 hosts on web-2, halted .*this push has .*web-3: end the open rollout first/,
    );
    expect(messages[1]).toMatch(
      /a rollout of web to .*web-2 is halted \(1 of 3 hosts switched\): push deploy web --store-path .* resumes it, push rollback ends it; nothing was written/,
    );
    expect(messages[2]).toMatch(/its waves are fixed: resume it without --canary/);
    expect(messages[3]).toMatch(/the spec's hosts \(a, b\) are not the rollout's \(a, b, c\)/);
    expect(await fleet.ctx.manifests.read()).toEqual(before);
  });

  it('a rollout of a version every host already runs writes nothing', async () => {
    const { fleet, v1 } = await fleetOnV1();
    const before = await fleet.ctx.manifests.read();
    const result = await runRollout(fleet.ctx, {
      change: { spec, storePath: v1, revision: 'r1' },
      request: { canary: 1 },
      signing: fleet.signing,
    });
    expect(result.outcome).toBe('unchanged');
    expect(await fleet.ctx.manifests.read()).toEqual(before);
  });

  it('a new service rolls out host by host; reverted, it is gone again', async () => {
    const fleet = await createFakeFleet();
    const v1 = await fleet.build('web-1');
    fleet.crash(v1, ['b']);
    const result = await runRollout(fleet.ctx, {
      change: { spec, storePath: v1 },
      request: { canary: 1, ...quick },
      signing: fleet.signing,
      pollMs: 1000,
    });
    expect(result.outcome).toBe('reverted');
    expect(fleet.running('web')).toEqual({ a: undefined, b: undefined, c: undefined });
    expect((await current(fleet)).services).toEqual([]);
  });
});

describe('runRollout on a manifest that was put back', () => {
  it('refuses to start on it (MANIFEST_STALE), writing nothing', async () => {
    const { fleet } = await fleetOnV1();
    const first = await fleet.manifests.read();
    if (first.status !== 'found') throw new Error('no manifest');
    await fleet.ctx.clock.sleep(60_000);
    await writeServiceChange(
      pushCtx(fleet),
      { spec, storePath: await fleet.build('web-2'), revision: 'r2' },
      fleet,
    );
    // Whoever can write the bucket puts the first manifest (validly signed, web-1) back: the newest archive's
    // manifest, stored again after it was archived (a few ms later on the memory store's real clock).
    await new Promise((r) => setTimeout(r, 5));
    await fleet.manifests.objects.put('manifest.json', first.text);
    const before = (await fleet.manifests.listArchives()).length;
    const v3 = await fleet.build('web-3');
    const error = await runRollout(fleet.ctx, {
      change: { spec, storePath: v3, revision: 'r3' },
      request: { canary: 1, maxParallel: 1, ...quick },
      signing: fleet.signing,
      pollMs: 1000,
    }).catch((e: unknown) => e);
    expect(isDeployError(error, 'MANIFEST_STALE'), String(error)).toBe(true);
    const read = await fleet.manifests.read();
    expect(read.status === 'found' && read.text).toBe(first.text);
    expect(await fleet.manifests.listArchives()).toHaveLength(before);
  });
});
