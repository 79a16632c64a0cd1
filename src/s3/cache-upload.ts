import { lstat, readFile } from 'node:fs/promises';
import { DeployError, isDeployError } from '../errors.js';
import { parseStorePath } from '../manifest/store-path.js';
import { parseNarinfo } from '../nix/narinfo.js';
import { parsePublicKey, signatureFingerprint, verifySignatures } from '../nix/signing.js';
import { runPool } from '../runtime/pool.js';
import {
  type CacheUploadPlan,
  type LocalCacheEntry,
  NIX_CACHE_INFO,
  planCacheUpload,
  type UploadStep,
} from './cache-plan.js';
import type { ObjectStore } from './object-store.js';

/** What {@link uploadClosure} reports as it goes. */
export type CacheUploadEvent =
  | { type: 'planned'; files: number; bytes: number; skipped: number }
  | { type: 'progress'; key: string; loaded: number; total: number; sentBytes: number; totalBytes: number }
  | { type: 'uploaded'; key: string; bytes: number }
  | { type: 'retry'; key: string; attempt: number; error: string }
  | { type: 'done'; files: number; bytes: number; skipped: number };

/** Options of {@link uploadClosure}. */
export interface CacheUploadOptions {
  /** The local binary cache (`nix copy --to file://DIR`, see `exportClosure`). */
  cacheDir: string;
  /** Top-level store paths; their closures are uploaded. */
  paths: readonly string[];
  /** The bucket (its root is the cache's root). */
  target: ObjectStore;
  /**
   * When given, every uploaded path must carry a valid signature by one of these keys (`name:base64`): a closure
   * signed with the wrong key is refused before anything is sent, instead of being refused later by every host.
   * Without it, a path must still carry some signature.
   */
  trustedPublicKeys?: readonly string[];
  /**
   * How to find what the bucket already has: a `HEAD` per key (as Nix does; cost grows with the closure), or a
   * listing of the cache root and `nar/` (one request per 1,000 objects; cost grows with the bucket). `auto`
   * (default) lists when more than 16 keys are to be checked.
   */
  presenceCheck?: 'auto' | 'head' | 'list';
  /** Files sent at once. Default 4. */
  concurrency?: number;
  /** Extra attempts per file after a transient failure (the SDK also retries each request). Default 2. */
  retries?: number;
  /** Base delay between file attempts; doubled each time. Default 250 ms. */
  retryDelayMs?: number;
  onEvent?: (event: CacheUploadEvent) => void;
}

/** What {@link uploadClosure} did. */
export interface CacheUploadResult {
  plan: CacheUploadPlan;
  /** Store paths of the closure. */
  closure: string[];
  files: number;
  bytes: number;
}

const DEFAULT_CACHE_INFO = 'StoreDir: /nix/store\nWantMassQuery: 1\nPriority: 40\n';

/**
 * Uploads the closures of `paths` from a local binary-cache directory to a bucket: what `bild --cache`
 * does (docs/design.md), with @aws-sdk/lib-storage multipart uploads for large NARs. Checks everything before
 * sending anything: every `.narinfo` parses, is signed (by a trusted key when given), names a NAR under `nar/`
 * that is a regular file, and the closure is complete (locally or in the bucket). Then skips what the bucket has,
 * sends NARs before the `.narinfo` files that announce them, retries transient failures, and reports progress.
 *
 * Only `nix-cache-info`, `*.narinfo` and `nar/*` are ever read from the directory: a secret key file beside them
 * (or a narinfo pointing at one) cannot be uploaded.
 */
