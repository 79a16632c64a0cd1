import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createManifestStore,
  type LeaseOptions,
  type ManifestStore,
  type ObjectStore,
  probeBucket,
  type UpdateManifestEvent,
  updateManifest,
  writeBucketMode,
} from '../../src/s3/index.js';
import { createFakeClock } from '../../src/testing/index.js';
import { expectedMode, outcome, type StoreHarness, type StoreTraits } from './object-store-contract.js';

const manifestText = (services: string[], generation = '2025-01-15T12:34:56Z') =>
  `${JSON.stringify({ version: 1, generation, services: services.map((name) => ({ name })) }, null, 2)}\n`;
const namesIn = (text: string) =>
  (JSON.parse(text) as { services: { name: string }[] }).services.map((s) => s.name);
const add = (service: string) => (text: string | undefined) =>
  manifestText([...namesIn(text ?? manifestText([])), service]);

/** Lease timing for tests on the real clock: short, yet far above a loopback request. */
const FAST_LEASE: LeaseOptions = { settleMs: 100, pollMs: 25, ttlMs: 10_000, marginMs: 2_000 };

/**
 * An object store that runs `pause` before the first `PUT` whose key starts with `prefix`: a push that stops
 * there (a laptop closed) while the test carries on.
 */
function pausing(objects: ObjectStore, prefix: string, pause: () => Promise<void>): ObjectStore {
  let paused = false;
  return {
    ...objects,
    url: objects.url,
    async put(key, body, options) {
      if (!paused && key.startsWith(prefix)) {
        paused = true;
        await pause();
      }
      return objects.put(key, body, options);
    },
  };
}

