import { createDirectoryObjectStore } from './directory-object-store.js';
import { type Location, parseLocation } from './location.js';
import { createManifestStore, type ManifestStore } from './manifest-store.js';
import type { ObjectStore, StoreRequest } from './object-store.js';
import { createS3ObjectStore, type S3ObjectStoreOptions } from './s3-object-store.js';

/** Options of {@link openObjectStore} and {@link openManifestStore}. */
export interface OpenStoreOptions {
  /** Resolves relative plain paths. Default: this process's working directory. */
  cwd?: string;
  /** Called after every request (see {@link StoreRequest}). */
  onRequest?: (request: StoreRequest) => void;
  /** Explicit S3 credentials; default: the SDK's chain (environment, `profile=`, instance role...). */
  credentials?: S3ObjectStoreOptions['credentials'];
  /** S3 multipart tuning, see `createS3ObjectStore`. */
  multipartThreshold?: number;
  partSize?: number;
  partConcurrency?: number;
  maxAttempts?: number;
}

/**
 * The object store at a location (`s3://bucket/prefix?...`, `file:///dir`, a path), rooted at its key or
 * directory: what a binary-cache upload targets.
 */
export function openObjectStore(location: string | Location, options: OpenStoreOptions = {}): ObjectStore {
  const parsed =
    typeof location === 'string' ? parseLocation(location, { cwd: options.cwd ?? process.cwd() }) : location;
  if (parsed.kind === 'file') {
    return createDirectoryObjectStore({
      dir: parsed.path,
      ...(options.onRequest ? { onRequest: options.onRequest } : {}),
    });
  }
  const prefix = parsed.key === '' || parsed.key.endsWith('/') ? parsed.key : `${parsed.key}/`;
  return createS3ObjectStore({
    bucket: parsed.bucket,
    prefix,
    ...(parsed.region === undefined ? {} : { region: parsed.region }),
    ...(parsed.endpoint === undefined ? {} : { endpoint: parsed.endpoint }),
    ...(parsed.profile === undefined ? {} : { profile: parsed.profile }),
    ...(options.credentials === undefined ? {} : { credentials: options.credentials }),
    ...(options.onRequest ? { onRequest: options.onRequest } : {}),
    ...(options.multipartThreshold === undefined ? {} : { multipartThreshold: options.multipartThreshold }),
    ...(options.partSize === undefined ? {} : { partSize: options.partSize }),
    ...(options.partConcurrency === undefined ? {} : { partConcurrency: options.partConcurrency }),
    ...(options.maxAttempts === undefined ? {} : { maxAttempts: options.maxAttempts }),
  });
}

/**
 * The manifest store at a location. A location ending in `.json` names the manifest (`s3://b/prod/manifest.json`,
 * `/srv/deploy/manifest.json`); anything else is the directory or prefix that holds `manifest.json`. Archives
 * live beside the manifest; status objects too (`status/<host>.json`), unless `options.status` names another
 * directory or prefix (`s3://status-bucket/prod/`: `<host>.json` there).
 */
export function openManifestStore(
  location: string | Location,
  options: OpenStoreOptions & { status?: string | Location | undefined } = {},
): ManifestStore {
  const parsed =
    typeof location === 'string' ? parseLocation(location, { cwd: options.cwd ?? process.cwd() }) : location;
  const path = parsed.kind === 'file' ? parsed.path : parsed.key;
  const named = path.endsWith('.json');
  const slash = path.lastIndexOf('/');
  const manifestKey = named ? path.slice(slash + 1) : 'manifest.json';
  const root: Location =
    parsed.kind === 'file'
      ? { kind: 'file', path: named ? path.slice(0, slash) || '/' : path }
      : { ...parsed, key: named ? path.slice(0, slash + 1) : path };
  const status = options.status === undefined ? undefined : openObjectStore(options.status, options);
  return createManifestStore(openObjectStore(root, options), {
    manifestKey,
    ...(status === undefined ? {} : { status }),
  });
}
