import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Manifest } from '../../src/manifest/index.js';
import { initBucket, renderBucketInit } from '../../src/push/bucket.js';
import type { PushContext } from '../../src/push/context.js';
import { writeServiceChange } from '../../src/push/manifest-change.js';
import { parseServiceSpec } from '../../src/push/spec.js';
import type { DeployerEvent } from '../../src/runtime/events.js';
import { createManifestStore, type ManifestStore, type WriteMode } from '../../src/s3/index.js';
import {
  type ConditionBehaviour,
  createFakeClock,
  createFakeNix,
  createFakeShell,
  createMemoryManifestStore,
  createMemoryObjectStore,
} from '../../src/testing/index.js';
import { storePath } from '../builders.js';
import { makeKeyPair } from '../support/local-cache.js';
import { startS3Server, type TestS3Server } from '../support/s3-server.js';

const KEY = makeKeyPair('push-1');
/** Every manifest write is signed: with `push-1`, building on manifests it signed. */
const signing = { secretKey: KEY.secretKey, trustedPublicKeys: [], allowUnsigned: false };

const SECRETS = '/var/lib/biz-secrets';
const change = (name: string, port: number) => ({
  spec: parseServiceSpec(
    JSON.stringify({
      name,
      hosts: ['biz'],
      exec: { command: name },
      http: { domain: 'example.com', path: `/${name}`, internalPort: port },
    }),
    `deploy/${name}.json`,
    { secretsDir: SECRETS },
  ),
  storePath: storePath(`${name}-1`),
});
/** The real clock, so two concurrent pushes really interleave while a lease settles. */
const realClock: PushContext['clock'] = {
  now: () => Date.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};
/** Short lease timings on the real clock: far above a loopback request, far below a test timeout. */
const FAST_LEASE = { settleMs: 100, pollMs: 25, ttlMs: 10_000, marginMs: 2_000 };

function contextFor(manifests: ManifestStore, events: DeployerEvent[] = [], clock = realClock): PushContext {
  return {
    manifests,
    cache: undefined,
    nix: createFakeNix(),
    shell: createFakeShell(),
    clock,
    onEvent: (e) => events.push(e),
    secretsDir: SECRETS,
  };
}

async function namesIn(manifests: ManifestStore): Promise<string[]> {
  const read = await manifests.read();
  if (read.status !== 'found') return [];
  const envelope = JSON.parse(read.text) as { payload: string };
  return (JSON.parse(envelope.payload) as Manifest).services.map((s) => s.name).sort();
}

const BEHAVIOURS: [ConditionBehaviour, WriteMode][] = [
  ['aws', 'conditional'],
  ['spaces-unquoted', 'conditional-unquoted'],
  ['ignores-conditions', 'lease'],
  ['not-implemented', 'lease'],
  ['no-if-none-match', 'lease'],
];

describe('two pushes at once, after push init, on every kind of bucket', () => {
  let server: TestS3Server;
  beforeAll(async () => {
    server = await startS3Server();
  });
  afterAll(async () => server?.close());

  const stores: [string, (behaviour: ConditionBehaviour) => ManifestStore][] = [
    ['memory', (conditions) => createMemoryManifestStore({ conditions })],
    [
      's3rver behind the imitating proxy',
      (conditions) => {
        server.conditions = conditions;
        return createManifestStore(server.objectStore({ proxy: true, prefix: `${conditions}/` }));
      },
    ],
  ];

  for (const [where, open] of stores) {
    it.each(BEHAVIOURS)(`${where} %s: init records %s, and both pushes land`, async (behaviour, mode) => {
      const store = open(behaviour);
      const init = await initBucket(contextFor(store), { signing, lease: FAST_LEASE });
      expect([init.mode, init.manifest]).toEqual([mode, 'created']);
      // Two machines: each its own store object and context, the same bucket.
      const events: DeployerEvent[] = [];
      const second = createManifestStore(store.objects);
      const [web, api] = await Promise.all([
        writeServiceChange(contextFor(store, events), change('web', 8000), { signing, lease: FAST_LEASE }),
        writeServiceChange(contextFor(second, events), change('api', 8001), { signing, lease: FAST_LEASE }),
      ]);
      expect(await namesIn(store)).toEqual(['api', 'web']);
      expect([web.mode, api.mode, web.changed, api.changed]).toEqual([mode, mode, true, true]);
      expect(events.filter((e) => e.level === 'warn' && e.type !== 'push.conflict')).toEqual([]);
      if (mode === 'lease') {
        // Serialised by the lease: no conflict to recover from, and no lock left behind.
        expect(events.filter((e) => e.type === 'push.conflict')).toEqual([]);
        expect(await store.objects.head('leases/manifest.json')).toBeUndefined();
      }
    });
  }
});

