/**
 * Signed manifests in a tick, with fakes: each refusal (signature, envelope, age) changes nothing and is
 * visible in the report, state, status and metrics; replay protection; key rotation; a host that can write
 * nothing but its own status.
 */
import { describe, expect, it } from 'vitest';
import { runTick } from '../../src/deployer/tick.js';
import { DeployError } from '../../src/errors.js';
import { type Manifest, signManifest } from '../../src/manifest/index.js';
import { createManifestStore, type ObjectStore } from '../../src/s3/index.js';
import { createMemoryObjectStore } from '../../src/testing/index.js';
import { storePath } from '../builders.js';
import { createWorld, http, type World } from './world.js';

/** A deployed world (web 1.0 applied), a metrics sink, and what must not change on a refusal. */
async function deployed() {
  const world = await createWorld();
  let metrics = '';
  world.ctx.adapters.writeMetrics = async (text) => {
    metrics = text;
  };
  const v1 = await world.manifestOf([{ name: 'web', version: '1.0', overrides: http(8000) }]);
  await world.publish(v1);
  expect((await world.tick()).outcome).toBe('applied');
  world.systemd.calls.length = 0;
  world.nix.calls.length = 0;
  return { world, v1, metrics: () => metrics, before: world.state.current };
}

/** The next manifest push would write: web 2.0, a later generation. */
const next = (world: World) =>
  world.manifestOf([{ name: 'web', version: '2.0', overrides: http(8000) }], '2025-01-15T13:00:00Z');

const text = (m: Manifest) => `${JSON.stringify(m, null, 2)}\n`;

/** Nothing but the refusal record, its count and the tick's bookkeeping differs from `before`. */
function expectNothingChanged(world: World, before: World['state']['current']) {
  expect(world.systemdChanges()).toEqual([]);
  expect(world.nix.calls.filter((c) => c.method !== 'listGenerations')).toEqual([]);
  const strip = (s: typeof before) => {
    const { rejected: _r, manifestRefusals: _c, lastTick: _t, published: _p, ...rest } = s ?? ({} as never);
    return rest;
  };
  expect(strip(world.state.current)).toEqual(strip(before));
  expect(world.systemd.files.get('deploy-web.service')).toContain(storePath('web-1.0'));
}

