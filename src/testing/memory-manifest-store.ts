import { createManifestStore, type ManifestStore, type ManifestStoreOptions } from '../s3/manifest-store.js';
import {
  createMemoryObjectStore,
  type MemoryObjectStore,
  type MemoryObjectStoreOptions,
} from './memory-object-store.js';

/** A {@link ManifestStore} in memory, with its objects at hand. */
export interface MemoryManifestStore extends ManifestStore {
  readonly objects: MemoryObjectStore;
}

/**
 * Creates a manifest store in memory for unit tests: `store.objects.requests` counts requests (an idle poll
 * is one `GET` answered 304), `store.objects.beforeRequest` injects failures or concurrent writers, and
 * conditional writes are enforced as on AWS S3.
 */
export function createMemoryManifestStore(
  options: MemoryObjectStoreOptions & ManifestStoreOptions = {},
): MemoryManifestStore {
  const objects = createMemoryObjectStore(options);
  const store = createManifestStore(objects, {
    ...(options.manifestKey === undefined ? {} : { manifestKey: options.manifestKey }),
    ...(options.status === undefined ? {} : { status: options.status }),
  });
  return { ...store, objects };
}
