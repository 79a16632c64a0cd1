import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  applyArchiveRetention,
  type PushContext,
  planArchiveRetention,
  planCacheGc,
  readFleet,
  readHistory,
  rollbackManifest,
  waitForHosts,
} from '../../src/push/index.js';
import { runPool } from '../../src/runtime/pool.js';
import { formatArchiveId } from '../../src/s3/archive-name.js';
import { createManifestStore, type ManifestStore, type StoreRequest } from '../../src/s3/index.js';
import { createFakeClock, createFakeNix, createFakeShell, makeStorePath } from '../../src/testing/index.js';
import { makeManifest, makeService } from '../builders.js';
import { startS3Server, type TestS3Server } from '../support/s3-server.js';

/**
 * Past S3's 1,000 keys per listing page, against s3rver (which pages as S3 does): every listing command sees
 * every status object, archive and cache object, not the first page of them.
 */
const N = 1010;
const hosts = Array.from({ length: N }, (_, i) => `host-${String(i).padStart(4, '0')}`);
const status = (host: string) => ({
  host,
  deployerVersion: '0.1.0',
  updatedAt: '2025-01-15T12:00:10Z',
  generation: '2025-01-15T12:00:00Z',
  etag: '"live"',
  lastTick: { at: '2025-01-15T12:00:10Z', outcome: 'applied' },
  services: [
    { name: 'web', storePath: makeStorePath('web-1'), health: 'healthy', since: '2025-01-15T12:00:10Z' },
  ],
  failures: [],
  rollbacks: 0,
});
/** Archive i (0 = oldest): a valid manifest of `web` at version i, archived i seconds after 2025-01-01. */
const archived = (i: number) => ({
  id: formatArchiveId(new Date(Date.UTC(2025, 0, 1) + i * 1000)),
  text: JSON.stringify(
    makeManifest(
      [makeService({ artifact: { type: 'nix-closure', storePath: makeStorePath(`web-v${i}`) } })],
      {
        generation: new Date(Date.UTC(2025, 0, 1) + i * 1000).toISOString(),
      },
    ),
  ),
});
const junk = Array.from({ length: N }, (_, i) => `${makeStorePath(`junk-${i}`).slice(11, 43)}.narinfo`);

describe(`listings past 1,000 keys (${N} status objects, archives and cache objects in s3rver)`, () => {
  let server: TestS3Server;
  let manifests: ManifestStore;
  let ctx: PushContext;
  const requests: StoreRequest[] = [];
  const listings = (since: number) =>
    requests.slice(since).filter((r) => r.method === 'GET' && r.key.endsWith('/')).length;

  beforeAll(async () => {
    server = await startS3Server();
    const objects = server.objectStore({ prefix: 'fleet/', onRequest: (r) => requests.push(r) });
    manifests = createManifestStore(objects);
    const cache = server.objectStore({ prefix: 'cache/' });
    await manifests.write(JSON.stringify(makeManifest([makeService()])), { ifNoneMatch: '*' });
    await runPool(hosts, 16, (host) => manifests.writeStatus(host, status(host)).then(() => {}));
    await runPool(
      Array.from({ length: N }, (_, i) => archived(i)),
      16,
      ({ id, text }) => objects.put(`manifests/manifest-${id}.json`, text).then(() => {}),
    );
    await runPool(junk, 16, (key) => cache.put(key, 'StorePath: junk\n').then(() => {}));
    ctx = {
      manifests,
      cache,
      nix: createFakeNix(),
      shell: createFakeShell(),
      clock: createFakeClock(),
      onEvent: () => {},
      secretsDir: '/var/lib/biz-secrets',
    };
  }, 180_000);
  afterAll(() => server?.close());

  it('push status lists every host (two listing pages)', async () => {
    const before = requests.length;
    const rows = await readFleet(ctx);
    expect(rows.map((r) => r.host)).toEqual(hosts);
    expect(rows.every((r) => r.outcome === 'applied')).toBe(true);
    expect(listings(before)).toBe(2);
  }, 60_000);

  it('push --wait sees every host live, reading each status once', async () => {
    const before = requests.length;
    const result = await waitForHosts(ctx, { hosts, etag: '"live"', since: 0, timeoutMs: 10_000 });
    expect(result.ok).toBe(true);
    expect(result.hosts.filter((h) => h.state === 'applied')).toHaveLength(N);
    expect(listings(before)).toBe(2);
    expect(requests.length - before).toBe(2 + N);
  }, 60_000);

  it('push history and push rollback --steps reach the oldest archive', async () => {
    const history = await readHistory(ctx, N + 10);
    expect(history).toHaveLength(N + 1); // the current manifest, then every archive
    expect(history[0]?.id).toBe('current');
    expect(history[1]?.id).toBe(archived(N - 1).id);
    expect(history[N]?.id).toBe(archived(0).id);
    expect(history.every((e) => e.problem === undefined)).toBe(true);
    // The archives are unsigned (written before signed manifests): read in migration mode.
    const dev = createFakeNix();
    await dev.generateKey('fleet-1', '/keys/sk', '/keys/pk');
    const signing = {
      secretKey: dev.files.get('/keys/sk') as string,
      trustedPublicKeys: [],
      allowUnsigned: true,
    };
    const rolled = await rollbackManifest(ctx, { steps: N }, signing);
    expect(rolled.archive.id).toBe(archived(0).id);
    expect(rolled.manifest.services[0]?.artifact.storePath).toBe(makeStorePath('web-v0'));
  }, 120_000);

  it('push gc finds every unreachable cache object and prunes archives to the newest --keep-archives', async () => {
    const plan = await planCacheGc(ctx, 2);
    expect(plan.delete.map((o) => o.key).sort()).toEqual([...junk].sort());
    const archives = await manifests.listArchives();
    expect(archives.length).toBeGreaterThan(N); // the rollback above archived one more
    const retention = planArchiveRetention(archives, 100);
    expect(retention.delete).toHaveLength(archives.length - 100);
    await applyArchiveRetention(ctx, retention);
    expect((await manifests.listArchives()).map((a) => a.id)).toEqual(
      archives.slice(0, 100).map((a) => a.id),
    );
  }, 120_000);
});
