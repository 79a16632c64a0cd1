import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDirectoryObjectStore, type StoreRequest } from '../../src/s3/index.js';
import { type ConditionBehaviour, createMemoryObjectStore } from '../../src/testing/index.js';
import { startS3Server } from '../support/s3-server.js';
import { manifestStoreContract } from './manifest-store-contract.js';
import { objectStoreContract, type StoreHarness, type StoreTraits } from './object-store-contract.js';

function imitating(conditions: ConditionBehaviour) {
  return async (): Promise<StoreHarness> => {
    const requests: StoreRequest[] = [];
    return {
      store: createMemoryObjectStore({ conditions, onRequest: (r) => requests.push(r) }),
      requests,
      async cleanup() {},
    };
  };
}

async function memory(): Promise<StoreHarness> {
  const requests: StoreRequest[] = [];
  return {
    store: createMemoryObjectStore({ onRequest: (r) => requests.push(r) }),
    requests,
    async cleanup() {},
  };
}

async function directory(): Promise<StoreHarness> {
  const dir = mkdtempSync(join(tmpdir(), 'omni-dir-store-'));
  const requests: StoreRequest[] = [];
  return {
    store: createDirectoryObjectStore({ dir, onRequest: (r) => requests.push(r) }),
    requests,
    async cleanup() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function s3(viaEnforcingProxy: boolean, conditions: ConditionBehaviour = 'aws') {
  return async (): Promise<StoreHarness> => {
    const server = await startS3Server();
    server.conditions = conditions;
    const requests: StoreRequest[] = [];
    return {
      // Small parts, so the contract's 12 MiB upload is a real multipart upload.
      store: server.objectStore({
        proxy: viaEnforcingProxy,
        partSize: 5 * 1024 * 1024,
        multipartThreshold: 5 * 1024 * 1024,
        prefix: 'deploy/',
        onRequest: (r) => requests.push(r),
      }),
      requests,
      cleanup: () => server.close(),
    };
  };
}

for (const [name, make, enforcesConditionalWrites, consistent] of [
  ['memory', memory, true, true],
  ['local directory', directory, true, true],
  ['S3 on s3rver', s3(false), false, false],
  ['S3 on s3rver behind a proxy enforcing conditions as AWS does', s3(true), true, true],
] as const) {
  objectStoreContract(name, make, { enforcesConditionalWrites });
  manifestStoreContract(name, make, { enforcesConditionalWrites, consistent });
}

/**
 * Providers' conditional-write behaviours, imitated by the memory store and by the proxy in front of s3rver: the
 * manifest store's contract (compare-and-swap, or the lease where conditions are not enforced) holds on each.
 */
const IMITATIONS: [ConditionBehaviour, StoreTraits][] = [
  ['aws', { enforcesConditionalWrites: true, mode: 'conditional' }],
  ['spaces-unquoted', { enforcesConditionalWrites: true, mode: 'conditional-unquoted' }],
  ['ignores-conditions', { enforcesConditionalWrites: false, mode: 'lease' }],
  ['not-implemented', { enforcesConditionalWrites: false, conditionsNotImplemented: true, mode: 'lease' }],
  ['no-if-none-match', { enforcesConditionalWrites: false, mode: 'lease' }],
];
for (const [behaviour, traits] of IMITATIONS) {
  manifestStoreContract(`memory imitating ${behaviour}`, imitating(behaviour), traits);
  manifestStoreContract(`S3 on s3rver behind a proxy imitating ${behaviour}`, s3(true, behaviour), traits);
}