export async function uploadClosure(options: CacheUploadOptions): Promise<CacheUploadResult> {
  const { target } = options;
  const emit = options.onEvent ?? (() => {});
  const cacheDir = options.cacheDir.replace(/\/+$/, '');
  const trusted = options.trustedPublicKeys?.map(parsePublicKey);
  const local = await readLocalClosure(cacheDir, options.paths, trusted);
  const cacheInfo = await readCacheInfo(cacheDir);

  const keys = [NIX_CACHE_INFO, ...local.entries.map((e) => e.narinfoKey), ...local.absent.map(narinfoKeyOf)];
  const byList =
    (options.presenceCheck ?? 'auto') === 'list' || (options.presenceCheck !== 'head' && keys.length > 16);
  const present = new Set<string>();
  if (byList) {
    for (const object of await target.list('', { recursive: false })) present.add(object.key);
  } else {
    await runPool(keys, options.concurrency ?? 8, async (key) => {
      if (await target.head(key)) present.add(key);
    });
  }
  const gone = local.absent.filter((path) => !present.has(narinfoKeyOf(path)));
  if (gone.length > 0) {
    throw new DeployError(
      'CACHE_INVALID',
      `${cacheDir}: closure incomplete: ${gone.join(', ')} ${gone.length === 1 ? 'is' : 'are'} referenced but neither in the local cache nor in ${target.url}`,
    );
  }
  // A NAR without its narinfo is what an interrupted upload leaves behind: found, it is not sent again.
  const unpublished = local.entries.filter((e) => !present.has(e.narinfoKey));
  if (byList && unpublished.length > 0) {
    for (const object of await target.list('nar/')) present.add(object.key);
  } else {
    await runPool(unpublished, options.concurrency ?? 8, async (entry) => {
      if (await target.head(entry.narKey)) present.add(entry.narKey);
    });
  }

  const plan = planCacheUpload({ entries: local.entries, present, cacheInfo });
  const files = plan.steps.length;
  emit({ type: 'planned', files, bytes: plan.bytes, skipped: plan.skipped.length });
  const loaded = new Map<string, number>();
  let sent = 0;
  const progress = (step: UploadStep, bytes: number) => {
    sent += bytes - (loaded.get(step.key) ?? 0);
    loaded.set(step.key, bytes);
    emit({
      type: 'progress',
      key: step.key,
      loaded: bytes,
      total: step.bytes,
      sentBytes: sent,
      totalBytes: plan.bytes,
    });
  };
  const retries = options.retries ?? 2;
  const delay = options.retryDelayMs ?? 250;
  await runGraph(plan.steps, options.concurrency ?? 4, async (step) => {
    for (let attempt = 1; ; attempt++) {
      try {
        await sendStep(target, step, (bytes) => progress(step, bytes));
        progress(step, step.bytes);
        emit({ type: 'uploaded', key: step.key, bytes: step.bytes });
        return;
      } catch (error) {
        if (attempt > retries || !isTransient(error)) {
          throw new DeployError(
            'CACHE_UPLOAD',
            `uploading ${step.key} to ${target.url} failed after ${attempt} attempt(s): ${(error as Error).message}`,
            { cause: error, details: { key: step.key, attempts: attempt } },
          );
        }
        emit({ type: 'retry', key: step.key, attempt, error: (error as Error).message });
        progress(step, 0);
        await sleep(delay * 2 ** (attempt - 1));
      }
    }
  });
  emit({ type: 'done', files, bytes: plan.bytes, skipped: plan.skipped.length });
  return { plan, closure: local.entries.map((e) => e.storePath), files, bytes: plan.bytes };
}

async function sendStep(target: ObjectStore, step: UploadStep, onProgress: (bytes: number) => void) {
  if (step.body !== undefined) {
    await target.put(step.key, step.body, { contentType: step.contentType });
  } else if (step.kind === 'narinfo') {
    // Small: one PUT of the bytes already checked, not a re-read of a file that may have changed since.
    await target.put(step.key, await readFile(step.file as string), { contentType: step.contentType });
  } else {
    await target.upload(step.key, step.file as string, { contentType: step.contentType, onProgress });
  }
}

function isTransient(error: unknown): boolean {
  if (isDeployError(error, 'S3_UNREACHABLE')) return true;
  if (isDeployError(error, 'S3_REQUEST')) {
    const status = (error.details as { status?: number } | undefined)?.status ?? 0;
    return status >= 500 || status === 429 || status === 408;
  }
  return !(error instanceof DeployError);
}

function narinfoKeyOf(storePath: string): string {
  return `${storePath.slice('/nix/store/'.length, '/nix/store/'.length + 32)}.narinfo`;
}

/** Reads and checks the closure's narinfos; paths referenced but absent locally are returned for a bucket check. */
async function readLocalClosure(
  cacheDir: string,
  paths: readonly string[],
  trusted: ReturnType<typeof parsePublicKey>[] | undefined,
): Promise<{ entries: LocalCacheEntry[]; absent: string[] }> {
  if (!cacheDir.startsWith('/'))
    throw new DeployError(
      'CACHE_INVALID',
      `cacheDir: expected an absolute path, found ${JSON.stringify(cacheDir)}`,
    );
  if (paths.length === 0)
    throw new DeployError('CACHE_INVALID', 'expected at least one store path to upload, found none');
  for (const path of paths) {
    if (!parseStorePath(path))
      throw new DeployError(
        'CACHE_INVALID',
        `expected a top-level store path, found ${JSON.stringify(path)}`,
      );
  }
  const entries: LocalCacheEntry[] = [];
  const absent: string[] = [];
  const seen = new Set<string>();
  const queue = [...paths];
  const requested = new Set(paths);
  while (queue.length > 0) {
    const storePath = queue.shift() as string;
    if (seen.has(storePath)) continue;
    seen.add(storePath);
    const narinfoKey = narinfoKeyOf(storePath);
    const narinfoFile = `${cacheDir}/${narinfoKey}`;
    const text = await readRegularFile(narinfoFile);
    if (text === undefined) {
      if (requested.has(storePath)) {
        throw new DeployError(
          'CACHE_INVALID',
          `${narinfoFile}: missing: ${storePath} is not in the local cache (export it first)`,
        );
      }
      absent.push(storePath);
      continue;
    }
    const info = parseNarinfo(text, narinfoFile);
    if (info.storePath !== storePath) {
      throw new DeployError(
        'CACHE_INVALID',
        `${narinfoFile}: expected StorePath ${storePath}, found ${info.storePath}`,
      );
    }
    const references = info.references.map((ref) => `/nix/store/${ref}`);
    checkSignatures(narinfoFile, info, references, trusted);
    const narFile = `${cacheDir}/${info.url}`;
    const narStat = await lstat(narFile).catch(() => undefined);
    if (!narStat?.isFile()) {
      throw new DeployError(
        'CACHE_INVALID',
        `${narFile}: expected the NAR of ${storePath} as a regular file, found ${narStat ? 'something else (a symlink?)' : 'nothing'}`,
      );
    }
    if (info.fileSize !== undefined && info.fileSize !== narStat.size) {
      throw new DeployError(
        'CACHE_INVALID',
        `${narFile}: expected ${info.fileSize} bytes (narinfo FileSize), found ${narStat.size}`,
      );
    }
    entries.push({
      storePath,
      narinfoKey,
      narinfoFile,
      narinfoBytes: Buffer.byteLength(text),
      narKey: info.url,
      narFile,
      narBytes: narStat.size,
      references: references.filter((ref) => ref !== storePath),
    });
    for (const ref of references) if (!seen.has(ref)) queue.push(ref);
  }
  return { entries, absent };
}

