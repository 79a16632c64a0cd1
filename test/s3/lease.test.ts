import { describe, expect, it } from 'vitest';
import { isDeployError } from '../../src/errors.js';
import { acquireLease, type LeaseOptions, type LeaseRecord, parseLease } from '../../src/s3/index.js';
import { createFakeClock, createMemoryObjectStore, type MemoryObjectStore } from '../../src/testing/index.js';
import { outcome } from './object-store-contract.js';

const KEY = 'leases/manifest.json';
const START = Date.parse('2030-01-01T00:00:00Z');

function world() {
  const clock = createFakeClock(START);
  const store = createMemoryObjectStore({
    conditions: 'ignores-conditions',
    now: () => new Date(clock.now()),
  });
  const options = (more: LeaseOptions = {}): LeaseOptions => ({
    owner: 'laptop pid 1',
    now: clock.now,
    sleep: clock.sleep,
    ...more,
  });
  return { clock, store, options };
}

const lockOf = (store: MemoryObjectStore): LeaseRecord | undefined => {
  const object = store.objects.get(KEY);
  return object ? (JSON.parse(Buffer.from(object.body).toString()) as LeaseRecord) : undefined;
};

const put = (store: MemoryObjectStore, record: Partial<LeaseRecord>) =>
  store.objects.set(KEY, {
    body: new TextEncoder().encode(
      JSON.stringify({
        version: 1,
        owner: 'desktop pid 2',
        nonce: 'theirs',
        acquiredAt: new Date(START).toISOString(),
        expiresAt: new Date(START + 60_000).toISOString(),
        ...record,
      }),
    ),
    etag: `"${Math.random()}"`,
    lastModified: new Date(),
  });

describe('acquireLease', () => {
  it('takes a free lease: writes the lock, settles, reads it back; check says held; release deletes it', async () => {
    const w = world();
    const lease = await acquireLease(w.store, KEY, w.options());
    expect(lockOf(w.store)).toEqual({
      version: 1,
      owner: 'laptop pid 1',
      nonce: lease.nonce,
      acquiredAt: '2030-01-01T00:00:00.000Z',
      expiresAt: '2030-01-01T00:01:00.000Z',
    });
    expect(w.clock.slept).toBe(2_000); // the settle time, then the read-back
    expect(w.store.requests.map((r) => `${r.method} ${r.status}`)).toEqual(['GET 404', 'PUT 200', 'GET 200']);
    expect(await lease.check()).toBe('held');
    await lease.release();
    expect(w.store.objects.has(KEY)).toBe(false);
  });

  it('says expired once less than the margin is left, and lost once another writer took it over', async () => {
    const w = world();
    const lease = await acquireLease(w.store, KEY, w.options());
    w.clock.advance(49_000); // 60 s lease, 10 s margin
    expect(await lease.check()).toBe('expired');
    put(w.store, { nonce: 'theirs' });
    expect(await lease.check()).toBe('lost');
    await lease.release();
    expect(lockOf(w.store)?.nonce).toBe('theirs'); // never deletes someone else's lock
    w.store.objects.delete(KEY);
    expect(await lease.check()).toBe('lost');
  });

  it('waits for a lease someone else holds, and takes it over once it has expired', async () => {
    const w = world();
    put(w.store, { expiresAt: new Date(START + 15_000).toISOString() });
    const waited: LeaseRecord[] = [];
    const lease = await acquireLease(w.store, KEY, w.options({ onWait: (holder) => waited.push(holder) }));
    expect(waited.map((h) => h.owner)).toEqual(['desktop pid 2']);
    expect(w.clock.now()).toBeGreaterThanOrEqual(START + 15_000);
    expect(lockOf(w.store)?.nonce).toBe(lease.nonce);
  });

  it('gives up waiting after waitMs, naming the holder and its expiry', async () => {
    const w = world();
    put(w.store, { expiresAt: new Date(START + 3_600_000).toISOString() });
    const error = await acquireLease(w.store, KEY, w.options({ waitMs: 30_000 })).catch((e: unknown) => e);
    expect(isDeployError(error, 'S3_CONFLICT')).toBe(true);
    expect((error as Error).message).toBe(
      'memory://store/leases/manifest.json: expected to take the lease within 30 s, found it held by "desktop pid 2" until 2030-01-01T01:00:00.000Z; if no push is running there, delete the lease object',
    );
    expect(lockOf(w.store)?.nonce).toBe('theirs');
  });

  it('backs off when a competitor’s lock lands after its own, before the read-back', async () => {
    const w = world();
    let raced = false;
    w.store.beforeRequest = ({ method }) => {
      // Right after our lock write, another push's write lands (it read the lock as free before ours).
      if (method === 'GET' && w.store.objects.has(KEY) && !raced) {
        raced = true;
        put(w.store, { expiresAt: new Date(START + 20_000).toISOString() });
      }
    };
    const waited: string[] = [];
    const lease = await acquireLease(w.store, KEY, w.options({ onWait: (h) => waited.push(h.nonce) }));
    expect(waited).toEqual(['theirs']);
    expect(w.clock.now()).toBeGreaterThanOrEqual(START + 20_000);
    expect(lockOf(w.store)?.nonce).toBe(lease.nonce);
  });

  it('settles longer when its own read-then-write took longer than the settle time', async () => {
    const w = world();
    let slow = true;
    w.store.beforeRequest = ({ method }) => {
      if (method === 'PUT' && slow) {
        slow = false;
        w.clock.advance(5_000); // a write that took 5 s: a competitor's may be as slow
      }
    };
    const lease = await acquireLease(w.store, KEY, w.options());
    expect(w.clock.slept).toBe(5_000);
    expect(w.store.requests.map((r) => `${r.method} ${r.status}`)).toEqual(['GET 404', 'PUT 200', 'GET 200']);
    expect(lockOf(w.store)?.nonce).toBe(lease.nonce);
  });

  it('refuses a damaged lock object instead of taking it for free', async () => {
    const w = world();
    w.store.objects.set(KEY, {
      body: new TextEncoder().encode('{"owner":'),
      etag: '"x"',
      lastModified: new Date(),
    });
    expect(await outcome(acquireLease(w.store, KEY, w.options()))).toBe('S3_INVALID');
    expect(() =>
      parseLease('{"version":1,"owner":"a","nonce":"","acquiredAt":"x","expiresAt":"y"}', 'lock'),
    ).toThrow(
      /^lock: expected \{"version":1,"owner","nonce","acquiredAt","expiresAt"\}, found nonce: .*; if no push is running, delete it$/,
    );
  });

  it('refuses timings that leave no time to write', async () => {
    const w = world();
    expect(await outcome(acquireLease(w.store, KEY, w.options({ ttlMs: 5_000, marginMs: 5_000 })))).toBe(
      'S3_INPUT',
    );
    expect(w.store.requests).toEqual([]);
  });
});