describe('a tick refuses a manifest it cannot trust, before anything else (fakes)', () => {
  it.each<[string, (world: World) => Promise<string>, string, RegExp]>([
    [
      'signed, then one byte changed',
      async (w) => signManifest(text(await next(w)), w.secretKey).replace('web-2.0', 'web-2.1'),
      'bad_signature',
      /manifest signature by key "test-1" does not verify: the manifest was changed after it was signed/,
    ],
    [
      'unsigned',
      async (w) => text(await next(w)),
      'unsigned',
      /manifest is not signed: .*--insecure-allow-unsigned-manifest/,
    ],
    [
      'signed by a key the host does not trust',
      async (w) => {
        await w.dev.generateKey('test-2', '/keys/sk2', '/keys/pk2');
        return signManifest(text(await next(w)), w.dev.files.get('/keys/sk2') as string);
      },
      'untrusted_key',
      /manifest signature by key "test-2" is not trusted here \(trusted: "test-1"\)/,
    ],
    [
      'signed by another key of the trusted name',
      async (w) => {
        await w.dev.generateKey('test-1', '/keys/impostor', '/keys/impostor.pub');
        return signManifest(text(await next(w)), w.dev.files.get('/keys/impostor') as string);
      },
      'bad_signature',
      /manifest signature by key "test-1" does not verify/,
    ],
    [
      'a signed manifest reformatted',
      async (w) => `${JSON.stringify(JSON.parse(signManifest(text(await next(w)), w.secretKey)), null, 1)}\n`,
      'envelope_invalid',
      /malformed signed manifest: .*found a difference at character 1/,
    ],
    [
      'validly signed, but older than the one applied (a replay)',
      async (w) =>
        signManifest(
          text(
            await w.manifestOf(
              [{ name: 'web', version: '0.9', overrides: http(8000) }],
              '2025-01-01T00:00:00Z',
            ),
          ),
          w.secretKey,
        ),
      'stale',
      /stale or replayed manifest: generation 2025-01-01T00:00:00Z is older than 2025-01-15T12:00:00Z, the last generation this host applied; nothing changed/,
    ],
    [
      'validly signed, of the generation applied but with other content',
      async (w) =>
        signManifest(
          text(
            await w.manifestOf(
              [{ name: 'web', version: '2.0', overrides: http(8000) }],
              '2025-01-15T12:00:00Z',
            ),
          ),
          w.secretKey,
        ),
      'replayed',
      /stale or replayed manifest: generation 2025-01-15T12:00:00Z is the one this host last applied, but its content differs/,
    ],
  ])(
    '%s: refused with nothing changed, the reason in report, state, status and metrics',
    async (_label, make, reason, message) => {
      const { world, metrics, before } = await deployed();
      const etag = await world.publish(await make(world), { signWith: false });
      const report = await world.tick();

      expect(report.outcome).toBe('invalid-manifest');
      expect(report.message).toMatch(message);
      expect(report.message).toContain(`manifest ${etag} refused`);
      expectNothingChanged(world, before);
      expect(world.state.current?.rejected).toMatchObject({ etag, reason });
      expect(world.events.find((e) => e.type === 'manifest.refused')).toMatchObject({
        level: 'error',
        data: { reason },
      });
      expect((await world.manifests.readStatus('biz'))?.status).toMatchObject({
        generation: '2025-01-15T12:00:00Z',
        lastTick: { outcome: 'invalid-manifest' },
        rejected: { etag, reason },
        services: [{ name: 'web', storePath: storePath('web-1.0') }],
      });
      expect(metrics()).toContain('omni_deployer_manifest_refused{host="biz"} 1');
      expect(metrics()).toContain(`omni_deployer_manifests_refused_total{host="biz",reason="${reason}"} 1`);

      // Not read again until it changes (one 304), still reported, not counted twice.
      const again = await world.tick();
      expect(again.outcome).toBe('invalid-manifest');
      expect(world.manifests.objects.requests.filter((r) => r.key === 'manifest.json').at(-1)).toMatchObject({
        method: 'GET',
        status: 304,
      });
      expect(world.state.current?.manifestRefusals).toEqual({ [reason]: 1 });

      // The next manifest push writes is applied, and the refusal is over.
      await world.publish(
        await world.manifestOf(
          [{ name: 'web', version: '3.0', overrides: http(8000) }],
          '2025-01-15T14:00:00Z',
        ),
      );
      expect((await world.tick()).outcome).toBe('applied');
      expect(world.state.current?.rejected).toBeUndefined();
      expect((await world.manifests.readStatus('biz'))?.status).not.toHaveProperty('rejected');
      expect(metrics()).toContain('omni_deployer_manifest_refused{host="biz"} 0');
      expect(metrics()).toContain(`omni_deployer_manifests_refused_total{host="biz",reason="${reason}"} 1`);
    },
  );

  it('--insecure-allow-unsigned-manifest lets an unsigned manifest through, never a bad or untrusted signature', async () => {
    const { world, before } = await deployed();
    world.ctx.settings.insecureAllowUnsignedManifest = true;
    await world.publish(
      signManifest(text(await next(world)), world.secretKey).replace('web-2.0', 'web-2.1'),
      { signWith: false },
    );
    expect((await world.tick()).message).toContain('does not verify');
    expectNothingChanged(world, before);

    await world.publish(await next(world), { signWith: false });
    const report = await world.tick();
    expect(report.outcome).toBe('applied');
    expect(world.state.current?.services.web?.storePath).toBe(storePath('web-2.0'));
    expect(world.events.find((e) => e.type === 'manifest.unsigned')?.message).toContain(
      'applied only because of --insecure-allow-unsigned-manifest',
    );
  });

  it('a refusal under other trust settings is judged again: a key added to the host takes effect at once', async () => {
    const { world } = await deployed();
    const newKey = await world.dev.generateKey('test-2', '/keys/sk2', '/keys/pk2');
    await world.publish(await next(world), { signWith: world.dev.files.get('/keys/sk2') as string });
    expect((await world.tick()).message).toContain('"test-2" is not trusted here');
    world.ctx.settings.trustedPublicKeys = [world.publicKey, newKey];
    // Closures are still signed by test-1 (the host trusts both now): the manifest alone is new.
    const report = await world.tick();
    expect(report.outcome).toBe('applied');
    expect(world.state.current?.services.web?.storePath).toBe(storePath('web-2.0'));
  });
});

