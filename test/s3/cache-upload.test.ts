import { mkdtempSync, readFileSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DeployError } from '../../src/errors.js';
import {
  type CacheUploadEvent,
  type CacheUploadPlan,
  type LocalCacheEntry,
  NIX_CACHE_INFO,
  planCacheUpload,
  uploadClosure,
} from '../../src/s3/index.js';
import { createMemoryObjectStore, type MemoryObjectStore } from '../../src/testing/index.js';
import { storePath } from '../builders.js';
import { makeKeyPair, writeLocalCache } from '../support/local-cache.js';
import { outcome } from './object-store-contract.js';

const hashOf = (path: string) => path.slice('/nix/store/'.length, '/nix/store/'.length + 32);

function entry(name: string, refs: string[] = [], bytes = 100): LocalCacheEntry {
  const path = storePath(name);
  return {
    storePath: path,
    narinfoKey: `${hashOf(path)}.narinfo`,
    narinfoFile: `/c/${hashOf(path)}.narinfo`,
    narinfoBytes: 10,
    narKey: `nar/${name}.nar`,
    narFile: `/c/nar/${name}.nar`,
    narBytes: bytes,
    references: refs.map(storePath),
  };
}

/** A plan as `key <- after` lines, sorted: what must precede what. */
const graphOf = (plan: CacheUploadPlan) =>
  plan.steps.map((step) => `${step.key} <- ${[...step.after].sort().join(' ')}`.trim()).sort();

describe('planCacheUpload', () => {
  const app = entry('app', ['lib', 'data']);
  const lib = entry('lib', ['libc'], 300);
  const data = entry('data', [], 200);
  const libc = entry('libc');
  const all = [app, lib, data, libc];
  const line = (key: string, ...after: string[]) => `${key} <- ${after.sort().join(' ')}`.trim();

  it('makes each narinfo wait for its NAR and the narinfos of its references, and nothing else wait', () => {
    const plan = planCacheUpload({ entries: all, present: new Set(), cacheInfo: 'StoreDir: /nix/store\n' });
    expect(graphOf(plan)).toEqual(
      [
        line(NIX_CACHE_INFO),
        line(app.narKey),
        line(lib.narKey),
        line(data.narKey),
        line(libc.narKey),
        line(app.narinfoKey, app.narKey, lib.narinfoKey, data.narinfoKey),
        line(lib.narinfoKey, lib.narKey, libc.narinfoKey),
        line(data.narinfoKey, data.narKey),
        line(libc.narinfoKey, libc.narKey),
      ].sort(),
    );
    // Largest NARs first, so the long transfers start early.
    expect(plan.steps.filter((s) => s.kind === 'nar').map((s) => s.bytes)).toEqual([300, 200, 100, 100]);
    expect(plan.bytes).toBe(300 + 200 + 100 + 100 + 4 * 10 + 'StoreDir: /nix/store\n'.length);
    expect(plan.skipped).toEqual([]);
  });

  it('skips a path whose narinfo the bucket has, and a NAR already there from an interrupted upload', () => {
    const present = new Set([NIX_CACHE_INFO, libc.narinfoKey, lib.narKey]);
    const plan = planCacheUpload({ entries: all, present, cacheInfo: 'x' });
    expect(graphOf(plan)).toEqual(
      [
        line(app.narKey),
        line(data.narKey),
        line(lib.narinfoKey),
        line(data.narinfoKey, data.narKey),
        line(app.narinfoKey, app.narKey, lib.narinfoKey, data.narinfoKey),
      ].sort(),
    );
    expect(plan.skipped.sort()).toEqual([NIX_CACHE_INFO, libc.narinfoKey, libc.narKey, lib.narKey].sort());
  });

  it('plans nothing when the bucket has everything', () => {
    const present = new Set([NIX_CACHE_INFO, ...all.map((e) => e.narinfoKey)]);
    expect(planCacheUpload({ entries: all, present, cacheInfo: 'x' }).steps).toEqual([]);
  });

  it('refuses a reference cycle', () => {
    expect(() =>
      planCacheUpload({
        entries: [entry('a', ['b']), entry('b', ['a'])],
        present: new Set(),
        cacheInfo: 'x',
      }),
    ).toThrow(/cycle/);
  });
});

