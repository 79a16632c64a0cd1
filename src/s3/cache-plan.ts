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
  /** Keys of steps that must have completed before this one starts. */
  after: string[];
}

/** What {@link planCacheUpload} decided. */
export interface CacheUploadPlan {
  /**
   * The objects to send. A `.narinfo` waits for its NAR and for the `.narinfo` of every path it refers to, so the
   * bucket never advertises a path whose NAR or references are not there yet: an interrupted upload leaves at
   * worst unannounced NARs, never a broken path. Everything else may run at once; largest NARs are listed first.
   */
  steps: UploadStep[];
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

/** The key of a binary cache's metadata file (`StoreDir: /nix/store`, ...). */
export const NIX_CACHE_INFO = 'nix-cache-info';

/**
 * Plans the upload of a closure's cache objects (pure). A path whose `.narinfo` is in the bucket is complete
 * there and skipped entirely; a NAR already present (an earlier interrupted upload) is not sent again.
 */
export function planCacheUpload(input: CacheUploadInput): CacheUploadPlan {
  const { entries, present } = input;
  const skipped: string[] = [];
  const nars: UploadStep[] = [];
  const narinfos: UploadStep[] = [];
  const cacheInfo: UploadStep[] = [];
  if (present.has(NIX_CACHE_INFO)) skipped.push(NIX_CACHE_INFO);
  else {
    cacheInfo.push({
      kind: 'nix-cache-info',
      key: NIX_CACHE_INFO,
      body: input.cacheInfo,
      bytes: Buffer.byteLength(input.cacheInfo),
      contentType: 'text/x-nix-cache-info',
      after: [],
    });
  }
  const todo = new Map(entries.filter((e) => !present.has(e.narinfoKey)).map((e) => [e.storePath, e]));
  for (const entry of entries) {
    if (!todo.has(entry.storePath)) skipped.push(entry.narinfoKey, entry.narKey);
  }
  for (const entry of todo.values()) {
    const after: string[] = [];
    if (present.has(entry.narKey)) skipped.push(entry.narKey);
    else {
      nars.push({
        kind: 'nar',
        key: entry.narKey,
        file: entry.narFile,
        bytes: entry.narBytes,
        contentType: 'application/x-nix-nar',
        after: [],
      });
      after.push(entry.narKey);
    }
    for (const ref of entry.references) {
      const dependency = todo.get(ref);
      if (dependency) after.push(dependency.narinfoKey);
    }
    narinfos.push({
      kind: 'narinfo',
      key: entry.narinfoKey,
      file: entry.narinfoFile,
      bytes: entry.narinfoBytes,
      contentType: 'text/x-nix-narinfo',
      after,
    });
  }
  checkAcyclic(narinfos);
  nars.sort((a, b) => b.bytes - a.bytes || (a.key < b.key ? -1 : 1));
  narinfos.sort((a, b) => (a.key < b.key ? -1 : 1));
  const steps = [...cacheInfo, ...nars, ...narinfos];
  return { steps, skipped, bytes: steps.reduce((sum, step) => sum + step.bytes, 0) };
}

/** Store paths cannot refer to each other in a cycle (self-references are dropped earlier); a cache that says so lies. */
function checkAcyclic(steps: UploadStep[]) {
  const byKey = new Map(steps.map((step) => [step.key, step]));
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (step: UploadStep) => {
    if (state.get(step.key) === 'done') return;
    if (state.get(step.key) === 'visiting')
      throw new DeployError('CACHE_INVALID', `reference cycle through ${step.key}`);
    state.set(step.key, 'visiting');
    for (const key of step.after) {
      const dependency = byKey.get(key);
      if (dependency) visit(dependency);
    }
    state.set(step.key, 'done');
  };
  for (const step of steps) visit(step);
}
