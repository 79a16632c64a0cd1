import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { quarterOfFleet, stagedRollout } from '../../bench/fleet/rollout.js';
import { createFleet, type Fleet } from '../../bench/fleet/sim.js';
import { byKind, classify, peak, type RequestRecord, windows, wireRate } from '../../bench/fleet/traffic.js';
import { readFleet, readRollout } from '../../src/push/index.js';
import { makeStorePath } from '../../src/testing/index.js';
import { startS3Server, type TestS3Server } from '../support/s3-server.js';

describe('the fleet bench arithmetic', () => {
  it.each([
    ['GET', '/b/run/manifest.json', 'GET manifest'],
    ['PUT', '/b/run/status/h1.json', 'PUT status'],
    ['GET', '/b/run/status/h1.json?x-id=GetObject', 'GET status'],
    ['GET', '/b?list-type=2&prefix=run%2Fstatus%2F', 'LIST status'],
    ['GET', '/b/?list-type=2&prefix=run%2Fmanifests%2Fmanifest-', 'LIST archive'],
    ['PUT', '/b/run/manifests/manifest-20250115T123456.789Z.json', 'PUT archive'],
    ['GET', '/b/run/bucket-mode.json', 'GET other'],
  ])('%s %s is %s', (method, url, kind) => {
    expect(classify(method, url, 'b')).toBe(kind);
  });

  it('counts rates, windows and the busiest second', () => {
    const at = (ms: number, kind = 'GET manifest', status = 304): RequestRecord => [ms, kind, status];
    const requests = [at(0), at(100), at(900), at(1500), at(2100, 'PUT status', 200), at(2950)];
    const span = { from: 0, to: 3000 };
    expect(windows(requests, span)).toEqual([3, 1, 2]);
    expect(peak(requests, span)).toBe(3);
    expect(byKind(requests)).toEqual({ 'GET manifest 304': 5, 'PUT status': 1 });
    // Interpolated at both ends (500 B in at 0.5 s, 3,000 B at 2 s): 2,500 B in and 150 B out over 1.5 s.
    const wire: [number, number, number][] = [
      [0, 0, 0],
      [1000, 1000, 100],
      [3000, 5000, 300],
    ];
    expect(wireRate(wire, { from: 500, to: 2000 })).toEqual({ in: 2500 / 1.5, out: 150 / 1.5 });
  });
});

describe('the fleet simulation, 3 hosts against s3rver', () => {
  let server: TestS3Server;
  let fleet: Fleet;
  beforeAll(async () => {
    server = await startS3Server();
    fleet = await createFleet({
      endpoint: server.proxyEndpoint,
      bucket: server.bucket,
      prefix: 'sim/',
      hosts: 3,
      intervalMs: 1000,
      settleMs: 100,
    });
  });
  afterAll(async () => {
    await fleet?.stop();
    await server?.close();
  });

  it('runs the real tick on every host: a first deploy, then a push that every host applies', async () => {
    for (const name of ['web', 'api', 'worker']) await fleet.deploy(name, '1');
    const seed = await fleet.push.manifests.read();
    if (seed.status !== 'found') throw new Error('no manifest');
    fleet.start('spread');
    await fleet.allLive(seed.etag, 20_000);
    const { etag } = await fleet.deploy('web', '2');
    const live = await fleet.allLive(etag, 20_000);
    expect(live).toHaveLength(3);
    for (const host of fleet.hosts) {
      expect(host.liveTick(etag)?.outcome).toBe('applied');
      expect(host.systemd.calls.filter((c) => c.startsWith('restart deploy-web'))).not.toEqual([]);
    }
    const rows = await readFleet(fleet.push);
    expect(rows.map((r) => [r.host, r.outcome, r.services])).toEqual(
      fleet.names.map((host) => [host, 'applied', '3/3 healthy']),
    );
  }, 60_000);

  it('rolls a new version out in stages with the rollout driver of push deploy --canary, each timed', async () => {
    // web is on version 2 on every host (the test above); the canary and two waves of one host each.
    const driver = stagedRollout({ canary: 1, maxParallel: 1, minHealthyTimeMs: 500, pollMs: 200 });
    const result = await driver.run(fleet, { service: 'web', version: '3' });
    expect(result.stages.map((s) => s.hosts)).toEqual([1, 1, 1]);
    for (const stage of result.stages) {
      expect(stage.liveMs).toBeGreaterThan(0);
      // A stage lasts until its hosts are healthy, then --min-healthy-time more.
      expect(stage.ms).toBeGreaterThanOrEqual(stage.liveMs + 500);
    }
    expect(result.liveMs).toBeLessThanOrEqual(result.totalMs);
    expect(result.totalMs).toBeGreaterThanOrEqual(result.stages.reduce((sum, s) => sum + s.ms, 0));
    const record = await readRollout(fleet.push);
    expect(record).toMatchObject({ service: 'web', state: 'done', waves: fleet.names.map((h) => [h]) });
    expect(record?.switched).toEqual(fleet.names);
    const rows = await readFleet(fleet.push);
    for (const row of rows) expect(row.services).toBe('3/3 healthy');
    for (const host of fleet.hosts) {
      const state = await host.ctx.adapters.state.load();
      expect(state?.services?.web?.storePath).toBe(makeStorePath('web-3'));
    }
  }, 60_000);

  it.each([
    [1, 1],
    [3, 1],
    [10, 3],
    [100, 25],
    [1000, 250],
  ])('the bench waves of %i hosts after the canary are %i at a time', (hosts, each) => {
    expect(quarterOfFleet(hosts)).toBe(each);
  });
});