describe('replay protection in a tick (fakes)', () => {
  it('the same manifest read again (uploaded anew) is the current one: nothing refused, nothing done', async () => {
    const { world, v1 } = await deployed();
    await world.publish(v1); // same payload, new ETag
    const report = await world.tick();
    expect(report.outcome).toBe('unchanged');
    expect(world.state.current?.rejected).toBeUndefined();
  });

  it('a host that has never applied anything accepts any validly signed manifest, however old', async () => {
    const world = await createWorld();
    await world.publish(await world.manifestOf([{ name: 'web', version: '1.0' }], '2001-01-01T00:00:00Z'));
    expect((await world.tick()).outcome).toBe('applied');
    expect(world.state.current?.accepted?.generation).toBe('2001-01-01T00:00:00Z');
    expect(world.state.current?.manifest?.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
  });

  it('state written before digests were recorded keeps working: an equal generation is the same manifest', async () => {
    const { world, v1 } = await deployed();
    const old = world.state.current;
    if (!old?.manifest) throw new Error('expected a manifest in state');
    const { accepted: _a, ...legacy } = old;
    await world.state.save({ ...legacy, manifest: { ...old.manifest, digest: undefined } });
    await world.publish({ ...v1, services: v1.services }); // same generation, new ETag
    expect((await world.tick()).outcome).toBe('unchanged');
    await world.publish(await world.manifestOf([{ name: 'web', version: '0.9' }], '2025-01-01T00:00:00Z'));
    expect((await world.tick()).message).toContain('stale or replayed manifest');
  });

  it('a manifest applied only in part still ratchets: the one before it cannot be put back', async () => {
    const { world, v1 } = await deployed();
    // v2 updates web and adds a service whose pre-flight fails: web is updated, v2 never settles.
    const v2 = await world.manifestOf(
      [
        { name: 'web', version: '2.0', overrides: http(8000) },
        { name: 'worker', version: '1.0', overrides: { exec: { command: 'worker', user: 'ghost' } } },
      ],
      '2025-01-15T13:00:00Z',
    );
    await world.publish(v2);
    const partial = await world.tick();
    expect(partial.outcome).toBe('partial');
    expect(world.state.current?.manifest?.generation).toBe('2025-01-15T12:00:00Z');
    expect(world.state.current?.services.web?.storePath).toBe(storePath('web-2.0'));
    world.systemd.calls.length = 0;

    await world.publish(v1); // v1, validly signed, put back by someone who can write the bucket
    const report = await world.tick();
    expect(report.outcome).toBe('invalid-manifest');
    expect(report.message).toContain('is older than 2025-01-15T13:00:00Z');
    expect(world.systemdChanges()).toEqual([]);
    expect(world.state.current?.services.web?.storePath).toBe(storePath('web-2.0'));
  });
});

describe('key rotation end to end (fakes)', () => {
  it('hosts trust old + new, push switches keys, hosts keep converging; then the old key is dropped', async () => {
    const { world } = await deployed();
    const oldKey = world.publicKey;
    // 1. A new key; 2. every host trusts both.
    const newKey = await world.dev.generateKey('test-2', '/keys/sk2', '/keys/pk2');
    const newSecret = world.dev.files.get('/keys/sk2') as string;
    world.ctx.settings.trustedPublicKeys = [oldKey, newKey];
    expect((await world.tick()).outcome).toBe('unchanged'); // the manifest signed by the old key still is

    // 3. push switches: closures and manifests from now on by the new key.
    const web3 = storePath('web-3.0');
    world.dev.addPath(web3);
    await world.dev.sign([web3], '/keys/sk2');
    await world.dev.exportToCache([web3], '/cache');
    const m = await world.manifestOf([{ name: 'web', version: '2.0', overrides: http(8000) }]);
    m.generation = '2025-01-15T13:00:00Z';
    (m.services[0] as { artifact: { storePath: string } }).artifact.storePath = web3;
    await world.publish(m, { signWith: newSecret });
    expect((await world.tick()).outcome).toBe('applied');
    expect(world.state.current?.services.web?.storePath).toBe(web3);

    // 4. The old key dropped: what it signs is now untrusted; what the new one signs keeps converging.
    world.ctx.settings.trustedPublicKeys = [newKey];
    await world.publish({ ...m, generation: '2025-01-15T14:00:00Z', services: [] });
    expect((await world.tick()).message).toContain('"test-1" is not trusted here (trusted: "test-2")');
    await world.publish({ ...m, generation: '2025-01-15T14:00:01Z', services: [] }, { signWith: newSecret });
    expect((await world.tick()).outcome).toBe('applied');
    expect(world.state.current?.services).toEqual({});
  });
});

/** An object store that refuses every write outside `allowed` (a prefix), as a least-privilege policy would. */
function writesOnlyUnder(objects: ObjectStore, allowed: string | undefined): ObjectStore {
  const deny = (key: string) => {
    if (allowed === undefined || !key.startsWith(allowed))
      throw new DeployError(
        'S3_ACCESS_DENIED',
        `${objects.url}${key}: Access Denied (policy: read-only here)`,
      );
  };
  return {
    url: objects.url,
    get: (key, options) => objects.get(key, options),
    head: (key) => objects.head(key),
    list: (prefix, options) => objects.list(prefix, options),
    async put(key, body, options) {
      deny(key);
      return objects.put(key, body, options);
    },
    async upload(key, file, options) {
      deny(key);
      return objects.upload(key, file, options);
    },
    async delete(key) {
      deny(key);
      return objects.delete(key);
    },
  };
}

describe('least privilege: a host that may write only its own status (fakes)', () => {
  async function world1() {
    const world = await createWorld();
    await world.publish(await world.manifestOf([{ name: 'web', version: '1.0', overrides: http(8000) }]));
    return world;
  }

  it('converges and publishes status against a bucket that refuses every write outside status/', async () => {
    const world = await world1();
    const manifests = createManifestStore(writesOnlyUnder(world.manifests.objects, 'status/'));
    const report = await runTick({ ...world.ctx, adapters: { ...world.ctx.adapters, manifests } });
    expect(report.outcome).toBe('applied');
    expect((await world.manifests.readStatus('biz'))?.status).toMatchObject({
      lastTick: { outcome: 'applied' },
    });
    expect(world.manifests.objects.requests.filter((r) => r.method === 'PUT').map((r) => r.key)).toEqual([
      'manifest.json', // the publish
      'status/biz.json',
    ]);
  });

  it('with --status elsewhere, the manifest bucket may be read-only for the host altogether', async () => {
    const world = await world1();
    const statusBucket = createMemoryObjectStore({ name: 'status' });
    const manifests = createManifestStore(writesOnlyUnder(world.manifests.objects, undefined), {
      status: statusBucket,
    });
    const report = await runTick({ ...world.ctx, adapters: { ...world.ctx.adapters, manifests } });
    expect(report.outcome).toBe('applied');
    expect([...statusBucket.objects.keys()]).toEqual(['biz.json']);
    expect(manifests.statusUrl).toBe('memory://status/');
    expect((await manifests.listStatuses()).map((r) => r.host)).toEqual(['biz']);
    expect([...world.manifests.objects.objects.keys()].filter((k) => k.startsWith('status/'))).toEqual([]);
  });
});
