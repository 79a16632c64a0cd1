import crypto, { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import S3rver from 's3rver';
import { createS3ObjectStore, type S3ObjectStoreOptions } from '../../src/s3/index.js';
import type { ConditionBehaviour } from '../../src/testing/index.js';

/** A request the S3 server answered. */
export interface ServerRequest {
  method: string;
  url: string;
  status: number;
  headers: IncomingMessage['headers'];
}

/** A fault the proxy injects into the next matching requests. */
export interface Fault {
  /** How many matching requests fail. */
  count: number;
  match: (method: string, url: string) => boolean;
  /** `503`: answer 503 SlowDown; `reset`: drop the connection without an answer. */
  kind: '503' | 'reset';
}

/** s3rver on a random loopback port, plus a proxy in front of it that can enforce conditions and inject faults. */
export interface TestS3Server {
  bucket: string;
  /** s3rver itself: ignores If-Match / If-None-Match on writes. */
  endpoint: string;
  /**
   * The proxy: treats If-Match / If-None-Match on PUT as {@link conditions} says (by default as AWS S3 does: 412
   * PreconditionFailed, atomically per key), and injects {@link Fault}s; everything else passes through.
   */
  proxyEndpoint: string;
  /**
   * Which provider the proxy imitates on conditional PUTs (`aws` by default; see `ConditionBehaviour`):
   * `spaces-unquoted` refuses a quoted If-Match even when it matches, `ignores-conditions` passes the headers to
   * s3rver (which ignores them), `not-implemented` answers 501 NotImplemented as Backblaze B2 does,
   * `no-if-none-match` enforces If-Match only. Set it before use; it applies to every later request.
   */
  conditions: ConditionBehaviour;
  /** Every request s3rver answered (the proxy's own condition checks excluded). */
  readonly requests: ServerRequest[];
  faults: Fault[];
  /** The HTTP servers of s3rver and of the proxy (to watch their connections, say, as the fleet bench does). */
  httpServers: { s3rver: Server; proxy: Server };
  /** An S3 object store on this server (through the proxy with `proxy: true`). */
  objectStore(
    options?: Partial<S3ObjectStoreOptions> & { proxy?: boolean },
  ): ReturnType<typeof createS3ObjectStore>;
  close(): Promise<void>;
}

export const TEST_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };
const CHECK_HEADER = 'x-omni-test-proxy-check';

/**
 * s3rver 3.7 encrypts its ListObjectsV2 continuation tokens with DES, which OpenSSL 3 (Node >= 17) refuses
 * without `--openssl-legacy-provider`: every listing of more than 1,000 keys failed with HTTP 500, so S3's
 * paging could not be exercised at all. The token is opaque to clients; for `des` alone a pass-through cipher
 * stands in (the token becomes the IV and the plain text), every other algorithm goes to OpenSSL unchanged.
 */
function letS3rverPage() {
  const shimmed = crypto as typeof crypto & { omniDesShim?: true };
  if (shimmed.omniDesShim) return;
  shimmed.omniDesShim = true;
  const passThrough = () => ({
    update: (data: string | Buffer, encoding?: BufferEncoding) =>
      Buffer.isBuffer(data) ? data : Buffer.from(data, encoding),
    final: () => Buffer.alloc(0),
  });
  const { createCipheriv, createDecipheriv } = crypto;
  crypto.createCipheriv = ((algorithm: string, ...rest: unknown[]) =>
    algorithm === 'des'
      ? passThrough()
      : (createCipheriv as (...args: unknown[]) => unknown)(algorithm, ...rest)) as typeof createCipheriv;
  crypto.createDecipheriv = ((algorithm: string, ...rest: unknown[]) =>
    algorithm === 'des'
      ? passThrough()
      : (createDecipheriv as (...args: unknown[]) => unknown)(algorithm, ...rest)) as typeof createDecipheriv;
}

