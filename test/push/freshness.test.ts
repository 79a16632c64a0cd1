import { describe, expect, it } from 'vitest';
import { isDeployError } from '../../src/errors.js';
import { signManifest } from '../../src/manifest/index.js';
import type { PushContext } from '../../src/push/context.js';
import { type ArchiveFloor, checkNotPutBack, readArchiveFloor } from '../../src/push/freshness.js';
import { renderManifestText, writeServiceChange } from '../../src/push/manifest-change.js';
import { parseServiceSpec } from '../../src/push/spec.js';
import { createManifestStore, type ManifestStore } from '../../src/s3/index.js';
import {
  createFakeClock,
  createFakeNix,
  createFakeShell,
  createMemoryObjectStore,
} from '../../src/testing/index.js';
import { makeManifest, makeService, storePath } from '../builders.js';
import { makeKeyPair } from '../support/local-cache.js';

const KEY = makeKeyPair('push-1');
const OTHER = makeKeyPair('intruder-1');
const signing = { secretKey: KEY.secretKey, trustedPublicKeys: [], allowUnsigned: false };
const SECRETS = '/var/lib/biz-secrets';

const change = (name: string, version: string) => ({
  spec: parseServiceSpec(
    JSON.stringify({ name, hosts: ['biz'], exec: { command: name } }),
    `deploy/${name}.json`,
    { secretsDir: SECRETS },
  ),
  storePath: storePath(`${name}-${version}`),
});

function world() {
  const objects = createMemoryObjectStore();
  const manifests = createManifestStore(objects);
  const clock = createFakeClock();
  const ctx: PushContext = {
    manifests,
    cache: undefined,
    nix: createFakeNix(),
    shell: createFakeShell(),
    clock,
    onEvent: () => {},
    secretsDir: SECRETS,
  };
  return { ctx, manifests, clock, objects };
}

async function snapshot(manifests: ManifestStore) {
  const current = await manifests.read();
  return {
    current: current.status === 'found' ? current.text : undefined,
    archives: await manifests.listArchives(),
  };
}