describe('uploadClosure (memory bucket, synthetic cache)', () => {
  let dir: string;
  let bucket: MemoryObjectStore;
  const key = makeKeyPair('cache-1');
  const specs = [
    { name: 'app-1.0', refs: ['lib-1.0', 'app-1.0'] },
    { name: 'lib-1.0', refs: ['libc-2.0'], bytes: 5000 },
    { name: 'libc-2.0' },
  ];
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'omni-cache-'));
    bucket = createMemoryObjectStore({ name: 'bucket' });
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('uploads the closure, NARs before the narinfos that announce them, and nothing else from the directory', async () => {
    const paths = writeLocalCache(dir, specs, [key]);
    writeFileSync(join(dir, 'cache-priv-key.pem'), key.secretKey);
    writeFileSync(join(dir, 'nar', 'stray.nar'), 'not in the closure');
    const events: CacheUploadEvent[] = [];
    const result = await uploadClosure({
      cacheDir: dir,
      paths: [paths['app-1.0'] as string],
      target: bucket,
      trustedPublicKeys: [key.publicKey],
      onEvent: (e) => events.push(e),
    });
    expect(result.closure.sort()).toEqual(Object.values(paths).sort());
    const keys = [...bucket.objects.keys()];
    expect(keys.filter((k) => k.endsWith('.narinfo'))).toHaveLength(3);
    expect(keys.filter((k) => k.startsWith('nar/'))).toHaveLength(3);
    expect(keys).toContain(NIX_CACHE_INFO);
    expect(keys).toHaveLength(7);
    for (const object of bucket.objects.values())
      expect(Buffer.from(object.body).toString()).not.toContain(key.secretKey);
    // Order: a narinfo is sent only after its own NAR and after the narinfos of what it refers to.
    const puts = bucket.requests.filter((r) => r.method === 'PUT').map((r) => r.key);
    const at = (name: string, what: 'nar' | 'narinfo') => {
      const narinfo = `${hashOf(paths[name] as string)}.narinfo`;
      if (what === 'narinfo') return puts.indexOf(narinfo);
      const url = /URL: (.*)/.exec(readFileSync(join(dir, narinfo), 'utf8'))?.[1] as string;
      return puts.indexOf(url);
    };
    for (const name of Object.keys(paths)) expect(at(name, 'nar')).toBeLessThan(at(name, 'narinfo'));
    expect(at('libc-2.0', 'narinfo')).toBeLessThan(at('lib-1.0', 'narinfo'));
    expect(at('lib-1.0', 'narinfo')).toBeLessThan(at('app-1.0', 'narinfo'));
    const progress = events.filter((e) => e.type === 'progress');
    const sent = progress.map((e) => e.sentBytes);
    expect(sent).toEqual([...sent].sort((a, b) => a - b));
    expect(events.at(-1)).toEqual({ type: 'done', files: 7, bytes: result.bytes, skipped: 0 });
    expect(progress.at(-1)?.sentBytes).toBe(result.bytes);
  });

  it('uploads nothing the second time: the bucket already has the closure', async () => {
    const paths = writeLocalCache(dir, specs, [key]);
    await uploadClosure({ cacheDir: dir, paths: [paths['app-1.0'] as string], target: bucket });
    const before = bucket.requests.filter((r) => r.method === 'PUT').length;
    const again = await uploadClosure({ cacheDir: dir, paths: [paths['app-1.0'] as string], target: bucket });
    expect(again.files).toBe(0);
    expect(bucket.requests.filter((r) => r.method === 'PUT').length).toBe(before);
  });

  it('accepts a reference missing locally when the bucket has it', async () => {
    const paths = writeLocalCache(dir, specs, [key]);
    await uploadClosure({ cacheDir: dir, paths: [paths['lib-1.0'] as string], target: bucket });
    unlinkSync(join(dir, `${hashOf(paths['libc-2.0'] as string)}.narinfo`));
    const result = await uploadClosure({
      cacheDir: dir,
      paths: [paths['app-1.0'] as string],
      target: bucket,
    });
    expect(result.files).toBe(2);
  });

  it('retries transient failures and reports them', async () => {
    const paths = writeLocalCache(dir, specs, [key]);
    let failures = 2;
    bucket.beforeRequest = ({ method, key: k }) => {
      if (method === 'PUT' && k.startsWith('nar/') && failures > 0) {
        failures--;
        throw new DeployError('S3_UNREACHABLE', `PUT ${k}: connection reset (injected)`);
      }
    };
    const events: CacheUploadEvent[] = [];
    await uploadClosure({
      cacheDir: dir,
      paths: [paths['app-1.0'] as string],
      target: bucket,
      retryDelayMs: 1,
      onEvent: (e) => events.push(e),
    });
    expect(events.filter((e) => e.type === 'retry')).toHaveLength(2);
    expect([...bucket.objects.keys()].filter((k) => k.endsWith('.narinfo'))).toHaveLength(3);
  });

  it('gives up on a NAR that keeps failing, and never announces its path or the paths that refer to it', async () => {
    const paths = writeLocalCache(dir, specs, [key]);
    const narinfoOf = (name: string) => `${hashOf(paths[name] as string)}.narinfo`;
    const narOf = (name: string) =>
      /URL: (.*)/.exec(readFileSync(join(dir, narinfoOf(name)), 'utf8'))?.[1] as string;
    bucket.beforeRequest = ({ method, key: k }) => {
      if (method === 'PUT' && k === narOf('lib-1.0')) {
        throw new DeployError('S3_REQUEST', `PUT ${k}: HTTP 503 SlowDown (injected)`, {
          details: { status: 503 },
        });
      }
    };
    const failed = await uploadClosure({
      cacheDir: dir,
      paths: [paths['app-1.0'] as string],
      target: bucket,
      retries: 1,
      retryDelayMs: 1,
    }).catch((e: unknown) => e as DeployError);
    expect(failed).toMatchObject({ code: 'CACHE_UPLOAD' });
    expect((failed as Error).message).toMatch(
      /^uploading nar\/\S+ to memory:\/\/bucket\/ failed after 2 attempt\(s\)/,
    );
    expect(bucket.objects.has(narinfoOf('lib-1.0'))).toBe(false);
    expect(bucket.objects.has(narinfoOf('app-1.0'))).toBe(false);
    // Whatever did get announced is complete.
    for (const name of Object.keys(paths)) {
      if (bucket.objects.has(narinfoOf(name))) expect(bucket.objects.has(narOf(name))).toBe(true);
    }
  });

  it('does not retry what will not get better (access denied)', async () => {
    const paths = writeLocalCache(dir, specs, [key]);
    let calls = 0;
    bucket.beforeRequest = ({ method }) => {
      if (method === 'PUT') {
        calls++;
        throw new DeployError('S3_ACCESS_DENIED', 'PUT: access denied (injected)');
      }
    };
    expect(
      await outcome(
        uploadClosure({ cacheDir: dir, paths: [paths['app-1.0'] as string], target: bucket, concurrency: 1 }),
      ),
    ).toBe('CACHE_UPLOAD');
    expect(calls).toBe(1);
  });

  describe('refuses before sending anything', () => {
    const refuse = async (
      setup: (paths: Record<string, string>) => void,
      code: string,
      message: RegExp,
      signers = [key],
    ) => {
      const paths = writeLocalCache(dir, specs, signers);
      setup(paths);
      const error = await uploadClosure({
        cacheDir: dir,
        paths: [paths['app-1.0'] as string],
        target: bucket,
        trustedPublicKeys: [key.publicKey],
      }).catch((e: unknown) => e as DeployError);
      expect(error).toMatchObject({ code });
      expect((error as Error).message).toMatch(message);
      expect(bucket.requests.filter((r) => r.method === 'PUT')).toEqual([]);
    };
    const narinfoOf = (paths: Record<string, string>, name: string) =>
      join(dir, `${hashOf(paths[name] as string)}.narinfo`);
    const rewrite = (file: string, from: RegExp, to: string) => {
      const text = readFileSync(file, 'utf8') as string;
      writeFileSync(file, text.replace(from, to));
    };

    it('an unsigned closure', () => refuse(() => {}, 'CACHE_UNSIGNED', /not signed; sign the closure/, []));

    it('a closure signed by another key', () =>
      refuse(
        () => {},
        'CACHE_UNSIGNED',
        /expected a valid signature by cache-1, found signature\(s\) by other/,
        [makeKeyPair('other')],
      ));

    it('a closure signed by another key with the same name', () =>
      refuse(() => {}, 'CACHE_UNSIGNED', /do not verify/, [makeKeyPair('cache-1')]));

    it('a narinfo edited after signing', () =>
      refuse(
        (paths) => rewrite(narinfoOf(paths, 'libc-2.0'), /NarSize: \d+/, 'NarSize: 1'),
        'CACHE_UNSIGNED',
        /do not verify/,
      ));

    it('a NAR whose size is not what the narinfo says', () =>
      refuse(
        (paths) => {
          const url = /URL: (.*)/.exec(readFileSync(narinfoOf(paths, 'libc-2.0'), 'utf8'))?.[1] as string;
          writeFileSync(join(dir, url), 'truncated');
        },
        'CACHE_INVALID',
        /expected 1000 bytes \(narinfo FileSize\), found 9/,
      ));

    it('a narinfo pointing at the secret key', () =>
      refuse(
        (paths) => {
          writeFileSync(join(dir, 'cache-priv-key.pem'), key.secretKey);
          rewrite(narinfoOf(paths, 'lib-1.0'), /URL: .*/, 'URL: ../cache-priv-key.pem');
        },
        'CACHE_INVALID',
        /URL: expected nar\//,
      ));

    it('a NAR that is a symlink (to the secret key)', () =>
      refuse(
        (paths) => {
          writeFileSync(join(dir, 'cache-priv-key.pem'), key.secretKey);
          const url = /URL: (.*)/.exec(readFileSync(narinfoOf(paths, 'lib-1.0'), 'utf8'))?.[1] as string;
          unlinkSync(join(dir, url));
          symlinkSync(join(dir, 'cache-priv-key.pem'), join(dir, url));
        },
        'CACHE_INVALID',
        /regular file/,
      ));

    it('a narinfo that is a symlink', () =>
      refuse(
        (paths) => {
          const file = narinfoOf(paths, 'libc-2.0');
          writeFileSync(`${file}.real`, readFileSync(file));
          unlinkSync(file);
          symlinkSync(`${file}.real`, file);
        },
        'CACHE_INVALID',
        /regular file/,
      ));

    it('a narinfo describing another path', () =>
      refuse(
        (paths) =>
          rewrite(narinfoOf(paths, 'libc-2.0'), /StorePath: .*/, `StorePath: ${storePath('impostor')}`),
        'CACHE_INVALID',
        /expected StorePath/,
      ));

    it('an incomplete closure', () =>
      refuse(
        (paths) => unlinkSync(narinfoOf(paths, 'libc-2.0')),
        'CACHE_INVALID',
        /closure incomplete: \/nix\/store\/\S+-libc-2.0 is referenced/,
      ));

    it('a path that is not in the local cache', async () => {
      writeLocalCache(dir, specs, [key]);
      expect(
        await outcome(uploadClosure({ cacheDir: dir, paths: [storePath('elsewhere')], target: bucket })),
      ).toBe('CACHE_INVALID');
    });

    it('a cache for another store directory', () =>
      refuse(
        () => writeFileSync(join(dir, 'nix-cache-info'), 'StoreDir: /gnu/store\n'),
        'CACHE_INVALID',
        /StoreDir/,
      ));
  });
});
