import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openManifestStore, openObjectStore } from '../../src/s3/index.js';
import { startS3Server, TEST_CREDENTIALS, type TestS3Server } from '../support/s3-server.js';

describe('openManifestStore', () => {
  let dir: string;
  let server: TestS3Server;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'omni-open-'));
    server = await startS3Server();
  });
  afterAll(async () => {
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('puts the manifest, its archives and the status objects beside each other in a directory', async () => {
    const store = openManifestStore(`${dir}/a/manifest.json`);
    expect(store.url).toBe(`file://${dir}/a/manifest.json`);
    await store.write('{"v":1}', { ifNoneMatch: '*' });
    const archive = await store.archive('{"v":0}', { now: new Date('2025-01-16T09:00:00Z') });
    await store.writeStatus('biz', { ok: true });
    expect(readFileSync(`${dir}/a/manifest.json`, 'utf8')).toBe('{"v":1}');
    expect(readFileSync(`${dir}/a/manifests/manifest-20250116T090000.000Z.json`, 'utf8')).toBe('{"v":0}');
    expect(archive.key).toBe('manifests/manifest-20250116T090000.000Z.json');
    expect(existsSync(`${dir}/a/status/biz.json`)).toBe(true);
    // The directory itself, a file:// URL and a relative path name the same store.
    for (const location of [`${dir}/a`, `file://${dir}/a/manifest.json`, 'a/manifest.json']) {
      const read = await openManifestStore(location, { cwd: dir }).read();
      expect(read.status === 'found' && read.text).toBe('{"v":1}');
    }
  });

  it('names archives after a manifest that is not called manifest.json', async () => {
    const store = openManifestStore(`file://${dir}/b/staging.json`);
    await store.write('{}', { ifNoneMatch: '*' });
    const entry = await store.archive('{}', { now: new Date('2025-01-16T09:00:00Z') });
    expect(entry.key).toBe('manifests/staging-20250116T090000.000Z.json');
    expect((await store.listArchives()).map((e) => e.id)).toEqual(['20250116T090000.000Z']);
  });

  it('opens an S3 location with a key prefix and an endpoint', async () => {
    const location = `s3://${server.bucket}/prod/manifest.json?endpoint=${server.endpoint}`;
    const store = openManifestStore(location, { credentials: TEST_CREDENTIALS });
    expect(store.url).toBe(`s3://${server.bucket}/prod/manifest.json`);
    await store.write('{"prod":true}', { ifNoneMatch: '*' });
    await store.writeStatus('biz', { ok: true });
    const root = openObjectStore(`s3://${server.bucket}?endpoint=${server.endpoint}`, {
      credentials: TEST_CREDENTIALS,
    });
    expect((await root.list('prod/')).map((o) => o.key)).toEqual([
      'prod/manifest.json',
      'prod/status/biz.json',
    ]);
  });

  it('refuses a malformed location before touching anything', () => {
    expect(() => openManifestStore('s3://omni-nix-cache/manifest.json?regoin=nyc3')).toThrow(
      /unknown parameter/,
    );
  });
});
