import { describe, expect, it } from 'vitest';
import { isDeployError } from '../../src/errors.js';
import {
  BUCKET_MODE_KEY,
  type BucketModeRecord,
  parseBucketMode,
  readBucketMode,
  renderBucketMode,
  type UpdateManifestEvent,
  updateManifest,
  writeBucketMode,
} from '../../src/s3/index.js';
import { createMemoryManifestStore, createMemoryObjectStore } from '../../src/testing/index.js';

const record = (overrides: Record<string, unknown> = {}) => ({
  version: 1,
  mode: 'conditional-unquoted',
  probedAt: '2030-01-01T00:00:00.000Z',
  findings: [{ check: 'create', ok: true, message: 'If-None-Match: * on a new key: written' }],
  ...overrides,
});

describe('parseBucketMode', () => {
  it('reads back what is rendered', () => {
    const parsed = parseBucketMode(JSON.stringify(record()), 'x');
    expect(parsed).toEqual(record());
    expect(parseBucketMode(renderBucketMode(parsed), 'x')).toEqual(parsed);
  });

  it.each([
    [
      'not JSON',
      '{"version":',
      /^s3:\/\/b\/bucket-mode\.json: expected JSON, found something else; run "push init"/,
    ],
    [
      'an unknown mode',
      JSON.stringify(record({ mode: 'yolo' })),
      /expected \{"version":1,"mode":"conditional"\|"conditional-unquoted"\|"lease",.*found mode: Invalid type: Expected \("conditional" \| "conditional-unquoted" \| "lease"\) but received "yolo"/,
    ],
    ['a newer version', JSON.stringify(record({ version: 2 })), /a newer push may have written it/],
    ['no probe time', JSON.stringify(record({ probedAt: undefined })), /found probedAt: /],
    ['a probe time that is no time', JSON.stringify(record({ probedAt: 'yesterday' })), /found probedAt: /],
    ['findings that are no list', JSON.stringify(record({ findings: 'ok' })), /found findings: /],
    ['an array', '[]', /found an array of 0; run/],
    ['no version', JSON.stringify(record({ version: undefined })), /found version: [^(]*; run/],
    ['too many bytes', JSON.stringify(record({ pad: 'x'.repeat(70_000) })), /expected at most 65536 bytes/],
  ])('refuses %s, naming the object and saying to re-run push init', (_name, text, message) => {
    let error: unknown;
    try {
      parseBucketMode(text, 's3://b/bucket-mode.json');
    } catch (e) {
      error = e;
    }
    expect(isDeployError(error, 'S3_INVALID')).toBe(true);
    expect((error as Error).message).toMatch(message);
    expect((error as Error).message).toMatch(/run "push init" to probe the bucket and write it again$/);
  });
});

describe('the recorded write mode', () => {
  it('is written beside the manifest and read back; absent, it is undefined', async () => {
    const objects = createMemoryObjectStore();
    expect(await readBucketMode(objects)).toBeUndefined();
    await writeBucketMode(objects, record() as BucketModeRecord);
    expect(objects.objects.has(BUCKET_MODE_KEY)).toBe(true);
    expect(await readBucketMode(objects)).toEqual(record());
  });

  it('without a record, updateManifest writes with compare-and-swap and says to run push init', async () => {
    const store = createMemoryManifestStore();
    const events: UpdateManifestEvent[] = [];
    const result = await updateManifest(store, () => '{}', {
      now: () => new Date(),
      onEvent: (e) => events.push(e),
    });
    expect(result.mode).toBe('conditional');
    expect(events).toEqual([
      {
        type: 'mode-missing',
        message:
          'no bucket-mode.json beside memory://store/manifest.json: writing with compare-and-swap; run "push init" to probe the bucket (on one that ignores conditional writes, two pushes at once can lose an update)',
      },
    ]);
  });

  it('damaged, it stops a write before anything is written', async () => {
    const store = createMemoryManifestStore();
    await store.objects.put(BUCKET_MODE_KEY, JSON.stringify(record({ mode: 'optimistic' })));
    const before = store.objects.requests.length;
    const error = await updateManifest(store, () => '{}', { now: () => new Date() }).catch((e: unknown) => e);
    expect(isDeployError(error, 'S3_INVALID')).toBe(true);
    expect((error as Error).message).toMatch(/^memory:\/\/store\/bucket-mode\.json: expected/);
    expect(store.objects.requests.slice(before).map((r) => r.method)).toEqual(['GET']);
  });

  it('lease, recorded, makes updateManifest take the lease: no condition is sent, the lock is gone after', async () => {
    const store = createMemoryManifestStore({ conditions: 'not-implemented' });
    await writeBucketMode(store.objects, record({ mode: 'lease' }) as BucketModeRecord);
    const lease = { settleMs: 5, pollMs: 5, ttlMs: 1_000, marginMs: 100 };
    const first = await updateManifest(store, () => '{"v":1}', { now: () => new Date(), lease });
    const second = await updateManifest(store, () => '{"v":2}', { now: () => new Date(), lease });
    expect([first.mode, second.mode, second.archive?.key.startsWith('manifests/manifest-')]).toEqual([
      'lease',
      'lease',
      true,
    ]);
    expect(store.objects.objects.has('leases/manifest.json')).toBe(false);
    expect(store.objects.requests.filter((r) => r.status === 501)).toEqual([]);
  });
});
