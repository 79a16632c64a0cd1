import { describe, expect, it } from 'vitest';
import type { PushContext } from '../../src/push/context.js';
import { createStatusReader } from '../../src/push/status-reader.js';
import { waitForHosts } from '../../src/push/wait.js';
import {
  createFakeClock,
  createFakeNix,
  createFakeShell,
  createMemoryManifestStore,
  type MemoryManifestStore,
} from '../../src/testing/index.js';
import { storePath } from '../builders.js';

const names = (n: number) => Array.from({ length: n }, (_, i) => `h${i}`);
const report = (host: string, etag: string, version = '2') => ({
  host,
  deployerVersion: '0.1.0',
  updatedAt: '2025-01-15T12:00:10Z',
  etag,
  generation: 'g',
  lastTick: { at: '2025-01-15T12:00:10Z', outcome: 'applied' },
  services: [
    { name: 'web', storePath: storePath(`web-${version}`), health: 'healthy', since: '2025-01-15T12:00:10Z' },
  ],
  failures: [],
  rollbacks: 0,
});

/** The requests made while `fn` ran, as `GET status/` (a listing) or `GET status/h1.json`. */
async function requestsOf(store: MemoryManifestStore, fn: () => Promise<unknown>): Promise<string[]> {
  const before = store.objects.requests.length;
  await fn();
  return store.objects.requests.slice(before).map((r) => `${r.method} ${r.key}`);
}

describe('createStatusReader (push --wait)', () => {
  it('reads a few hosts directly, one request each', async () => {
    const store = createMemoryManifestStore();
    for (const host of names(3)) await store.writeStatus(host, report(host, '"e1"'));
    const reader = createStatusReader(store);
    let got = new Map<string, { status: unknown } | undefined>();
    const requests = await requestsOf(store, async () => {
      got = await reader.read(names(3));
    });
    expect(requests.sort()).toEqual(['GET status/h0.json', 'GET status/h1.json', 'GET status/h2.json']);
    expect(got.get('h1')?.status).toEqual(report('h1', '"e1"'));
  });

  it('lists many hosts once per round and reads only the statuses that changed', async () => {
    const store = createMemoryManifestStore();
    const hosts = names(100);
    for (const host of hosts.slice(0, 90)) await store.writeStatus(host, report(host, '"e1"'));
    const reader = createStatusReader(store);

    const first = await requestsOf(store, () => reader.read(hosts));
    expect(first.filter((r) => r === 'GET status/')).toHaveLength(1);
    expect(first.filter((r) => r !== 'GET status/')).toHaveLength(90); // h90..h99 never reported: not read

    expect(await requestsOf(store, () => reader.read(hosts))).toEqual(['GET status/']);

    await store.writeStatus('h5', report('h5', '"e2"'));
    await store.writeStatus('h95', report('h95', '"e2"'));
    let got = new Map<string, { status: unknown } | undefined>();
    const third = await requestsOf(store, async () => {
      got = await reader.read(hosts);
    });
    expect(third.sort()).toEqual(['GET status/', 'GET status/h5.json', 'GET status/h95.json']);
    // Every host as a direct read would see it.
    for (const host of hosts)
      expect(got.get(host)?.status, host).toEqual((await store.readStatus(host))?.status);
    expect(got.get('h99')).toBeUndefined();
  });

  it('forgets a status that was deleted', async () => {
    const store = createMemoryManifestStore();
    const hosts = names(40);
    for (const host of hosts) await store.writeStatus(host, report(host, '"e1"'));
    const reader = createStatusReader(store);
    await reader.read(hosts);
    await store.objects.delete('status/h7.json');
    expect((await reader.read(hosts)).get('h7')).toBeUndefined();
  });
});

describe('waitForHosts with many hosts', () => {
  it('costs a listing per round and one read per status written, not a read per host per round', async () => {
    const manifests = createMemoryManifestStore();
    const clock = createFakeClock();
    const hosts = names(200);
    const ctx: PushContext = {
      manifests,
      cache: undefined,
      nix: createFakeNix(),
      shell: createFakeShell(),
      clock,
      onEvent: () => {},
      secretsDir: '/x',
    };
    for (const host of hosts) await manifests.writeStatus(host, report(host, '"old"', '1'));
    // The hosts report the new manifest one batch of 50 per 2 s round, as their polls come around.
    let round = 0;
    const original = clock.sleep.bind(clock);
    clock.sleep = async (ms) => {
      for (const host of hosts.slice(round * 50, round * 50 + 50))
        await manifests.writeStatus(host, report(host, '"new"'));
      round++;
      await original(ms);
    };
    const before = manifests.objects.requests.length;
    const result = await waitForHosts(ctx, {
      hosts,
      etag: '"new"',
      since: Date.parse('2025-01-15T12:00:00Z'),
      timeoutMs: 60_000,
      intervalMs: 2000,
      service: { name: 'web', storePath: storePath('web-2') },
    });
    expect(result.ok).toBe(true);
    expect(result.hosts.every((h) => h.state === 'applied')).toBe(true);
    const requests = manifests.objects.requests.slice(before).filter((r) => r.method === 'GET');
    const lists = requests.filter((r) => r.key === 'status/').length;
    expect(lists).toBe(5); // the first round and one after each batch
    expect(requests.length - lists).toBe(200 + 200); // every status read once as it was, once as it became
  });
});
