import { copyFile, lstat, mkdir, open, readdir, readFile, rmdir, stat, unlink } from 'node:fs/promises';
import { DeployError } from '../errors.js';
import { replaceFileAtomic } from '../runtime/atomic-write.js';
import { computeEtag } from './etag.js';
import { checkKeyPrefix, checkObjectKey } from './keys.js';
import type { ObjectInfo, ObjectStore, PutOptions, StoreRequest } from './object-store.js';

/** Options of {@link createDirectoryObjectStore}. */
export interface DirectoryObjectStoreOptions {
  /** Absolute directory holding the objects; keys are relative paths under it. */
  dir: string;
  /** Called after every operation, as if it were an HTTP request (GET, HEAD, PUT, DELETE). */
  onRequest?: (request: StoreRequest) => void;
  /** A lock older than this is left by a dead writer and is taken over. Default 30 s. */
  staleLockMs?: number;
}

/**
 * An {@link ObjectStore} in a local directory, for demos, tests and air-gapped hosts. Writes are atomic
 * (temporary file, fsync, rename) and conditional writes are enforced: a lock directory per key (`mkdir` is
 * atomic) serialises writers across processes on the same filesystem, so compare-and-swap holds here too.
 * Temporary and lock files start with `.`, which no key may, so they never show up as objects.
 */
