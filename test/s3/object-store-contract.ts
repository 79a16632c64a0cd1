import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isDeployError } from '../../src/errors.js';
import { sameEtag } from '../../src/s3/etag.js';
import {
  type ObjectStore,
  probeConditionalWrites,
  type StoreRequest,
  type WriteMode,
} from '../../src/s3/index.js';

/** A fresh, empty store and the requests it reports. */
export interface StoreHarness {
  store: ObjectStore;
  /** Filled through the store's `onRequest` hook. */
  requests: StoreRequest[];
  cleanup(): Promise<void>;
}

/** What a store guarantees beyond the common contract. */
export interface StoreTraits {
  /** If-Match / If-None-Match on writes are enforced (AWS S3, memory, directory; not s3rver). */
  enforcesConditionalWrites: boolean;
  /** A write with a condition is refused as not implemented (HTTP 501, Backblaze B2). */
  conditionsNotImplemented?: boolean;
  /** The write mode `probeBucket` finds. Default: `conditional` when enforcing, else `lease`. */
  mode?: WriteMode;
  /**
   * A read never sees part of a write, and sees every write answered before it (S3; not raw s3rver, which
   * answers a PUT before the bytes are on disk). Default true. Concurrent writers are tested only then.
   */
  consistent?: boolean;
}

/** The write mode a store with these traits needs. */
export function expectedMode(traits: StoreTraits): WriteMode {
  return traits.mode ?? (traits.enforcesConditionalWrites ? 'conditional' : 'lease');
}

export async function outcome(promise: Promise<unknown>): Promise<string> {
  return promise.then(
    () => 'ok',
    (error: unknown) => (isDeployError(error) ? error.code : `unexpected: ${String(error)}`),
  );
}