function checkSignatures(
  where: string,
  info: ReturnType<typeof parseNarinfo>,
  references: string[],
  trusted: ReturnType<typeof parsePublicKey>[] | undefined,
) {
  if (info.signatures.length === 0) {
    throw new DeployError(
      'CACHE_UNSIGNED',
      `${where}: ${info.storePath} is not signed; sign the closure before exporting it (nix store sign -r -k KEY)`,
    );
  }
  if (!trusted) return;
  const fingerprint = signatureFingerprint({
    storePath: info.storePath,
    narHash: info.narHash,
    narSize: info.narSize,
    references,
  });
  if (verifySignatures(fingerprint, info.signatures, trusted).length === 0) {
    const names = info.signatures.map((s) => s.slice(0, s.indexOf(':'))).join(', ');
    throw new DeployError(
      'CACHE_UNSIGNED',
      `${where}: ${info.storePath}: expected a valid signature by ${trusted.map((k) => k.name).join(' or ')}, found signature(s) by ${names} that do not verify`,
    );
  }
}

async function readCacheInfo(cacheDir: string): Promise<string> {
  const text = await readRegularFile(`${cacheDir}/${NIX_CACHE_INFO}`);
  if (text === undefined) return DEFAULT_CACHE_INFO;
  if (!/^StoreDir: \/nix\/store$/m.test(text)) {
    throw new DeployError(
      'CACHE_INVALID',
      `${cacheDir}/${NIX_CACHE_INFO}: expected "StoreDir: /nix/store", found another store directory`,
    );
  }
  return text;
}

/** Reads a file that must be a regular file (not a symlink to, say, a secret key); `undefined` if absent. */
async function readRegularFile(path: string): Promise<string | undefined> {
  const info = await lstat(path).catch(() => undefined);
  if (!info) return undefined;
  if (!info.isFile())
    throw new DeployError(
      'CACHE_INVALID',
      `${path}: expected a regular file, found a symlink or another kind of file`,
    );
  return readFile(path, 'utf8');
}

/**
 * Runs the steps with at most `limit` at once, each only after the steps named in its `after` have succeeded;
 * among ready steps, the plan's order (largest NARs first). The first failure stops new starts; steps running
 * finish; the failure is rethrown.
 */
async function runGraph(
  steps: readonly UploadStep[],
  limit: number,
  fn: (step: UploadStep) => Promise<void>,
) {
  const done = new Set<string>();
  const planned = new Set(steps.map((step) => step.key));
  const waiting = [...steps];
  let running = 0;
  let failure: { error: unknown } | undefined;
  await new Promise<void>((resolve) => {
    const pump = () => {
      while (failure === undefined && running < limit) {
        const index = waiting.findIndex((step) =>
          step.after.every((key) => done.has(key) || !planned.has(key)),
        );
        if (index < 0) break;
        const [step] = waiting.splice(index, 1) as [UploadStep];
        running++;
        fn(step).then(
          () => {
            done.add(step.key);
            running--;
            pump();
          },
          (error: unknown) => {
            failure ??= { error };
            running--;
            pump();
          },
        );
      }
      if (running === 0) resolve();
    };
    pump();
  });
  if (failure) throw failure.error;
  if (waiting.length > 0)
    throw new Error(`upload plan has unmet dependencies (${waiting[0]?.key}); this is a bug`);
}

function sleep(ms: number) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
