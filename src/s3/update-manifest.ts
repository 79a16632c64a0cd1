import { DeployError, isDeployError } from '../errors.js';
import type { ArchiveEntry, ManifestStore } from './manifest-store.js';

/** Options of {@link updateManifest}. */
export interface UpdateManifestOptions {
  /** The clock, read once per attempt for the archive name. */
  now: () => Date;
  /** Attempts before giving up on conflicts. Default 5. */
  maxAttempts?: number;
  /** Reports each conflict that led to a retry. */
  onConflict?: (attempt: number, error: DeployError) => void;
}

/** What {@link updateManifest} did. */
export interface UpdateManifestResult {
  /** False when `change` returned the current text: nothing was archived or written. */
  changed: boolean;
  /** The manifest now current. */
  text: string;
  etag: string;
  /** The archive of the replaced manifest, when there was one. */
  archive?: ArchiveEntry;
  attempts: number;
}

/**
 * Read-modify-write of the manifest without lost updates: read it with its ETag, compute the new text with
 * `change` (from the current text, `undefined` when there is none yet), archive the current one, and write with
 * compare-and-swap. When another writer got in between (`S3_CONFLICT`), start over from a fresh read, so their
 * change is kept and `change` is applied on top of it. `change` may run several times: keep it pure, and throw
 * from it to abort (say, when the result does not validate).
 */
export async function updateManifest(
  store: ManifestStore,
  change: (current: string | undefined, attempt: number) => string | Promise<string>,
  options: UpdateManifestOptions,
): Promise<UpdateManifestResult> {
  const maxAttempts = options.maxAttempts ?? 5;
  for (let attempt = 1; ; attempt++) {
    const current = await store.read();
    const currentText = current.status === 'found' ? current.text : undefined;
    const next = await change(currentText, attempt);
    if (current.status === 'found' && next === current.text) {
      return { changed: false, text: current.text, etag: current.etag, attempts: attempt };
    }
    const archive =
      currentText === undefined ? undefined : await store.archive(currentText, { now: options.now() });
    try {
      const { etag } = await store.write(
        next,
        current.status === 'found' ? { ifMatch: current.etag } : { ifNoneMatch: '*' },
      );
      return { changed: true, text: next, etag, attempts: attempt, ...(archive ? { archive } : {}) };
    } catch (error) {
      if (!isDeployError(error, 'S3_CONFLICT')) throw error;
      if (attempt >= maxAttempts) {
        throw new DeployError(
          'S3_CONFLICT',
          `${store.url}: gave up after ${attempt} attempts: another writer changed the manifest each time`,
          { cause: error, details: { attempts: attempt } },
        );
      }
      options.onConflict?.(attempt, error);
    }
  }
}
