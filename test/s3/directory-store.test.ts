import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createDirectoryObjectStore, createManifestStore } from '../../src/s3/index.js';

const root = new URL('../..', import.meta.url).pathname;

describe('directory store across processes', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'omni-dir-cas-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('loses no update when several processes read-modify-write the manifest at once', async () => {
    const script = join(dir, 'writer.mts');
    writeFileSync(
      script,
      `import { createDirectoryObjectStore, createManifestStore, updateManifest } from '${root}src/s3/index.js';
       const [storeDir, name] = process.argv.slice(2);
       const store = createManifestStore(createDirectoryObjectStore({ dir: storeDir }));
       for (let i = 0; i < 5; i++) {
         await updateManifest(store, (current) => JSON.stringify([...JSON.parse(current ?? '[]'), name + '-' + i]),
           { now: () => new Date(), maxAttempts: 50 });
       }`,
    );
    const store = createManifestStore(createDirectoryObjectStore({ dir: join(dir, 'store') }));
    await store.write('[]', { ifNoneMatch: '*' });
    const run = (name: string) =>
      promisify(execFile)(process.execPath, ['--import', 'tsx', script, join(dir, 'store'), name], {
        cwd: root,
      });
    await Promise.all(['a', 'b', 'c'].map(run));
    const final = await store.read();
    const names = final.status === 'found' ? (JSON.parse(final.text) as string[]) : [];
    expect(names.sort()).toEqual(
      ['a', 'b', 'c'].flatMap((n) => [0, 1, 2, 3, 4].map((i) => `${n}-${i}`)).sort(),
    );
    // Every replaced manifest was archived: one per successful update, plus one per attempt that lost a race.
    expect((await store.listArchives()).length).toBeGreaterThanOrEqual(15);
  }, 60_000);

  it('takes over a lock left behind by a dead writer', async () => {
    const objects = createDirectoryObjectStore({ dir, staleLockMs: 1000 });
    const { etag } = await objects.put('manifest.json', 'v1');
    mkdirSync(join(dir, '.lock-manifest.json'));
    const old = new Date(Date.now() - 60_000);
    utimesSync(join(dir, '.lock-manifest.json'), old, old);
    await objects.put('manifest.json', 'v2', { ifMatch: etag });
    expect(await objects.get('manifest.json')).toMatchObject({ text: 'v2' });
    expect((await objects.list('')).map((o) => o.key)).toEqual(['manifest.json']);
  });
});