export function createDirectoryObjectStore(options: DirectoryObjectStoreOptions): ObjectStore {
  const dir = options.dir.replace(/\/+$/, '');
  if (!dir.startsWith('/'))
    throw new DeployError(
      'S3_INPUT',
      `directory store: expected an absolute path, found ${JSON.stringify(options.dir)}`,
    );
  const url = `file://${dir}/`;
  const staleLockMs = options.staleLockMs ?? 30_000;
  const report = (method: StoreRequest['method'], key: string, status: number) =>
    options.onRequest?.({ method, key, status });
  const pathOf = (key: string) => `${dir}/${checkObjectKey(key)}`;

  async function readCurrent(path: string): Promise<Buffer | undefined> {
    try {
      return await readFile(path);
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw ioError(error, 'read', path);
    }
  }

  /** Writes `path` atomically: a reader sees the old or the new content, never a mix. */
  async function writeAtomically(path: string, write: (tmp: string) => Promise<void>) {
    try {
      await replaceFileAtomic(path, write);
    } catch (error) {
      throw ioError(error, 'write', path);
    }
  }

  async function withLock<T>(path: string, fn: () => Promise<T>): Promise<T> {
    const slash = path.lastIndexOf('/');
    await mkdir(path.slice(0, slash), { recursive: true });
    const lock = `${path.slice(0, slash)}/.lock-${path.slice(slash + 1)}`;
    for (let attempt = 0; ; attempt++) {
      try {
        await mkdir(lock);
        break;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw ioError(error, 'lock', path);
        const age = await stat(lock).then(
          (s) => Date.now() - s.mtimeMs,
          () => 0,
        );
        if (age > staleLockMs) await rmdir(lock).catch(() => {});
        else await sleep(Math.min(50, 2 + attempt * 2));
      }
    }
    try {
      return await fn();
    } finally {
      await rmdir(lock).catch(() => {});
    }
  }

  async function conditionalWrite(
    key: string,
    put: PutOptions,
    write: (tmp: string) => Promise<void>,
    etagOf: () => Promise<string>,
  ) {
    const path = pathOf(key);
    if (!put.ifMatch && !put.ifNoneMatch) {
      await writeAtomically(path, write);
      return etagOf();
    }
    return withLock(path, async () => {
      const current = await readCurrent(path);
      const currentEtag = current === undefined ? undefined : computeEtag(current);
      if (
        (put.ifNoneMatch === '*' && current !== undefined) ||
        (put.ifMatch && put.ifMatch !== currentEtag)
      ) {
        report('PUT', key, 412);
        const expected = put.ifMatch ? `ETag ${put.ifMatch}` : 'no object';
        throw new DeployError(
          'S3_CONFLICT',
          `PUT ${url}${key}: expected ${expected}, found ${currentEtag ? `ETag ${currentEtag}` : 'no object'} (changed by another writer)`,
          { details: { status: 412, expected: put.ifMatch ?? put.ifNoneMatch, found: currentEtag } },
        );
      }
      await writeAtomically(path, write);
      return etagOf();
    });
  }

  return {
    url,

    async get(key, get = {}) {
      const path = pathOf(key);
      const body = await readCurrent(path);
      if (body === undefined) {
        report('GET', key, 404);
        return { status: 'missing' };
      }
      const etag = computeEtag(body);
      if (get.ifNoneMatch === etag) {
        report('GET', key, 304);
        return { status: 'not-modified', etag };
      }
      report('GET', key, 200);
      const info = await stat(path).catch(() => undefined);
      return {
        status: 'found',
        text: body.toString('utf8'),
        etag,
        ...(info ? { lastModified: info.mtime } : {}),
      };
    },

    async head(key) {
      const body = await readCurrent(pathOf(key));
      report('HEAD', key, body === undefined ? 404 : 200);
      return body === undefined ? undefined : { size: body.length, etag: computeEtag(body) };
    },

    async put(key, body, put = {}) {
      const bytes = typeof body === 'string' ? Buffer.from(body) : body;
      const etag = await conditionalWrite(
        key,
        put,
        async (tmp) => {
          const handle = await open(tmp, 'wx');
          await handle.writeFile(bytes).finally(() => handle.close());
        },
        async () => computeEtag(bytes),
      );
      report('PUT', key, 200);
      return { etag };
    },

    async upload(key, file, upload = {}) {
      const path = pathOf(key);
      const etag = await conditionalWrite(
        key,
        {},
        (tmp) => copyFile(file, tmp),
        async () => computeEtag(await readFile(path)),
      );
      upload.onProgress?.((await stat(path)).size);
      report('PUT', key, 200);
      return { etag };
    },

    async list(prefix, listOptions = {}) {
      checkKeyPrefix(prefix);
      // Walk only below the prefix's directory part: listing `manifests/manifest-` must not read `nar/`.
      const base = prefix.includes('/') ? prefix.slice(0, prefix.lastIndexOf('/')) : '';
      const objects: ObjectInfo[] = [];
      async function walk(relative: string) {
        let entries: import('node:fs').Dirent[];
        try {
          entries = await readdir(relative === '' ? dir : `${dir}/${relative}`, { withFileTypes: true });
        } catch (error) {
          if (isMissing(error) || (error as NodeJS.ErrnoException).code === 'ENOTDIR') return;
          throw ioError(error, 'list', `${dir}/${relative}`);
        }
        for (const entry of entries) {
          if (entry.name.startsWith('.')) continue;
          const key = relative === '' ? entry.name : `${relative}/${entry.name}`;
          if (entry.isDirectory()) {
            const below = key.startsWith(prefix) && listOptions.recursive === false;
            if (!below && (key.startsWith(prefix) || prefix.startsWith(`${key}/`))) await walk(key);
          } else if (entry.isFile() && key.startsWith(prefix)) {
            const info = await lstat(`${dir}/${key}`);
            objects.push({ key, size: info.size, lastModified: info.mtime });
          }
        }
      }
      await walk(base);
      report('GET', prefix, 200);
      return objects.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    },

    async delete(key) {
      const path = pathOf(key);
      await unlink(path).catch((error) => {
        if (!isMissing(error)) throw ioError(error, 'delete', path);
      });
      report('DELETE', key, 204);
    },
  };
}

function isMissing(error: unknown): boolean {
  return (error as NodeJS.ErrnoException)?.code === 'ENOENT';
}

function ioError(error: unknown, what: string, path: string): DeployError {
  if (error instanceof DeployError) return error;
  return new DeployError('IO', `${what} ${path}: ${(error as Error).message}`, { cause: error });
}

function sleep(ms: number) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
