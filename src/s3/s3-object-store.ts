import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { Transform } from 'node:stream';
import type { ListObjectsV2CommandOutput, S3Client } from '@aws-sdk/client-s3';
import { DeployError } from '../errors.js';
import { checkKeyPrefix, checkObjectKey } from './keys.js';
import type { ObjectInfo, ObjectStore, StoreRequest } from './object-store.js';

/**
 * Static S3 credentials. Declared here rather than taken from the SDK so that this package's types do not drag
 * the SDK's (and @types/node's) into every user's type check.
 */
export interface S3Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

/** Options of {@link createS3ObjectStore}. */
export interface S3ObjectStoreOptions {
  bucket: string;
  /** Key prefix all keys are relative to (`''` or ending in `/`). */
  prefix?: string;
  region?: string;
  /** S3-compatible endpoint URL (DigitalOcean Spaces, MinIO, s3rver); implies path-style addressing. */
  endpoint?: string;
  /** Named profile of the AWS config/credentials files; unset: the SDK's default credential chain. */
  profile?: string;
  /** Explicit credentials (tests); unset: the SDK's default chain (environment, profile, instance role...). */
  credentials?: S3Credentials | (() => Promise<S3Credentials>);
  /** Attempts per request, transient failures retried by the SDK with backoff. Default 3. */
  maxAttempts?: number;
  /**
   * Milliseconds a connection may take to open, and a request may go without any bytes moving either way,
   * before the attempt fails (and is retried, up to `maxAttempts`). Without it a bucket that stops answering
   * mid-request would hold a deployer's tick forever. Default 10 s to connect, 60 s idle; a large upload is not
   * cut short while its bytes flow.
   */
  timeouts?: { connectMs?: number; idleMs?: number };
  /**
   * Files up to this size are sent in one streamed PUT; larger ones as multipart uploads. Default 200 MiB,
   * rclone's `--s3-upload-cutoff`: below it one request beats several parts plus their reassembly.
   */
  multipartThreshold?: number;
  /** Part size of multipart uploads in bytes (at least 5 MiB). Default 16 MiB. */
  partSize?: number;
  /** Parts of one file sent at once. Default 4. */
  partConcurrency?: number;
  /** Called after every HTTP request with its method, key and status: count requests, log, or meter. */
  onRequest?: (request: StoreRequest) => void;
}

const MIB = 1024 * 1024;

/**
 * An {@link ObjectStore} on an S3 bucket (AWS or S3-compatible) with @aws-sdk/client-s3; large files go through
 * @aws-sdk/lib-storage as multipart uploads. Conditional writes are sent as `If-Match` / `If-None-Match` and a 412
 * or 409 answer becomes `S3_CONFLICT` (so does a 404 to `If-Match`: the object was deleted), a 501 answer
 * `S3_UNSUPPORTED` (Backblaze B2). A server that ignores the headers (s3rver, Garage, some S3-compatible stores)
 * cannot be made to enforce them: `probeBucket` finds out, and the manifest store then works with a lease.
 */
