/** The result of {@link ObjectStore.get}. */
export type GetObjectResult =
  | { status: 'found'; text: string; etag: string; lastModified?: Date }
  /** The object still has the ETag given as `ifNoneMatch`: no body was transferred. */
  | { status: 'not-modified'; etag: string }
  | { status: 'missing' };

/** Conditions and metadata of {@link ObjectStore.put}. */
export interface PutOptions {
  /** Write only if the object's current ETag is this one (compare-and-swap); `S3_CONFLICT` otherwise. */
  ifMatch?: string;
  /** `'*'`: write only if the object does not exist yet; `S3_CONFLICT` otherwise. */
  ifNoneMatch?: '*';
  contentType?: string;
}

/** Options of {@link ObjectStore.upload}. */
export interface UploadOptions {
  contentType?: string;
  /** Called as bytes are sent, with the bytes of this file sent so far. */
  onProgress?: (loaded: number) => void;
}

/** An object in a listing. */
export interface ObjectInfo {
  /** Relative to the store's root. */
  key: string;
  size: number;
  lastModified?: Date;
  /**
   * The object's ETag as the listing gives it (S3 and memory stores; a directory store leaves it out, as it would
   * have to read every file): a reader can tell from one listing which objects changed since it last read them.
   */
  etag?: string;
}

/** One request a store made (for S3: one HTTP request, retries and multipart parts included). */
export interface StoreRequest {
  method: 'GET' | 'HEAD' | 'PUT' | 'POST' | 'DELETE';
  /** The object key relative to the store's root, or the listed prefix; `''` for bucket-level requests. */
  key: string;
  /** HTTP status, or 0 when no response arrived. */
  status: number;
}

/**
 * A flat key → object store with conditional requests: what both the manifest store and the binary-cache upload
 * are built on. Implemented for S3 (`createS3ObjectStore`), a local directory (`createDirectoryObjectStore`) and
 * memory (`createMemoryObjectStore` from `@omni/deploy/testing`). Keys are checked (`S3_INPUT`) before any
 * request; failures are `DeployError`s: `S3_CONFLICT` (a condition did not hold), `S3_ACCESS_DENIED`,
 * `S3_UNREACHABLE`, `S3_REQUEST`.
 */
export interface ObjectStore {
  /** The store's root as a URL, for messages: `s3://bucket/prefix/`, `file:///dir/`, `memory://name/`. */
  readonly url: string;
  /** Reads an object as UTF-8 text. With `ifNoneMatch` equal to its current ETag, returns `not-modified`. */
  get(key: string, options?: { ifNoneMatch?: string }): Promise<GetObjectResult>;
  /** Size and ETag of an object, or `undefined` when it does not exist. */
  head(key: string): Promise<{ size: number; etag: string } | undefined>;
  /** Writes a small object in one request, optionally conditional. */
  put(key: string, body: string | Uint8Array, options?: PutOptions): Promise<{ etag: string }>;
  /** Uploads a local file, in parts with bounded concurrency when it is large (S3). */
  upload(key: string, file: string, options?: UploadOptions): Promise<{ etag: string }>;
  /**
   * Objects whose keys start with `prefix`, in key order. With `recursive: false`, only those with no further
   * `/` after the prefix (S3's `Delimiter=/`): the root of a binary cache without its `nar/` directory.
   */
  list(prefix: string, options?: { recursive?: boolean }): Promise<ObjectInfo[]>;
  /** Deletes an object; no error when it does not exist. */
  delete(key: string): Promise<void>;
}