/** Starts s3rver (npm `s3rver`, a dev dependency) with one bucket, in a temporary directory removed by `close`. */
export async function startS3Server(bucket = 'omni-test'): Promise<TestS3Server> {
  letS3rverPage();
  const directory = mkdtempSync(join(tmpdir(), 'omni-s3rver-'));
  const s3rver = new S3rver({
    address: '127.0.0.1',
    port: 0,
    silent: true,
    directory,
    allowMismatchedSignatures: true, // the proxy forwards signed requests unchanged; keep s3rver out of SigV4
    configureBuckets: [{ name: bucket }],
  });
  const { port } = await s3rver.run();
  const requests: ServerRequest[] = [];
  s3rver.httpServer.on('request', (req: IncomingMessage, res) => {
    if (req.headers[CHECK_HEADER]) return;
    res.on('finish', () =>
      requests.push({
        method: req.method ?? '',
        url: req.url ?? '',
        status: res.statusCode,
        headers: req.headers,
      }),
    );
  });
  const faults: Fault[] = [];
  /** Per object key: the last write queued, and the reads running or queued since. */
  const locks = new Map<string, { write: Promise<void>; reads: Set<Promise<void>> }>();
  const settled = (p: Promise<unknown>) =>
    p.then(
      () => {},
      () => {},
    );
  /** Runs `run` alone on `key` when it writes; reads run together, never beside a write. */
  const onKey = (key: string, write: boolean, run: () => Promise<void>): Promise<void> => {
    const lock = locks.get(key) ?? { write: Promise.resolve(), reads: new Set<Promise<void>>() };
    locks.set(key, lock);
    if (write) {
      const mine = Promise.all([lock.write, ...lock.reads]).then(run, run);
      lock.write = settled(mine);
      lock.reads = new Set();
      return mine;
    }
    const mine = lock.write.then(run, run);
    const done = settled(mine);
    const reads = lock.reads;
    reads.add(done);
    void done.then(() => reads.delete(done));
    return mine;
  };

  const upstream = (req: IncomingMessage, body?: NodeJS.ReadableStream) =>
    new Promise<IncomingMessage>((resolve, reject) => {
      const out = request(
        { host: '127.0.0.1', port, method: req.method, path: req.url, headers: req.headers },
        resolve,
      );
      out.on('error', reject);
      if (body) body.pipe(out);
      else out.end();
    });

  const currentEtag = (url: string) =>
    new Promise<string | undefined>((resolve, reject) => {
      const path = url.replace(/\?.*$/, '');
      const out = request(
        { host: '127.0.0.1', port, method: 'HEAD', path, headers: { [CHECK_HEADER]: '1' } },
        (res) => {
          res.resume();
          resolve(res.statusCode === 200 ? (res.headers.etag as string) : undefined);
        },
      );
      out.on('error', reject);
      out.end();
    });

  /** Waits until s3rver serves the object a PUT answered with `etag` (its MD5), bounded. */
  const landed = async (path: string, etag: string) => {
    for (let attempt = 0; attempt < 200; attempt++) {
      const body = await new Promise<Buffer | undefined>((resolve, reject) => {
        const out = request(
          { host: '127.0.0.1', port, method: 'GET', path, headers: { [CHECK_HEADER]: '1' } },
          async (res) => {
            const chunks: Buffer[] = [];
            for await (const chunk of res) chunks.push(chunk as Buffer);
            resolve(res.statusCode === 200 ? Buffer.concat(chunks) : undefined);
          },
        );
        out.on('error', reject);
        out.end();
      });
      if (body && `"${createHash('md5').update(body).digest('hex')}"` === etag) return;
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  };

  const proxy: Server = createServer(async (req, res) => {
    const method = req.method ?? '';
    const url = req.url ?? '';
    const fault = faults.find((f) => f.count > 0 && f.match(method, url));
    if (fault) {
      fault.count--;
      if (fault.kind === 'reset') {
        req.socket.destroy();
        return;
      }
      req.resume();
      res.writeHead(503, { 'content-type': 'application/xml' });
      res.end(
        '<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>',
      );
      return;
    }
    const ifMatch = req.headers['if-match'];
    const ifNoneMatch = req.headers['if-none-match'];
    const behaviour = server.conditions;
    const hasConditions = method === 'PUT' && (ifMatch !== undefined || ifNoneMatch !== undefined);
    if (hasConditions && behaviour === 'not-implemented') {
      req.resume();
      res.writeHead(501, { 'content-type': 'application/xml' });
      res.end(
        `<?xml version="1.0" encoding="UTF-8"?><Error><Code>NotImplemented</Code><Message>A header you provided implies functionality that is not implemented</Message><Header>${ifMatch !== undefined ? 'If-Match' : 'If-None-Match'}</Header></Error>`,
      );
      return;
    }
    const conditional = hasConditions && behaviour !== 'ignores-conditions';
    const ifMatchHolds = (value: string, etag: string | undefined) =>
      behaviour === 'spaces-unquoted' ? !value.startsWith('"') && `"${value}"` === etag : value === etag;
    // s3rver answers a PUT before the bytes are on disk and rewrites the file in place, so a read at the same
    // time (or just after) can see part of an object: a write on one object key is taken alone, and
    // a PUT is answered once a read returns what it wrote. The proxy is then atomic and read-after-write
    // consistent per object, as S3 is.
    // The AWS SDK marks object requests with `?x-id=GetObject` (PutObject, ...): still plain object requests, unlike
    // listings and multipart parts; taken one at a time too, else a GET can see a PUT truncate the object under it
    // (s3rver sends the old length, then fewer bytes, and the client waits for the rest forever).
    const path = url.replace(/\?.*$/, '');
    const query = [...new URLSearchParams(url.slice(path.length + 1)).keys()];
    const plainObject = query.every((k) => k === 'x-id') && /^\/[^/]+\/./.test(path);
    const relay = async () => {
      if (conditional) {
        const etag = await currentEtag(url);
        const fails =
          (behaviour !== 'no-if-none-match' && ifNoneMatch === '*' && etag !== undefined) ||
          (ifMatch !== undefined && !ifMatchHolds(ifMatch, etag));
        if (fails) {
          req.resume();
          res.writeHead(412, { 'content-type': 'application/xml' });
          res.end(
            `<?xml version="1.0" encoding="UTF-8"?><Error><Code>PreconditionFailed</Code><Message>At least one of the pre-conditions you specified did not hold</Message><Condition>${ifMatch !== undefined ? 'If-Match' : 'If-None-Match'}</Condition></Error>`,
          );
          return;
        }
      }
      const answer = await upstream(req, req);
      if (plainObject && method === 'PUT') {
        const chunks: Buffer[] = [];
        for await (const chunk of answer) chunks.push(chunk as Buffer);
        const etag = answer.headers.etag;
        if (answer.statusCode === 200 && typeof etag === 'string') await landed(path, etag);
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        res.end(Buffer.concat(chunks));
        return;
      }
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
      // Done when it is sent, or when the client went away (else the key would stay taken).
      await new Promise((resolve) => {
        answer.on('end', resolve);
        res.on('close', resolve);
      });
    };
    try {
      if (!conditional && !plainObject) return await relay();
      // Check and write as one step per key, as S3 does: a second conditional writer waits its turn, and a read
      // sees an object before a write or after it, never during.
      await onKey(path, method !== 'GET' && method !== 'HEAD', relay);
    } catch {
      if (!res.headersSent) res.writeHead(502);
      res.end();
    }
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  const proxyPort = (proxy.address() as AddressInfo).port;

  const server: TestS3Server = {
    bucket,
    endpoint: `http://127.0.0.1:${port}`,
    proxyEndpoint: `http://127.0.0.1:${proxyPort}`,
    requests,
    faults,
    conditions: 'aws',
    httpServers: { s3rver: s3rver.httpServer, proxy },
    objectStore(options = {}) {
      const { proxy: viaProxy, ...rest } = options;
      return createS3ObjectStore({
        bucket,
        endpoint: viaProxy ? server.proxyEndpoint : server.endpoint,
        credentials: TEST_CREDENTIALS,
        ...rest,
      });
    },
    async close() {
      await new Promise<void>((resolve) => {
        proxy.closeAllConnections();
        proxy.close(() => resolve());
      });
      s3rver.httpServer.closeAllConnections?.();
      await s3rver.close();
      rmSync(directory, { recursive: true, force: true });
    },
  };
  return server;
}
