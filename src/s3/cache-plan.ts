import { DeployError } from '../errors.js';

/** One store path of a local binary cache, as found on disk. */
export interface LocalCacheEntry {
  storePath: string;
  /** `<hash>.narinfo` */
  narinfoKey: string;
  narinfoFile: string;
  narinfoBytes: number;
  /** `nar/<filehash>.nar[.xz]`, from the narinfo's `URL`. */
  narKey: string;
  narFile: string;
  /** Size of the NAR file in bytes. */
  narBytes: number;
  /** Other store paths it refers to (itself excluded). */
  references: string[];
}

/** One object to upload. */
export interface UploadStep {
  kind: 'nix-cache-info' | 'nar' | 'narinfo';
  key: string;
  /** The local file to send, or... */
  file?: string;
  /** ...the text to send. */
  body?: string;
  bytes: number;
  contentType: string;
}

/** What {@link planCacheUpload} decided. */
export interface CacheUploadPlan {
  /**
   * Steps in batches: a batch starts only when the one before is complete. First every missing NAR (and
   * `nix-cache-info`), then the `.narinfo` files, dependencies before the paths that refer to them, so the bucket
   * never advertises a path whose NAR or references are not there yet: an interrupted upload leaves at worst
   * unreferenced NARs, never a broken path.
   */
  batches: UploadStep[][];
  /** Keys not uploaded because the bucket has them. */
  skipped: string[];
  /** Bytes to send. */
  bytes: number;
}

/** The inputs of {@link planCacheUpload}. */
export interface CacheUploadInput {
  entries: readonly LocalCacheEntry[];
  /** Keys the bucket already has (among the entries' keys and `nix-cache-info`). */
  present: ReadonlySet<string>;
  /** The `nix-cache-info` text to upload if the bucket has none. */
  cacheInfo: string;
}

export const NIX_CACHE_INFO = 'nix-cache-info';

/**
 * Plans the upload of a closure's cache objects (pure). A path whose `.narinfo` is in the bucket is complete
 * there and skipped entirely; a NAR already present (an earlier interrupted upload) is not sent again.
 */
export function planCacheUpload(input: CacheUploadInput): CacheUploadPlan {
  const { entries, present } = input;
  const skipped: string[] = [];
  const first: UploadStep[] = [];
  if (present.has(NIX_CACHE_INFO)) skipped.push(NIX_CACHE_INFO);
  else {
    first.push({
      kind: 'nix-cache-info',
      key: NIX_CACHE_INFO,
      body: input.cacheInfo,
      bytes: Buffer.byteLength(input.cacheInfo),
      contentType: 'text/x-nix-cache-info',
    });
  }
  const todo = new Map<string, LocalCacheEntry>();
  for (const entry of entries) {
    if (present.has(entry.narinfoKey)) {
      skipped.push(entry.narinfoKey, entry.narKey);
      continue;
    }
    todo.set(entry.storePath, entry);
    if (present.has(entry.narKey)) skipped.push(entry.narKey);
    else {
      first.push({
        kind: 'nar',
        key: entry.narKey,
        file: entry.narFile,
        bytes: entry.narBytes,
        contentType: 'application/x-nix-nar',
      });
    }
  }
  // Depth among the paths still to publish: 0 when all references are already published.
  const depth = new Map<string, number>();
  const depthOf = (path: string, trail: Set<string>): number => {
    const known = depth.get(path);
    if (known !== undefined) return known;
    if (trail.has(path)) throw new DeployError('CACHE_INVALID', `reference cycle through ${path}`);
    trail.add(path);
    let d = 0;
    for (const ref of todo.get(path)?.references ?? [])
      if (todo.has(ref)) d = Math.max(d, depthOf(ref, trail) + 1);
    trail.delete(path);
    depth.set(path, d);
    return d;
  };
  const levels: UploadStep[][] = [];
  for (const entry of [...todo.values()].sort((a, b) => (a.storePath < b.storePath ? -1 : 1))) {
    const d = depthOf(entry.storePath, new Set());
    levels[d] ??= [];
    levels[d].push({
      kind: 'narinfo',
      key: entry.narinfoKey,
      file: entry.narinfoFile,
      bytes: entry.narinfoBytes,
      contentType: 'text/x-nix-narinfo',
    });
  }
  const batches = [first, ...levels].filter((batch) => batch.length > 0);
  return { batches, skipped, bytes: batches.flat().reduce((sum, step) => sum + step.bytes, 0) };
}
