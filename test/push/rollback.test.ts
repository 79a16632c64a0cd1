import { describe, expect, it } from 'vitest';
import { isDeployError } from '../../src/errors.js';
import { type Manifest, parseManifest } from '../../src/manifest/index.js';
import { readHistory, renderHistory, rollbackManifest } from '../../src/push/history.js';
import { writeServiceChange } from '../../src/push/manifest-change.js';
import { runRollout } from '../../src/push/rollout.js';
import { openPushedManifest } from '../../src/push/signing.js';
import { createFakeFleet, current, type FakeFleet, pushCtx, webSpec } from './fake-fleet.js';

const spec = webSpec(['a', 'b', 'c']);
const apiSpec = { name: 'api', hosts: ['b'], exec: { command: 'api' } };
const quick = { minHealthyTimeMs: 5000, healthyDeadlineMs: 60_000 };

const versions = (m: Manifest) =>
  m.services.map((s) => `${s.name}@${s.artifact.storePath.slice(44)}:${s.hosts.join(',')}`);

/** web-1 everywhere; then a rollout of web-2 (canary a, then b, then c); `interrupt` stops it after a round. */
async function rolledOut(options: { interruptAt?: number; apiDuring?: number } = {}) {
  const fleet = await createFakeFleet();
  const ctx = pushCtx(fleet);
  const v1 = await fleet.build('web-1');
  const v2 = await fleet.build('web-2');
  const api = await fleet.build('api-1');
  await writeServiceChange(ctx, { spec, storePath: v1 }, fleet);
  await fleet.tick();
  fleet.beforeTicks = async (round) => {
    if (round === options.apiDuring) await writeServiceChange(ctx, { spec: apiSpec, storePath: api }, fleet);
    if (round === options.interruptAt) throw new Error('killed');
  };
  const run = runRollout(fleet.ctx, {
    change: { spec, storePath: v2 },
    request: { canary: 1, maxParallel: 1, ...quick },
    signing: fleet.signing,
    pollMs: 1000,
  });
  if (options.interruptAt === undefined) expect((await run).outcome).toBe('done');
  else await expect(run).rejects.toThrow('killed');
  fleet.beforeTicks = undefined;
  return { fleet, ctx, v1, v2, api };
}