describe('push init', () => {
  it('prints what the probe found and the mode it recorded, and says so when the mode changes', async () => {
    const objects = createMemoryObjectStore({ conditions: 'spaces-unquoted' });
    const store = createManifestStore(objects);
    const ctx = contextFor(store, [], createFakeClock());
    const first = await initBucket(ctx, { signing });
    expect(renderBucketInit(first).split('\n')).toEqual([
      'manifest: created (empty) at memory://store/manifest.json',
      'nix-cache-info: no cache',
      'conditional writes, probed on a scratch object under probes/:',
      '  ✓ If-None-Match: * on a new key: written',
      '  ✓ If-None-Match: * on an existing key: refused',
      expect.stringMatching(
        /^ {2}✗ If-Match with the current ETag, quoted \("[0-9a-f]{32}"\): refused \(compare-and-swap needs it written\)$/,
      ),
      expect.stringMatching(/^ {2}✓ If-Match with the current ETag, unquoted \([0-9a-f]{32}\): written$/),
      '  ✓ If-Match with a stale ETag, unquoted: refused',
      'write mode: conditional-unquoted: compare-and-swap with If-Match / If-None-Match, ETags sent unquoted (this bucket refuses them quoted, as DigitalOcean Spaces does)',
      'recorded in memory://store/bucket-mode.json: every push reads it and writes this way',
    ]);
    expect(first.previousMode).toBe('none');

    // The provider changes: conditions are no longer enforced. Re-running init finds out and says so.
    const moved = createMemoryObjectStore({ conditions: 'ignores-conditions' });
    for (const [key, object] of objects.objects) moved.objects.set(key, object);
    const again = await initBucket(contextFor(createManifestStore(moved), [], createFakeClock()), {
      signing,
    });
    expect(again.manifest).toBe('exists');
    expect(renderBucketInit(again)).toContain(
      'write mode: lease (was conditional-unquoted): this bucket does not enforce conditional writes, so each push first takes a lease (leases/<manifest>.json: owner, expiry, read back before writing); concurrent pushes still never lose an update',
    );
    expect(again.conditionalWrites).toBe(false);
  });

  it('replaces a damaged record, and creates nix-cache-info without conditions (B2 refuses them)', async () => {
    const manifests = createMemoryManifestStore({ conditions: 'not-implemented' });
    await manifests.objects.put('bucket-mode.json', 'not json');
    const cache = createMemoryObjectStore({ name: 'cache', conditions: 'not-implemented' });
    const init = await initBucket({ ...contextFor(manifests, [], createFakeClock()), cache }, { signing });
    expect([init.previousMode, init.mode, init.cacheInfo, init.manifest]).toEqual([
      'damaged',
      'lease',
      'created',
      'created',
    ]);
    expect(renderBucketInit(init)).toContain(
      'write mode: lease (the old record was damaged and is replaced)',
    );
    expect((await manifests.readWriteMode())?.mode).toBe('lease');
    expect(cache.requests.filter((r) => r.status === 501)).toEqual([]);
  });
});
