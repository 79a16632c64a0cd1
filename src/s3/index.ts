export { ARCHIVE_DIR, ARCHIVE_ID_RE, archiveKey, formatArchiveId, parseArchiveId } from './archive-name.js';
export {
  BUCKET_MODE_KEY,
  type BucketModeRecord,
  type ProbeFinding,
  parseBucketMode,
  readBucketMode,
  renderBucketMode,
  WRITE_MODES,
  type WriteMode,
  writeBucketMode,
} from './bucket-mode.js';
export {
  type CacheUploadInput,
  type CacheUploadPlan,
  type LocalCacheEntry,
  NIX_CACHE_INFO,
  planCacheUpload,
  type UploadStep,
} from './cache-plan.js';
export {
  type CacheUploadEvent,
  type CacheUploadOptions,
  type CacheUploadResult,
  uploadClosure,
} from './cache-upload.js';
export { createDirectoryObjectStore, type DirectoryObjectStoreOptions } from './directory-object-store.js';
export { computeEtag, type EtagForm, formatEtag, sameEtag, unquoteEtag } from './etag.js';
export { checkObjectKey } from './keys.js';
export {
  acquireLease,
  type Lease,
  type LeaseOptions,
  type LeaseRecord,
  type LeaseState,
  parseLease,
} from './lease.js';
export {
  type FileLocation,
  formatLocation,
  type Location,
  type ParseLocationOptions,
  parseLocation,
  type S3Location,
  toNixSubstituter,
} from './location.js';
export {
  type ArchiveEntry,
  createManifestStore,
  type HostStatusRecord,
  LEASE_DIR,
  type ManifestRead,
  type ManifestStore,
  type ManifestStoreOptions,
  type ManifestWriteCondition,
  STATUS_READ_CONCURRENCY,
  type StatusObject,
} from './manifest-store.js';
export type {
  GetObjectResult,
  ObjectInfo,
  ObjectStore,
  PutOptions,
  StoreRequest,
  UploadOptions,
} from './object-store.js';
export { type OpenStoreOptions, openManifestStore, openObjectStore } from './open.js';
export {
  type BucketProbe,
  type ConditionalWriteSupport,
  PROBE_PREFIX,
  probeBucket,
  probeConditionalWrites,
} from './probe.js';
export { createS3ObjectStore, type S3Credentials, type S3ObjectStoreOptions } from './s3-object-store.js';
export {
  type UpdateManifestEvent,
  type UpdateManifestOptions,
  type UpdateManifestResult,
  updateManifest,
} from './update-manifest.js';
