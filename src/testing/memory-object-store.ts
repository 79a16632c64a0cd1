import { readFile } from 'node:fs/promises';
import { DeployError } from '../errors.js';
import { computeEtag, sameEtag } from '../s3/etag.js';
import { checkKeyPrefix, checkObjectKey } from '../s3/keys.js';
import type { GetObjectResult, ObjectStore, PutOptions, StoreRequest } from '../s3/object-store.js';

/** An object held by a {@link MemoryObjectStore}. */
export interface MemoryObject {
  body: Uint8Array;
  etag: string;
  contentType?: string;
  lastModified: Date;
}

/**
 * How a store treats `If-Match` / `If-None-Match` on writes, after S3-compatible providers:
 * - `aws`: both enforced, atomically, 412 on a mismatch (AWS S3, Cloudflare R2, MinIO);
 * - `spaces-unquoted`: `If-None-Match` enforced; `If-Match` compared only in the unquoted form, so a quoted ETag
 *   is refused (412) even when it matches (DigitalOcean Spaces, as reported in slatedb/slatedb#1818);
 * - `ignores-conditions`: both ignored, every write lands (Garage, s3rver, Spaces as reported in denoland/celld#137);
 * - `not-implemented`: a write with either header is refused with 501 NotImplemented (Backblaze B2);
 * - `no-if-none-match`: `If-Match` enforced, `If-None-Match` ignored.
 */
export type ConditionBehaviour =
  | 'aws'
  | 'spaces-unquoted'
  | 'ignores-conditions'
  | 'not-implemented'
  | 'no-if-none-match';

/** Options of {@link createMemoryObjectStore}. */
export interface MemoryObjectStoreOptions {
  /** How conditional writes are treated. Default `aws`. */
  conditions?: ConditionBehaviour;
  /** Shown in URLs and messages: `memory://<name>/`. Default `store`. */
  name?: string;
  /** Called after every operation, as if it were an HTTP request. */
  onRequest?: (request: StoreRequest) => void;
  /** Stamps `lastModified`. Default: the real clock. */
  now?: () => Date;
}

/** An in-memory {@link ObjectStore} with the handles a test needs. */
export interface MemoryObjectStore extends ObjectStore {
  /** The objects, by key: inspect or seed them directly. */
  readonly objects: Map<string, MemoryObject>;
  /** Every request so far, in order. */
  readonly requests: StoreRequest[];
  /**
   * Called before each operation is carried out; throw from it to make the operation fail (say, a
   * `DeployError('S3_UNREACHABLE', ...)`), or write to `objects` to simulate a concurrent writer.
   */
  beforeRequest: ((request: Omit<StoreRequest, 'status'>) => void | Promise<void>) | undefined;
}

/**
 * Creates a {@link MemoryObjectStore}: the object store of unit tests. Unlike s3rver it enforces `If-Match` and
 * `If-None-Match` on writes, atomically, as AWS S3 does: the compare-and-swap paths of the manifest store are
 * tested against it. With `conditions` it imitates providers that do not (see {@link ConditionBehaviour}).
 */
