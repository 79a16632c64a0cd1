import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFleet, type Fleet } from '../../bench/fleet/sim.js';
import { byKind, classify, peak, type RequestRecord, windows, wireRate } from '../../bench/fleet/traffic.js';
import { readFleet } from '../../src/push/index.js';
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
});