export function createS3ObjectStore(options: S3ObjectStoreOptions): ObjectStore {
  const bucket = options.bucket;
  const prefix = options.prefix ?? '';
  if (prefix !== '' && !prefix.endsWith('/')) checkKeyPrefix(`${prefix}/`);
  const root = prefix === '' || prefix.endsWith('/') ? prefix : `${prefix}/`;
  // The SDK is loaded when the first request is made, not when the store is created: it costs a process ~20 MB
  // and most of a bin's start-up, and a deployer with a file manifest never sends a request through it.
  let connection: Promise<{ s3: typeof import('@aws-sdk/client-s3'); client: S3Client }> | undefined;
  const connect = () =>
    (connection ??= import('@aws-sdk/client-s3').then((s3) => {
      const client = new s3.S3Client({
        ...(options.region === undefined
          ? options.endpoint
            ? { region: 'us-east-1' }
            : {}
          : { region: options.region }),
        ...(options.endpoint === undefined ? {} : { endpoint: options.endpoint, forcePathStyle: true }),
        ...(options.profile === undefined ? {} : { profile: options.profile }),
        ...(options.credentials === undefined ? {} : { credentials: options.credentials }),
        maxAttempts: options.maxAttempts ?? 3,
        requestHandler: {
          connectionTimeout: options.timeouts?.connectMs ?? 10_000,
          socketTimeout: options.timeouts?.idleMs ?? 60_000,
        },
        // S3-compatible servers reject or store verbatim the SDK's default aws-chunked checksum trailers.
        requestChecksumCalculation: 'WHEN_REQUIRED',
        responseChecksumValidation: 'WHEN_REQUIRED',
      });
      if (options.onRequest) addRequestHook(client, bucket, root, options.onRequest);
      skipPartHashing(client);
      return { s3, client };
    }));
  const url = `s3://${bucket}/${root}`;
  const multipartThreshold = options.multipartThreshold ?? 200 * MIB;
  const partSize = Math.max(5 * MIB, options.partSize ?? 16 * MIB);

  const fullKey = (key: string) => `${root}${checkObjectKey(key)}`;

  return {
    url,

    async get(key, get = {}) {
      const Key = fullKey(key);
      const { s3, client } = await connect();
      try {
        const out = await client.send(
          new s3.GetObjectCommand({
            Bucket: bucket,
            Key,
            ...(get.ifNoneMatch ? { IfNoneMatch: get.ifNoneMatch } : {}),
          }),
        );
        const text = (await out.Body?.transformToString('utf-8')) ?? '';
        return {
          status: 'found',
          text,
          etag: out.ETag ?? '',
          ...(out.LastModified ? { lastModified: out.LastModified } : {}),
        };
      } catch (error) {
        const status = httpStatus(error);
        if (status === 304) return { status: 'not-modified', etag: get.ifNoneMatch as string };
        if (status === 404) return { status: 'missing' };
        throw s3Error(error, 'GET', url + key);
      }
    },

    async head(key) {
      const Key = fullKey(key);
      const { s3, client } = await connect();
      try {
        const out = await client.send(new s3.HeadObjectCommand({ Bucket: bucket, Key }));
        return { size: out.ContentLength ?? 0, etag: out.ETag ?? '' };
      } catch (error) {
        if (httpStatus(error) === 404) return undefined;
        throw s3Error(error, 'HEAD', url + key);
      }
    },

    async put(key, body, put = {}) {
      const Key = fullKey(key);
      const { s3, client } = await connect();
      try {
        const out = await client.send(
          new s3.PutObjectCommand({
            Bucket: bucket,
            Key,
            Body: body,
            ...(put.contentType ? { ContentType: put.contentType } : {}),
            ...(put.ifMatch ? { IfMatch: put.ifMatch } : {}),
            ...(put.ifNoneMatch ? { IfNoneMatch: put.ifNoneMatch } : {}),
          }),
        );
        return { etag: out.ETag ?? '' };
      } catch (error) {
        throw s3Error(error, 'PUT', url + key, put);
      }
    },

    async upload(key, file, upload = {}) {
      const Key = fullKey(key);
      const size = (await stat(file)).size;
      const { s3, client } = await connect();
      // Multipart uploads only: lib-storage stays unloaded in a process that never sends a large file.
      const Upload = size > multipartThreshold ? (await import('@aws-sdk/lib-storage')).Upload : undefined;
      let loaded = 0;
      // Counts bytes as the SDK pulls them: a 'data' listener on the file stream would start it flowing early.
      const counted = createReadStream(file, { highWaterMark: MIB }).pipe(
        new Transform({
          transform(chunk: Buffer, _encoding, done) {
            loaded += chunk.length;
            if (size <= multipartThreshold) upload.onProgress?.(loaded);
            done(null, chunk);
          },
        }),
      );
      const params = {
        Bucket: bucket,
        Key,
        Body: counted,
        ...(upload.contentType ? { ContentType: upload.contentType } : {}),
      };
      try {
        if (!Upload) {
          // One streamed request, nothing buffered: what rclone does below its 200 MiB cutoff.
          const out = await client.send(new s3.PutObjectCommand({ ...params, ContentLength: size }));
          return { etag: out.ETag ?? '' };
        }
        const uploader = new Upload({
          client,
          params,
          partSize,
          queueSize: options.partConcurrency ?? 4,
          leavePartsOnError: false, // abort the multipart upload: no orphaned parts billed forever
        });
        if (upload.onProgress) {
          const report = upload.onProgress;
          uploader.on('httpUploadProgress', (progress) => report(progress.loaded ?? 0));
        }
        const out = await uploader.done();
        return { etag: ('ETag' in out ? out.ETag : undefined) ?? '' };
      } catch (error) {
        counted.destroy();
        throw s3Error(error, 'PUT', url + key);
      }
    },

    async list(listPrefix, listOptions = {}) {
      const Prefix = `${root}${checkKeyPrefix(listPrefix)}`;
      const objects: ObjectInfo[] = [];
      const { s3, client } = await connect();
      let ContinuationToken: string | undefined;
      do {
        let out: ListObjectsV2CommandOutput;
        try {
          out = await client.send(
            new s3.ListObjectsV2Command({
              Bucket: bucket,
              Prefix,
              ContinuationToken,
              ...(listOptions.recursive === false ? { Delimiter: '/' } : {}),
            }),
          );
        } catch (error) {
          throw s3Error(error, 'LIST', url + listPrefix);
        }
        for (const item of out.Contents ?? []) {
          if (!item.Key?.startsWith(root)) continue;
          objects.push({
            key: item.Key.slice(root.length),
            size: item.Size ?? 0,
            ...(item.LastModified ? { lastModified: item.LastModified } : {}),
            ...(item.ETag ? { etag: item.ETag } : {}),
          });
        }
        ContinuationToken = out.IsTruncated ? out.NextContinuationToken : undefined;
      } while (ContinuationToken);
      return objects.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    },

    async delete(key) {
      const Key = fullKey(key);
      const { s3, client } = await connect();
      try {
        await client.send(new s3.DeleteObjectCommand({ Bucket: bucket, Key }));
      } catch (error) {
        if (httpStatus(error) === 404) return;
        throw s3Error(error, 'DELETE', url + key);
      }
    },
  };
}

