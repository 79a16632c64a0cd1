import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { probeBucket } from '../../src/s3/index.js';
import { type ConditionBehaviour, createMemoryObjectStore } from '../../src/testing/index.js';
import { startS3Server, type TestS3Server } from '../support/s3-server.js';

/** What the probe finds for each provider behaviour: check → as compare-and-swap needs it. */
const EXPECTED: [ConditionBehaviour, string, [string, boolean][]][] = [
  [
    'aws',
    'conditional',
    [
      ['create', true],
      ['create-existing', true],
      ['if-match-quoted', true],
      ['if-match-stale', true],
    ],
  ],
  [
    'spaces-unquoted',
    'conditional-unquoted',
    [
      ['create', true],
      ['create-existing', true],
      ['if-match-quoted', false],
      ['if-match-unquoted', true],
      ['if-match-stale', true],
    ],
  ],
  [
    'ignores-conditions',
    'lease',
    [
      ['create', true],
      ['create-existing', false],
      ['if-match-quoted', true],
      ['if-match-stale', false],
    ],
  ],
  [
    'not-implemented',
    'lease',
    [
      ['create', false],
      ['create-existing', false],
      ['if-match-quoted', false],
      ['if-match-unquoted', false],
    ],
  ],
  [
    'no-if-none-match',
    'lease',
    [
      ['create', true],
      ['create-existing', false],
      ['if-match-quoted', true],
      ['if-match-stale', true],
    ],
  ],
];

describe('probeBucket', () => {
  let server: TestS3Server;
  beforeAll(async () => {
    server = await startS3Server();
  });
  afterAll(async () => server?.close());

  it.each(EXPECTED)('finds %s needs the write mode %s', async (behaviour, mode, checks) => {
    const memory = createMemoryObjectStore({ conditions: behaviour });
    server.conditions = behaviour;
    const s3 = server.objectStore({ proxy: true, prefix: `${behaviour}/` });
    for (const store of [memory, s3]) {
      const probe = await probeBucket(store);
      expect(probe.mode).toBe(mode);
      expect(probe.findings.map((f) => [f.check, f.ok])).toEqual(checks);
      expect(await store.list('probes/')).toEqual([]);
    }
  });

  it('says what it tried and what happened, one line per check', async () => {
    const probe = await probeBucket(createMemoryObjectStore({ conditions: 'spaces-unquoted' }));
    expect(probe.findings.map((f) => f.message)).toEqual([
      'If-None-Match: * on a new key: written',
      'If-None-Match: * on an existing key: refused',
      'If-Match with the current ETag, quoted ("a6f319dc2de53607f3bf0fac10006cf1"): refused (compare-and-swap needs it written)',
      'If-Match with the current ETag, unquoted (a6f319dc2de53607f3bf0fac10006cf1): written',
      'If-Match with a stale ETag, unquoted: refused',
    ]);
  });

  it('catches a bucket that answers a refusal but writes anyway', async () => {
    const store = createMemoryObjectStore();
    // A store that carries out an If-None-Match write and still answers 412.
    const lying = {
      ...store,
      async put(key: string, body: string | Uint8Array, options?: { ifNoneMatch?: '*'; ifMatch?: string }) {
        if (options?.ifNoneMatch && store.objects.has(key)) {
          await store.put(key, body);
          return store.put(key, body, { ifNoneMatch: '*' });
        }
        return store.put(key, body, options);
      },
    };
    const probe = await probeBucket(lying);
    expect(probe.mode).toBe('lease');
    expect(probe.findings.find((f) => f.check === 'read-back')?.message).toMatch(
      /answered "refused" but the object was replaced/,
    );
  });
});