/** The contract of a {@link ManifestStore} on every object store. */
export function manifestStoreContract(name: string, make: () => Promise<StoreHarness>, traits: StoreTraits) {
  describe(`ManifestStore contract: ${name}`, () => {
    let h: StoreHarness;
    let store: ManifestStore;
    beforeAll(async () => {
      h = await make();
      store = createManifestStore(h.store);
    });
    afterAll(async () => h?.cleanup());

    /** Archives as every store allows: under a lease where conditions are not implemented (B2). */
    const archive = async (text: string, now: Date) => {
      if (!traits.conditionsNotImplemented) return store.archive(text, { now });
      const lease = await store.acquireLease(FAST_LEASE);
      try {
        return await store.archive(text, { now, lease });
      } finally {
        await lease.release();
      }
    };

    it('starts without a manifest, creates one, and reads it back with its ETag', async () => {
      expect(await store.read()).toEqual({ status: 'missing' });
      if (traits.conditionsNotImplemented) {
        expect(await outcome(store.write(manifestText(['web']), { ifNoneMatch: '*' }))).toBe(
          'S3_UNSUPPORTED',
        );
      }
      const { etag } = traits.conditionsNotImplemented
        ? await updateManifest(store, () => manifestText(['web']), {
            now: () => new Date(),
            mode: 'lease',
            lease: FAST_LEASE,
          })
        : await store.write(manifestText(['web']), { ifNoneMatch: '*' });
      // Every store says when it stored the manifest (push's put-back check compares it with the archive's).
      expect(await store.read()).toEqual({
        status: 'found',
        text: manifestText(['web']),
        etag,
        lastModified: expect.any(Date),
      });
      expect(store.url).toBe(`${h.store.url}manifest.json`);
    });

    it('answers an idle poll with not-modified: one request, no body', async () => {
      const first = await store.read();
      if (first.status !== 'found') throw new Error('expected a manifest');
      const before = h.requests.length;
      expect(await store.read({ ifNoneMatch: first.etag })).toEqual({
        status: 'not-modified',
        etag: first.etag,
      });
      expect(h.requests.slice(before)).toEqual([{ method: 'GET', key: 'manifest.json', status: 304 }]);
    });

    it('replaces the manifest when the ETag read is still current', async () => {
      const current = await store.read();
      if (current.status !== 'found') throw new Error('expected a manifest');
      if (traits.conditionsNotImplemented) {
        expect(await outcome(store.write('x', { ifMatch: current.etag }))).toBe('S3_UNSUPPORTED');
      }
      const { etag } = traits.conditionsNotImplemented
        ? await updateManifest(store, () => manifestText(['web', 'api']), {
            now: () => new Date(),
            mode: 'lease',
            lease: FAST_LEASE,
          })
        : await store.write(manifestText(['web', 'api']), { ifMatch: current.etag });
      expect(await store.read({ ifNoneMatch: current.etag })).toEqual({
        status: 'found',
        text: manifestText(['web', 'api']),
        etag,
        lastModified: expect.any(Date),
      });
    });

    if (traits.enforcesConditionalWrites) {
      it('two writers with the same ETag: exactly one wins, the other gets a typed conflict', async () => {
        const current = await store.read();
        if (current.status !== 'found') throw new Error('expected a manifest');
        const results = await Promise.all([
          outcome(store.write(manifestText(['a']), { ifMatch: current.etag })),
          outcome(store.write(manifestText(['b']), { ifMatch: current.etag })),
        ]);
        expect(results.sort()).toEqual(['S3_CONFLICT', 'ok']);
        expect(await outcome(store.write(manifestText(['c']), { ifNoneMatch: '*' }))).toBe('S3_CONFLICT');
      });

      it('two concurrent read-modify-write updates: both changes land, each replaced manifest archived', async () => {
        await updateManifest(store, () => manifestText(['web']), { now: () => new Date() });
        const archivesBefore = (await store.listArchives()).length;
        const conflicts: number[] = [];
        const results = await Promise.all([
          updateManifest(store, add('worker'), {
            now: () => new Date(),
            onConflict: (n) => conflicts.push(n),
          }),
          updateManifest(store, add('storybook'), {
            now: () => new Date(),
            onConflict: (n) => conflicts.push(n),
          }),
        ]);
        const final = await store.read();
        expect(final.status === 'found' && namesIn(final.text).sort()).toEqual([
          'storybook',
          'web',
          'worker',
        ]);
        expect(results.map((r) => r.changed)).toEqual([true, true]);
        // Both first attempts started from the same ETag, so one of them had to start over.
        expect(conflicts.length).toBeGreaterThanOrEqual(1);
        expect((await store.listArchives()).length).toBe(archivesBefore + 2 + conflicts.length);
      });

      it('never overwrites an archive: two archives in the same millisecond get distinct names', async () => {
        const now = new Date('2031-02-03T04:05:06.007Z');
        const a = await store.archive('first', { now });
        const b = await store.archive('second', { now });
        expect([a.id, b.id]).toEqual(['20310203T040506.007Z', '20310203T040506.008Z']);
        expect((await store.readArchive(a.id)).text).toBe('first');
        expect((await store.readArchive(b.id)).text).toBe('second');
      });
    } else if (traits.conditionsNotImplemented) {
      it('refuses to archive with If-None-Match (not implemented); under a lease archives get distinct names', async () => {
        const now = new Date('2031-02-03T04:05:06.007Z');
        expect(await outcome(store.archive('first', { now }))).toBe('S3_UNSUPPORTED');
        const a = await archive('first', now);
        const b = await archive('second', now);
        expect([a.id, b.id]).toEqual(['20310203T040506.007Z', '20310203T040506.008Z']);
      });
    } else {
      it('cannot detect a second archive in the same millisecond (the server ignores If-None-Match)', async () => {
        const now = new Date('2031-02-03T04:05:06.007Z');
        const a = await store.archive('first', { now });
        const b = await store.archive('second', { now });
        expect(b.id).toBe(a.id);
        expect((await store.readArchive(a.id)).text).toBe('second');
      });
    }

    it('archives under manifests/manifest-<compact UTC>.json and lists them newest first', async () => {
      const times = ['2030-01-01T00:00:00.000Z', '2030-06-15T12:34:56.789Z', '2029-12-31T23:59:59.999Z'];
      for (const [i, time] of times.entries()) {
        const entry = await archive(manifestText([`v${i}`]), new Date(time));
        expect(entry.archivedAt).toBe(time);
      }
      await h.store.put('manifests/README.txt', 'not an archive');
      await h.store.put('manifests/manifest-20301399T000000.000Z.json', 'impossible date');
      await h.store.put('manifests/manifest-latest.json', 'not a timestamp');
      const listed = (await store.listArchives()).filter(
        (e) => e.id.startsWith('2029') || e.id.startsWith('2030'),
      );
      expect(listed.map((e) => [e.id, e.key])).toEqual([
        ['20300615T123456.789Z', 'manifests/manifest-20300615T123456.789Z.json'],
        ['20300101T000000.000Z', 'manifests/manifest-20300101T000000.000Z.json'],
        ['20291231T235959.999Z', 'manifests/manifest-20291231T235959.999Z.json'],
      ]);
      const all = await store.listArchives();
      expect(all.map((e) => e.id)).toEqual([...all.map((e) => e.id)].sort().reverse());
    });

    it('reads an archive by id, file name or key', async () => {
      const expected = manifestText(['v1']);
      for (const ref of [
        '20300615T123456.789Z',
        'manifest-20300615T123456.789Z.json',
        'manifests/manifest-20300615T123456.789Z.json',
      ]) {
        const archived = await store.readArchive(ref);
        expect(archived.text).toBe(expected);
        expect(archived.entry).toMatchObject({
          id: '20300615T123456.789Z',
          archivedAt: '2030-06-15T12:34:56.789Z',
        });
      }
      expect(await outcome(store.readArchive('20200101T000000.000Z'))).toBe('S3_NOT_FOUND');
    });

    it.each([
      ['../manifest.json'],
      ['manifests/../../etc/passwd'],
      ['20300615T123456.789Z/../../x'],
      ['2030-06-15T12:34:56.789Z'],
      ['20300230T000000.000Z'],
      ['latest'],
    ])('refuses the archive reference %j', async (ref) => {
      expect(await outcome(store.readArchive(ref))).toBe('S3_INPUT');
    });

    it('keeps one status object per host and lists them', async () => {
      expect(await store.readStatus('biz')).toBeUndefined();
      await store.writeStatus('biz', { generation: 'g1', services: { web: 'healthy' } });
      await store.writeStatus('biz', { generation: 'g2', services: { web: 'healthy' } });
      await store.writeStatus('edge-1.example.com', { generation: 'g2' });
      expect((await store.readStatus('biz'))?.status).toEqual({
        generation: 'g2',
        services: { web: 'healthy' },
      });
      const all = await store.listStatuses();
      expect(all.map((r) => [r.host, r.status])).toEqual([
        ['biz', { generation: 'g2', services: { web: 'healthy' } }],
        ['edge-1.example.com', { generation: 'g2' }],
      ]);
    });

    it.each([['../manifest'], ['a b'], ['biz/../../x'], [''], ['-rf'], ['host\n']])(
      'refuses the host name %j for status',
      async (host) => {
        expect(await outcome(store.writeStatus(host, {}))).toBe('S3_INPUT');
        expect(await outcome(store.readStatus(host))).toBe('S3_INPUT');
      },
    );

    it('refuses an empty ETag instead of writing unconditionally', async () => {
      expect(await outcome(store.write('x', { ifMatch: '' }))).toBe('S3_INPUT');
    });

    it(`is probed as needing the write mode ${expectedMode(traits)}, which is recorded and read back`, async () => {
      const probe = await probeBucket(h.store);
      expect(probe.mode, probe.findings.map((f) => f.message).join('\n')).toBe(expectedMode(traits));
      expect(await h.store.list('probes/')).toEqual([]);
      await writeBucketMode(h.store, {
        version: 1,
        mode: probe.mode,
        probedAt: new Date().toISOString(),
        findings: probe.findings,
      });
      expect(await store.readWriteMode()).toMatchObject({ version: 1, mode: expectedMode(traits) });
    });

    // Raw s3rver can serve part of an object being written: the lease is tested where reads are whole (behind
    // the proxy, which imitates s3rver's own ignoring of conditions as `ignores-conditions`).
    if (traits.consistent !== false)
      it('two concurrent updates in the recorded mode: both land, each replaced manifest archived', async () => {
        const archivesBefore = (await store.listArchives()).length;
        const conflicts: number[] = [];
        const events: UpdateManifestEvent[] = [];
        // Two writers with their own store objects, as two machines would have.
        const other = createManifestStore(h.store);
        const results = await Promise.all(
          [
            [store, 'queue'],
            [other, 'mailer'],
          ].map(([writer, service]) =>
            updateManifest(writer as ManifestStore, add(service as string), {
              now: () => new Date(),
              lease: FAST_LEASE,
              onConflict: (n) => conflicts.push(n),
              onEvent: (e) => events.push(e),
            }),
          ),
        );
        const final = await store.read();
        expect(final.status === 'found' && namesIn(final.text).slice(-2).sort()).toEqual(['mailer', 'queue']);
        expect(results.map((r) => [r.changed, r.mode])).toEqual([
          [true, expectedMode(traits)],
          [true, expectedMode(traits)],
        ]);
        expect(events.filter((e) => e.type === 'mode-missing' || e.type === 'lease-lost')).toEqual([]);
        expect((await store.listArchives()).length).toBe(archivesBefore + 2 + conflicts.length);
        if (expectedMode(traits) === 'lease') {
          // The lease serialised them: no conflict, and no lock is left behind.
          expect(conflicts).toEqual([]);
          expect(await h.store.head('leases/manifest.json')).toBeUndefined();
        }
      });

    if (traits.consistent !== false)
      it('a lease that runs out mid-push (a laptop closed) writes nothing: it re-reads and starts over', async () => {
        const clock = createFakeClock(Date.parse('2031-05-01T00:00:00Z'));
        const timing = { ...FAST_LEASE, now: clock.now, sleep: clock.sleep };
        // There is a manifest to archive (the pause is at the archive), whatever ran before.
        await updateManifest(store, add('base'), {
          now: () => new Date(clock.now()),
          mode: 'lease',
          lease: timing,
        });
        const writes: string[] = [];
        const watch = (objects: ObjectStore, who: string): ObjectStore => ({
          ...objects,
          url: objects.url,
          async put(key, body, options) {
            const written = await objects.put(key, body, options);
            if (key === 'manifest.json') writes.push(who);
            return written;
          },
        });
        const events: UpdateManifestEvent[] = [];
        const laptop = createManifestStore(
          pausing(watch(h.store, 'laptop'), 'manifests/', async () => {
            // Asleep past the lease's expiry; meanwhile another push takes the lease over and writes.
            clock.advance(FAST_LEASE.ttlMs as number);
            await updateManifest(createManifestStore(watch(h.store, 'desktop')), add('desktop'), {
              now: () => new Date(clock.now()),
              mode: 'lease',
              lease: timing,
            });
          }),
        );
        const result = await updateManifest(laptop, add('laptop'), {
          now: () => new Date(clock.now()),
          mode: 'lease',
          lease: timing,
          onEvent: (e) => events.push(e),
        });
        expect(writes).toEqual(['desktop', 'laptop']);
        expect(events.map((e) => e.type)).toEqual(['lease-lost']);
        expect(result.attempts).toBe(2);
        const final = await store.read();
        expect(final.status === 'found' && namesIn(final.text).slice(-2)).toEqual(['desktop', 'laptop']);
      });

    if (expectedMode(traits) === 'conditional-unquoted') {
      it('retries a refused quoted ETag unquoted, then sends it unquoted first', async () => {
        const own = createManifestStore(h.store);
        const first = await own.read();
        if (first.status !== 'found') throw new Error('expected a manifest');
        const before = h.requests.length;
        const { etag } = await own.write(manifestText(['x']), { ifMatch: first.etag });
        expect(h.requests.slice(before).map((r) => `${r.method} ${r.key} ${r.status}`)).toEqual([
          'PUT manifest.json 412',
          'HEAD manifest.json 200',
          'PUT manifest.json 200',
        ]);
        const again = h.requests.length;
        await own.write(manifestText(['y']), { ifMatch: etag });
        expect(h.requests.slice(again).map((r) => `${r.method} ${r.key} ${r.status}`)).toEqual([
          'PUT manifest.json 200',
        ]);
        // A stale ETag is still refused.
        expect(await outcome(own.write(manifestText(['z']), { ifMatch: etag }))).toBe('S3_CONFLICT');
      });
    }
  });
}