export function createMemoryObjectStore(options: MemoryObjectStoreOptions = {}): MemoryObjectStore {
  const objects = new Map<string, MemoryObject>();
  const requests: StoreRequest[] = [];
  const url = `memory://${options.name ?? 'store'}/`;
  const now = options.now ?? (() => new Date());

  async function request<T>(
    method: StoreRequest['method'],
    key: string,
    fn: () => { result: T; status: number },
  ): Promise<T> {
    await store.beforeRequest?.({ method, key });
    let outcome: { result: T; status: number };
    try {
      outcome = fn();
    } catch (error) {
      const code = (error as DeployError).code;
      const status = code === 'S3_CONFLICT' ? 412 : code === 'S3_UNSUPPORTED' ? 501 : 500;
      requests.push({ method, key, status });
      options.onRequest?.({ method, key, status });
      throw error;
    }
    requests.push({ method, key, status: outcome.status });
    options.onRequest?.({ method, key, status: outcome.status });
    return outcome.result;
  }

  const conditions = options.conditions ?? 'aws';
  const ifMatchHolds = (ifMatch: string, etag: string | undefined) => {
    if (etag === undefined) return false;
    if (conditions !== 'spaces-unquoted') return ifMatch === etag;
    return !ifMatch.startsWith('"') && sameEtag(ifMatch, etag);
  };

  function write(key: string, body: Uint8Array, put: PutOptions) {
    // Check and write in one synchronous step: no other request can interleave, as on S3.
    const current = objects.get(key);
    const conditional = put.ifMatch !== undefined || put.ifNoneMatch !== undefined;
    if (conditional && conditions === 'not-implemented') {
      throw new DeployError(
        'S3_UNSUPPORTED',
        `PUT ${url}${key}: the server does not implement conditional writes (HTTP 501 NotImplemented)`,
        { details: { status: 501 } },
      );
    }
    const checkIfMatch = conditions !== 'ignores-conditions';
    const checkIfNoneMatch = conditions !== 'ignores-conditions' && conditions !== 'no-if-none-match';
    if (
      (checkIfNoneMatch && put.ifNoneMatch === '*' && current) ||
      (checkIfMatch && put.ifMatch && !ifMatchHolds(put.ifMatch, current?.etag))
    ) {
      const expected = put.ifMatch ? `ETag ${put.ifMatch}` : 'no object';
      throw new DeployError(
        'S3_CONFLICT',
        `PUT ${url}${key}: expected ${expected}, found ${current ? `ETag ${current.etag}` : 'no object'} (changed by another writer)`,
        { details: { status: 412, expected: put.ifMatch ?? put.ifNoneMatch, found: current?.etag } },
      );
    }
    const etag = computeEtag(body);
    objects.set(key, {
      body,
      etag,
      lastModified: now(),
      ...(put.contentType ? { contentType: put.contentType } : {}),
    });
    return { result: { etag }, status: 200 };
  }

  const store: MemoryObjectStore = {
    url,
    objects,
    requests,
    beforeRequest: undefined,

    async get(key, get = {}) {
      checkObjectKey(key);
      return request<GetObjectResult>('GET', key, () => {
        const object = objects.get(key);
        if (!object) return { result: { status: 'missing' as const }, status: 404 };
        if (get.ifNoneMatch === object.etag)
          return { result: { status: 'not-modified' as const, etag: object.etag }, status: 304 };
        return {
          result: {
            status: 'found' as const,
            text: Buffer.from(object.body).toString('utf8'),
            etag: object.etag,
            lastModified: object.lastModified,
          },
          status: 200,
        };
      });
    },

    async head(key) {
      checkObjectKey(key);
      return request('HEAD', key, () => {
        const object = objects.get(key);
        return object
          ? { result: { size: object.body.length, etag: object.etag }, status: 200 }
          : { result: undefined, status: 404 };
      });
    },

    async put(key, body, put = {}) {
      checkObjectKey(key);
      const bytes = typeof body === 'string' ? Buffer.from(body) : Uint8Array.from(body);
      return request('PUT', key, () => write(key, bytes, put));
    },

    async upload(key, file, upload = {}) {
      checkObjectKey(key);
      const bytes = await readFile(file);
      const result = await request('PUT', key, () =>
        write(key, bytes, upload.contentType ? { contentType: upload.contentType } : {}),
      );
      upload.onProgress?.(bytes.length);
      return result;
    },

    async list(prefix, listOptions = {}) {
      checkKeyPrefix(prefix);
      return request('GET', prefix, () => ({
        result: [...objects]
          .filter(([key]) => key.startsWith(prefix))
          .filter(([key]) => listOptions.recursive !== false || !key.slice(prefix.length).includes('/'))
          .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
          .map(([key, object]) => ({
            key,
            size: object.body.length,
            lastModified: object.lastModified,
            etag: object.etag,
          })),
        status: 200,
      }));
    },

    async delete(key) {
      checkObjectKey(key);
      return request('DELETE', key, () => {
        objects.delete(key);
        return { result: undefined, status: 204 };
      });
    },
  };
  return store;
}