/** The contract of every {@link ObjectStore}. */
export function objectStoreContract(name: string, make: () => Promise<StoreHarness>, traits: StoreTraits) {
  describe(`ObjectStore contract: ${name}`, () => {
    let h: StoreHarness;
    const scratch = mkdtempSync(join(tmpdir(), 'omni-store-contract-'));
    beforeAll(async () => {
      h = await make();
    });
    afterAll(async () => {
      await h?.cleanup();
      rmSync(scratch, { recursive: true, force: true });
    });

    it('reads back what it wrote, with the same ETag, and reports missing objects', async () => {
      const { etag } = await h.store.put('a/b.json', '{"x":1}', { contentType: 'application/json' });
      expect(etag).toMatch(/^"[0-9a-f]{32}"$/);
      expect(await h.store.get('a/b.json')).toMatchObject({ status: 'found', text: '{"x":1}', etag });
      expect(await h.store.head('a/b.json')).toEqual({ size: 7, etag });
      expect(await h.store.get('a/missing.json')).toEqual({ status: 'missing' });
      expect(await h.store.head('a/missing.json')).toBeUndefined();
    });

    it('answers a conditional read of an unchanged object with not-modified, in one request', async () => {
      const { etag } = await h.store.put('poll.json', 'v1');
      const before = h.requests.length;
      expect(await h.store.get('poll.json', { ifNoneMatch: etag })).toEqual({ status: 'not-modified', etag });
      expect(h.requests.slice(before)).toEqual([{ method: 'GET', key: 'poll.json', status: 304 }]);
      await h.store.put('poll.json', 'v2');
      expect(await h.store.get('poll.json', { ifNoneMatch: etag })).toMatchObject({
        status: 'found',
        text: 'v2',
      });
    });

    it('writes conditionally when the condition holds', async () => {
      const created = await h.store.put('cas.json', 'one', { ifNoneMatch: '*' });
      const swapped = await h.store.put('cas.json', 'two', { ifMatch: created.etag });
      expect(await h.store.get('cas.json')).toMatchObject({ text: 'two', etag: swapped.etag });
    });

    if (traits.enforcesConditionalWrites) {
      it('refuses a stale If-Match and an If-None-Match over an existing object with S3_CONFLICT', async () => {
        const first = await h.store.put('cas2.json', 'one');
        await h.store.put('cas2.json', 'two');
        expect(await outcome(h.store.put('cas2.json', 'three', { ifMatch: first.etag }))).toBe('S3_CONFLICT');
        expect(await outcome(h.store.put('cas2.json', 'four', { ifNoneMatch: '*' }))).toBe('S3_CONFLICT');
        expect(await h.store.get('cas2.json')).toMatchObject({ text: 'two' });
      });

      it('lets exactly one of two writers with the same ETag win', async () => {
        const { etag } = await h.store.put('race.json', 'base');
        const results = await Promise.all([
          outcome(h.store.put('race.json', 'writer A', { ifMatch: etag })),
          outcome(h.store.put('race.json', 'writer B', { ifMatch: etag })),
        ]);
        expect([...results].sort()).toEqual(['S3_CONFLICT', 'ok']);
        const winner = results[0] === 'ok' ? 'writer A' : 'writer B';
        expect(await h.store.get('race.json')).toMatchObject({ text: winner });
      });

      it('is found to enforce conditional writes by the probe', async () => {
        expect(await probeConditionalWrites(h.store)).toEqual({ ifNoneMatch: true, ifMatch: true });
        expect(await h.store.list('probes/')).toEqual([]);
      });
    } else {
      it('is found NOT to enforce conditional writes by the probe (so callers can refuse or warn)', async () => {
        expect(await probeConditionalWrites(h.store)).toEqual({ ifNoneMatch: false, ifMatch: false });
        expect(await h.store.list('probes/')).toEqual([]);
      });
    }

    it('lists by prefix in key order, nested keys included', async () => {
      for (const key of ['l/b.txt', 'l/a.txt', 'l/sub/c.txt', 'lx/d.txt', 'l2.txt'])
        await h.store.put(key, key);
      expect((await h.store.list('l/')).map((o) => o.key)).toEqual(['l/a.txt', 'l/b.txt', 'l/sub/c.txt']);
      expect((await h.store.list('l/sub/')).map((o) => [o.key, o.size])).toEqual([['l/sub/c.txt', 11]]);
      expect((await h.store.list('lx')).map((o) => o.key)).toEqual(['lx/d.txt']);
      expect(await h.store.list('nothing/')).toEqual([]);
      expect((await h.store.list('l/', { recursive: false })).map((o) => o.key)).toEqual([
        'l/a.txt',
        'l/b.txt',
      ]);
      expect((await h.store.list('', { recursive: false })).map((o) => o.key)).toContain('l2.txt');
      expect((await h.store.list('', { recursive: false })).map((o) => o.key)).not.toContain('l/a.txt');
    });

    it("gives each listed object's ETag, where it gives one, as head gives it", async () => {
      await h.store.put('e/one.json', '{"a":1}');
      await h.store.put('e/two.json', '{"b":2}');
      for (const object of await h.store.list('e/')) {
        if (object.etag === undefined) continue; // a directory store leaves it out
        const head = await h.store.head(object.key);
        expect(sameEtag(object.etag, head?.etag ?? '')).toBe(true);
      }
    });

    it('deletes, and deleting a missing object is not an error', async () => {
      await h.store.put('del.txt', 'x');
      await h.store.delete('del.txt');
      expect(await h.store.head('del.txt')).toBeUndefined();
      await h.store.delete('del.txt');
    });

    it('uploads a file larger than a multipart part, intact, with progress up to its size', async () => {
      const file = join(scratch, 'big.txt');
      const content = 'omni-deploy multipart line\n'.repeat((12 * 1024 * 1024) / 27 + 1);
      writeFileSync(file, content);
      const progress: number[] = [];
      await h.store.upload('nar/big.nar', file, { onProgress: (n) => progress.push(n) });
      expect(progress.at(-1)).toBe(content.length);
      expect(await h.store.head('nar/big.nar')).toMatchObject({ size: content.length });
      const got = await h.store.get('nar/big.nar');
      expect(got.status === 'found' && got.text === content).toBe(true);
    });

    it.each([
      ['../escape'],
      ['/absolute'],
      ['a//b'],
      ['a/../b'],
      ['.hidden'],
      ['a/.lock-x'],
      ['new\nline'],
      ['back\\slash'],
      [''],
      ['x'.repeat(1025)],
    ])('refuses the key %j before any request', async (key) => {
      const before = h.requests.length;
      expect(await outcome(h.store.put(key, 'x'))).toBe('S3_INPUT');
      expect(await outcome(h.store.get(key))).toBe('S3_INPUT');
      expect(await outcome(h.store.delete(key))).toBe('S3_INPUT');
      expect(h.requests.length).toBe(before);
    });
  });
}
