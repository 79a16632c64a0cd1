import { readFile } from 'node:fs/promises';
import { DeployError } from '../errors.js';
import { computeEtag } from '../s3/etag.js';
import { checkKeyPrefix, checkObjectKey } from '../s3/keys.js';
import type { GetObjectResult, ObjectStore, PutOptions, StoreRequest } from '../s3/object-store.js';

/** An object held by a {@link MemoryObjectStore}. */
export interface MemoryObject {
  body: Uint8Array;
  etag: string;
  contentType?: string;
  lastModified: Date;
}

/** Options of {@link createMemoryObjectStore}. */
export interface MemoryObjectStoreOptions {
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
 * tested against it.
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
      const status = (error as DeployError).code === 'S3_CONFLICT' ? 412 : 500;
      requests.push({ method, key, status });
      options.onRequest?.({ method, key, status });
      throw error;
    }
    requests.push({ method, key, status: outcome.status });
    options.onRequest?.({ method, key, status: outcome.status });
    return outcome.result;
  }

  function write(key: string, body: Uint8Array, put: PutOptions) {
    // Check and write in one synchronous step: no other request can interleave, as on S3.
    const current = objects.get(key);
    if ((put.ifNoneMatch === '*' && current) || (put.ifMatch && put.ifMatch !== current?.etag)) {
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
          .map(([key, object]) => ({ key, size: object.body.length, lastModified: object.lastModified })),
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