describe('push does not build on a manifest that was put back', () => {
  it('refuses an older signed manifest written back over a newer one (MANIFEST_STALE), writing nothing', async () => {
    const { ctx, manifests, clock, objects } = world();
    await writeServiceChange(ctx, change('web', 'v1'), { signing });
    const first = await manifests.read();
    clock.advance(60_000);
    await writeServiceChange(ctx, change('web', 'v2'), { signing });
    clock.advance(60_000);
    await writeServiceChange(ctx, change('api', 'v1'), { signing });
    // Whoever can write the bucket puts the first manifest (validly signed, web v1) back.
    if (first.status !== 'found') throw new Error('no manifest');
    await objects.put('manifest.json', first.text);
    const before = await snapshot(manifests);
    clock.advance(60_000);
    const error = await writeServiceChange(ctx, change('worker', 'v1'), { signing }).catch((e: unknown) => e);
    expect(isDeployError(error, 'MANIFEST_STALE')).toBe(true);
    expect((error as Error).message).toMatch(
      /was put back \(stale or replayed\).*older than .*nothing was written/,
    );
    expect(await snapshot(manifests)).toEqual(before);
  });

  it('refuses the manifest just replaced, put back: the newest archive’s own manifest, stored after it was archived', async () => {
    const { ctx, manifests, clock, objects } = world();
    await writeServiceChange(ctx, change('web', 'v1'), { signing });
    const first = await manifests.read();
    clock.advance(60_000);
    await writeServiceChange(ctx, change('web', 'v2'), { signing }); // archives v1
    if (first.status !== 'found') throw new Error('no manifest');
    await new Promise((r) => setTimeout(r, 5)); // the memory store stamps Last-Modified with the real clock
    await objects.put('manifest.json', first.text);
    const before = await snapshot(manifests);
    const error = await writeServiceChange(ctx, change('api', 'v1'), { signing }).catch((e: unknown) => e);
    expect(isDeployError(error, 'MANIFEST_STALE')).toBe(true);
    expect((error as Error).message).toMatch(/written to the bucket again after it was archived/);
    expect(await snapshot(manifests)).toEqual(before);
  });

  it('builds on the current manifest after an interrupted push archived it (the same manifest as the newest archive)', async () => {
    const { ctx, manifests, clock } = world();
    await writeServiceChange(ctx, change('web', 'v1'), { signing });
    clock.advance(60_000);
    await writeServiceChange(ctx, change('web', 'v2'), { signing });
    const current = await manifests.read();
    if (current.status !== 'found') throw new Error('no manifest');
    clock.advance(60_000);
    await manifests.archive(current.text, { now: new Date(clock.now()) }); // the push died here
    clock.advance(60_000);
    const written = await writeServiceChange(ctx, change('api', 'v1'), { signing });
    expect(written.changed).toBe(true);
    expect(written.manifest.services.map((s) => s.name).sort()).toEqual(['api', 'web']);
  });

  it('ignores archives that do not verify: an unsigned or foreign-signed archive from the future cannot block pushes', async () => {
    const { ctx, manifests, clock } = world();
    await writeServiceChange(ctx, change('web', 'v1'), { signing });
    const future = makeManifest([makeService({ name: 'web' })], { generation: '2099-01-01T00:00:00Z' });
    const text = renderManifestText(future);
    clock.advance(60_000);
    await manifests.archive(text, { now: new Date(clock.now()) });
    clock.advance(1_000);
    await manifests.archive(signManifest(text, OTHER.secretKey), { now: new Date(clock.now()) });
    clock.advance(60_000);
    const written = await writeServiceChange(ctx, change('api', 'v1'), { signing });
    expect(written.changed).toBe(true);
  });

  it('reads the floor from the newest archive that verifies', async () => {
    const { ctx, manifests, clock } = world();
    expect(await readArchiveFloor(ctx, signing)).toBeUndefined();
    await writeServiceChange(ctx, change('web', 'v1'), { signing });
    const first = await manifests.read();
    clock.advance(60_000);
    await writeServiceChange(ctx, change('web', 'v2'), { signing });
    const floor = await readArchiveFloor(ctx, signing);
    if (first.status !== 'found') throw new Error('no manifest');
    const generation = (JSON.parse(JSON.parse(first.text).payload) as { generation: string }).generation;
    expect(floor?.generation).toBe(generation);
  });
});

describe('checkNotPutBack', () => {
  const floor: ArchiveFloor = {
    id: '20250115T120000.000Z',
    generation: '2025-01-15T12:00:00Z',
    digest: 'sha256:0000',
  };
  const payload = 'payload';
  it.each([
    { name: 'no archive', f: undefined, generation: '2020-01-01T00:00:00Z', refused: false },
    { name: 'later than the newest archive', f: floor, generation: '2025-01-15T12:00:01Z', refused: false },
    { name: 'older than the newest archive', f: floor, generation: '2025-01-15T11:59:59Z', refused: true },
    {
      name: 'the generation of the newest archive with other content',
      f: floor,
      generation: '2025-01-15T12:00:00Z',
      refused: true,
    },
  ])('$name → refused: $refused', ({ f, generation, refused }) => {
    const run = () => checkNotPutBack(f, { generation, payload }, 'memory://bucket/');
    if (refused) expect(run).toThrow(/put back \(stale or replayed\)/);
    else expect(run).not.toThrow();
  });
  it('the same manifest as the newest archive is fine', () => {
    const same = {
      ...floor,
      digest: 'sha256:239f59ed55e737c77147cf55ad0c1b030b6d7ee748a7426952f9b852d5a935e5',
    };
    expect(() =>
      checkNotPutBack(same, { generation: floor.generation, payload }, 'memory://bucket/'),
    ).not.toThrow();
  });
});