describe('push rollback around a staged rollout', () => {
  it('during a rollout, returns to the manifest before it (its rollback point), not to a wave, and ends it', async () => {
    const { fleet, ctx } = await rolledOut({ interruptAt: 9 });
    expect((await current(fleet)).rollout?.switched).toEqual(['a', 'b']);
    const result = await rollbackManifest(ctx, {}, fleet.signing);
    const now = await current(fleet);
    expect(versions(now)).toEqual(['web@web-1:a,b,c']);
    expect(now.rollout).toMatchObject({ state: 'rolled-back', switched: ['a', 'b'] });
    expect(result.endedRollout?.state).toBe('in-progress');
    expect(result.restored.rollout).toBeUndefined();
    await fleet.tick();
    expect(Object.values(fleet.running('web')).map((p) => p?.slice(44))).toEqual(['web-1', 'web-1', 'web-1']);
  });

  it('after a rollout, returns to its rollback point too (--steps counts rollback points)', async () => {
    const { fleet, ctx } = await rolledOut();
    await rollbackManifest(ctx, { steps: 1 }, fleet.signing);
    const now = await current(fleet);
    expect(versions(now)).toEqual(['web@web-1:a,b,c']);
    expect(now.rollout?.state).toBe('rolled-back');
  });

  it('--to a wave is refused, naming the rollback point; nothing is written', async () => {
    const { fleet, ctx } = await rolledOut();
    const archives = await fleet.ctx.manifests.listArchives();
    // Newest first: the last wave, the one before, the canary, then the rollback point.
    const wave = archives[0]?.id as string;
    const before = await fleet.ctx.manifests.read();
    const error = await rollbackManifest(ctx, { to: wave }, fleet.signing).catch((e: unknown) => e);
    expect(isDeployError(error, 'USAGE')).toBe(true);
    expect((error as Error).message).toMatch(
      new RegExp(
        `^--to ${wave}: that manifest is a wave of the rollout of web \\(in-progress\\), not a rollback point; its rollback point is the manifest of generation `,
      ),
    );
    expect(await fleet.ctx.manifests.read()).toEqual(before);
  });

  it('a full rollback undoes a push of another service made during the rollout; --service restores only its service', async () => {
    const full = await rolledOut({ apiDuring: 2 });
    expect(versions(await current(full.fleet))).toEqual(['web@web-2:a,b,c', 'api@api-1:b']);
    await rollbackManifest(full.ctx, {}, full.fleet.signing);
    expect(versions(await current(full.fleet))).toEqual(['web@web-1:a,b,c']);

    const one = await rolledOut({ apiDuring: 2 });
    const result = await rollbackManifest(one.ctx, { service: 'web' }, one.fleet.signing);
    const now = await current(one.fleet);
    expect(versions(now)).toEqual(['web@web-1:a,b,c', 'api@api-1:b']);
    expect(now).toMatchObject({
      rollbackOf: result.archive.id,
      rollbackService: 'web',
      rollout: { state: 'rolled-back' },
    });
  });

  it('--service leaves a later push of another service alone, and a rollout of another service open', async () => {
    const { fleet, ctx, api } = await rolledOut({ interruptAt: 4 });
    const api2 = await fleet.build('api-2');
    await writeServiceChange(ctx, { spec: apiSpec, storePath: api }, fleet);
    await writeServiceChange(ctx, { spec: apiSpec, storePath: api2 }, fleet);
    expect(versions(await current(fleet))).toEqual(['web@web-2:a', 'web@web-1:b,c', 'api@api-2:b']);
    await rollbackManifest(ctx, { service: 'api' }, fleet.signing);
    const now = await current(fleet);
    expect(versions(now)).toEqual(['web@web-2:a', 'web@web-1:b,c', 'api@api-1:b']);
    expect(now.rollout).toMatchObject({ service: 'web', state: 'in-progress' });
    // Its version before that: none, so api goes.
    await rollbackManifest(ctx, { service: 'api', steps: 2 }, fleet.signing);
    expect(versions(await current(fleet))).toEqual(['web@web-2:a', 'web@web-1:b,c']);
    const again = await rollbackManifest(
      ctx,
      { service: 'web', to: (await rollbackPointId(fleet)) as string },
      fleet.signing,
    );
    expect(again.endedRollout?.service).toBe('web');
  });

  it('--service with nothing to change says so and writes nothing', async () => {
    const { fleet, ctx } = await rolledOut();
    const point = (await rollbackPointId(fleet)) as string;
    await rollbackManifest(ctx, { service: 'web', to: point }, fleet.signing);
    const before = await fleet.ctx.manifests.read();
    const same = await rollbackManifest(ctx, { service: 'web', to: point }, fleet.signing).catch(
      (e: unknown) => e,
    );
    expect(isDeployError(same, 'ROLLBACK_UNCHANGED')).toBe(true);
    expect((same as Error).message).toMatch(
      /nothing to roll back: web is the same in \S+ as in the current manifest/,
    );
    const none = await rollbackManifest(ctx, { service: 'nothing' }, fleet.signing).catch((e: unknown) => e);
    expect((none as Error).message).toMatch(/--steps 1: only 0 earlier version\(s\) of nothing are archived/);
    expect(await fleet.ctx.manifests.read()).toEqual(before);
  });

  it('history shows the rollout step by step, its waves as no rollback points, and the rollback', async () => {
    const { fleet, ctx } = await rolledOut();
    await rollbackManifest(ctx, { service: 'web' }, fleet.signing);
    const entries = await readHistory(ctx);
    const text = renderHistory(entries);
    expect(text).toMatch(
      /current +\S+ \(rollback of web to \S+\) \(rollout of web → web-2: 0 of 3 hosts, rolled back\) +-/,
    );
    expect(text).toMatch(/\(rollout of web → web-2: 3 of 3 hosts, done\)/);
    expect(text).toMatch(
      /\(rollout of web → web-2: 2 of 3 hosts, in progress; a wave, not a rollback point\)/,
    );
    expect(text).toMatch(
      /\(rollout of web → web-2: 1 of 3 hosts, in progress; a wave, not a rollback point\) +~web/,
    );
    expect(entries.filter((e) => e.wave)).toHaveLength(3);
  });
});

/** The archive id of the manifest before the rollout (the oldest archive that is no wave, after the first deploy). */
async function rollbackPointId(fleet: FakeFleet): Promise<string | undefined> {
  const point = (await current(fleet)).rollout?.rollbackPoint?.generation;
  for (const a of await fleet.ctx.manifests.listArchives()) {
    const parsed = parseManifest(
      openPushedManifest((await fleet.ctx.manifests.readArchive(a.id)).text, a.id, 'unverified').payload,
    );
    if (parsed.ok && parsed.manifest.generation === point) return a.id;
  }
  return undefined;
}