function httpStatus(error: unknown): number | undefined {
  const e = error as { $metadata?: { httpStatusCode?: number }; $response?: { statusCode?: number } };
  return e?.$metadata?.httpStatusCode ?? e?.$response?.statusCode;
}

/** Maps an SDK failure to a `DeployError` that says which request on which object failed, and how. */
function s3Error(
  error: unknown,
  method: string,
  where: string,
  put: { ifMatch?: string; ifNoneMatch?: string } = {},
) {
  const status = httpStatus(error);
  const name = (error as { name?: string })?.name ?? 'Error';
  const message = (error as Error)?.message ?? String(error);
  const conditional = put.ifMatch !== undefined || put.ifNoneMatch !== undefined;
  if (conditional && (status === 501 || name === 'NotImplemented')) {
    // Backblaze B2 answers conditional PUTs so: the bucket needs lease mode (`push init` finds and records it).
    return new DeployError(
      'S3_UNSUPPORTED',
      `${method} ${where}: the server does not implement conditional writes (HTTP ${status ?? '?'} ${name}); run "push init" to probe the bucket and record a write mode that works without them`,
      { cause: error, details: { status } },
    );
  }
  if (put.ifMatch !== undefined && (status === 404 || name === 'NoSuchKey')) {
    // AWS S3 answers 404 to If-Match when the object is gone: another writer deleted it, a conflict like any other.
    return new DeployError(
      'S3_CONFLICT',
      `${method} ${where}: expected ETag ${put.ifMatch}, found no object (deleted by another writer; HTTP ${status ?? '?'} ${name})`,
      { cause: error, details: { status } },
    );
  }
  if (
    status === 412 ||
    status === 409 ||
    name === 'PreconditionFailed' ||
    name === 'ConditionalRequestConflict'
  ) {
    const expected = put.ifMatch ? `ETag ${put.ifMatch}` : put.ifNoneMatch ? 'no object' : 'its precondition';
    return new DeployError(
      'S3_CONFLICT',
      `${method} ${where}: expected ${expected}, found it changed by another writer (HTTP ${status ?? '?'} ${name})`,
      {
        cause: error,
        details: { status },
      },
    );
  }
  if (status === 403 || status === 401) {
    return new DeployError(
      'S3_ACCESS_DENIED',
      `${method} ${where}: access denied (HTTP ${status} ${name}); check the credentials and the bucket policy`,
      {
        cause: error,
        details: { status },
      },
    );
  }
  if (status === undefined || status === 0) {
    return new DeployError(
      'S3_UNREACHABLE',
      `${method} ${where}: no answer from the server (${name}: ${message})`,
      {
        cause: error,
      },
    );
  }
  return new DeployError('S3_REQUEST', `${method} ${where}: HTTP ${status} ${name}: ${message}`, {
    cause: error,
    details: { status },
  });
}

/**
 * Multipart parts reach the signer as buffers, which SigV4 would hash in full (SHA-256 of every byte, on the
 * event loop) unless told the payload is unsigned. Streamed PUTs are unsigned already. Integrity does not rest
 * on it: TLS protects the transfer, and Nix checks every NAR's hash against its signed narinfo when it copies.
 */
function skipPartHashing(client: S3Client) {
  client.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName === 'UploadPartCommand') {
        const request = args.request as { headers?: Record<string, string> };
        if (request.headers) request.headers['x-amz-content-sha256'] = 'UNSIGNED-PAYLOAD';
      }
      return next(args);
    },
    { step: 'build', name: 'omniDeployUnsignedParts' },
  );
}

/** Reports every HTTP attempt: the hook sits inside the SDK's retry loop, so retries count, as they cost. */
function addRequestHook(
  client: S3Client,
  bucket: string,
  root: string,
  onRequest: (request: StoreRequest) => void,
) {
  client.middlewareStack.add(
    (next) => async (args) => {
      const request = args.request as { method?: string; path?: string; query?: Record<string, unknown> };
      const path = decodeURIComponent(request.path ?? '/');
      // Path-style (/bucket/key) or virtual-hosted (/key) addressing.
      let key = path.startsWith(`/${bucket}/`) ? path.slice(bucket.length + 2) : path.replace(/^\//, '');
      if (key === '' && typeof request.query?.prefix === 'string') key = request.query.prefix;
      if (key.startsWith(root)) key = key.slice(root.length);
      const method = (request.method ?? 'GET') as StoreRequest['method'];
      try {
        const result = await next(args);
        onRequest({ method, key, status: (result.response as { statusCode?: number })?.statusCode ?? 0 });
        return result;
      } catch (error) {
        onRequest({ method, key, status: httpStatus(error) ?? 0 });
        throw error;
      }
    },
    { step: 'deserialize', priority: 'high', name: 'omniDeployRequestHook' },
  );
}
