import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDirectoryObjectStore, type StoreRequest } from '../../src/s3/index.js';
import { createMemoryObjectStore } from '../../src/testing/index.js';
import { startS3Server } from '../support/s3-server.js';
import { manifestStoreContract } from './manifest-store-contract.js';
import { objectStoreContract, type StoreHarness } from './object-store-contract.js';

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

function s3(viaEnforcingProxy: boolean) {
  return async (): Promise<StoreHarness> => {
    const server = await startS3Server();
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

for (const [name, make, enforcesConditionalWrites] of [
  ['memory', memory, true],
  ['local directory', directory, true],
  ['S3 on s3rver', s3(false), false],
  ['S3 on s3rver behind a proxy enforcing conditions as AWS does', s3(true), true],
] as const) {
  objectStoreContract(name, make, { enforcesConditionalWrites });
  manifestStoreContract(name, make, { enforcesConditionalWrites });
}
