import { DeployError, isDeployError } from '../errors.js';
import { BUCKET_MODE_KEY, type WriteMode } from './bucket-mode.js';
import type { LeaseOptions, LeaseRecord } from './lease.js';
import type { ArchiveEntry, ManifestRead, ManifestStore } from './manifest-store.js';

/** Something {@link updateManifest} wants the caller to know (the library never prints). */
export type UpdateManifestEvent =
  /** No `bucket-mode.json`: written with compare-and-swap, as before `push init` recorded modes. */
  | { type: 'mode-missing'; message: string }
  /** Lease mode: another push holds the lease; waiting for it. */
  | { type: 'lease-wait'; message: string; holder: LeaseRecord }
  /** Lease mode: the lease was lost or ran out before the write (a laptop closed mid-push); starting over. */
  | { type: 'lease-lost'; message: string; attempt: number };

/** Options of {@link updateManifest}. */
export interface UpdateManifestOptions {
  /** The clock, read once per attempt for the archive name (and, in lease mode, for the lease). */
  now: () => Date;
  /** Attempts before giving up on conflicts (and lost leases). Default 5. */
  maxAttempts?: number;
  /** Reports each conflict that led to a retry. */
  onConflict?: (attempt: number, error: DeployError) => void;
  /** Reports what else happened: no recorded mode, waiting for a lease, a lease lost. */
  onEvent?: (event: UpdateManifestEvent) => void;
  /**
   * How to write. Default: the mode `push init` recorded in the bucket (`bucket-mode.json`), so every machine
   * writes the same way; without a record, `conditional` (and a `mode-missing` event).
   */
  mode?: WriteMode;
  /** Lease-mode settings; the clock defaults to `now`. */
  lease?: LeaseOptions;
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
  /** How it was written. */
  mode: WriteMode;
}

/**
 * Read-modify-write of the manifest without lost updates: read it with its ETag, compute the new text with
 * `change` (from the current text, `undefined` when there is none yet), archive the current one, and write with
 * compare-and-swap. When another writer got in between (`S3_CONFLICT`), start over from a fresh read, so their
 * change is kept and `change` is applied on top of it. `change` may run several times: keep it pure, and throw
 * from it to abort (say, when the result does not validate).
 *
 * In lease mode (a bucket that does not enforce conditional writes) each attempt first takes the manifest's
 * lease, reads, archives, and writes only after reading the lease back as still held; a lease lost or run out
 * meanwhile means starting over from a fresh read, never writing.
 */
export async function updateManifest(
  store: ManifestStore,
  change: (current: string | undefined, attempt: number) => string | Promise<string>,
  options: UpdateManifestOptions,
): Promise<UpdateManifestResult> {
  const maxAttempts = options.maxAttempts ?? 5;
  const mode = options.mode ?? (await recordedMode(store, options));
  for (let attempt = 1; ; attempt++) {
    const lease =
      mode === 'lease'
        ? await store.acquireLease({
            now: () => options.now().getTime(),
            onWait: (holder) =>
              options.onEvent?.({
                type: 'lease-wait',
                holder,
                message: `waiting for the manifest's lease, held by ${holder.owner} until ${holder.expiresAt}`,
              }),
            ...options.lease,
          })
        : undefined;
    try {
      const current = await store.read();
      const currentText = current.status === 'found' ? current.text : undefined;
      const next = await change(currentText, attempt);
      if (current.status === 'found' && next === current.text) {
        return { changed: false, text: current.text, etag: current.etag, attempts: attempt, mode };
      }
      const now = options.now();
      const archive =
        currentText === undefined
          ? undefined
          : await store.archive(currentText, lease ? { now, lease } : { now });
      const { etag } = await store.write(next, lease ? { lease } : condition(current, mode));
      return { changed: true, text: next, etag, attempts: attempt, mode, ...(archive ? { archive } : {}) };
    } catch (error) {
      if (!isDeployError(error, 'S3_CONFLICT')) throw error;
      const leaseState = (error.details as { lease?: string } | undefined)?.lease;
      if (attempt >= maxAttempts) {
        throw new DeployError(
          'S3_CONFLICT',
          leaseState
            ? `${store.url}: gave up after ${attempt} attempts: the lease was lost before each write`
            : `${store.url}: gave up after ${attempt} attempts: another writer changed the manifest each time`,
          { cause: error, details: { attempts: attempt } },
        );
      }
      if (leaseState) {
        options.onEvent?.({
          type: 'lease-lost',
          attempt,
          message: `the manifest's lease was ${leaseState === 'lost' ? 'taken over' : 'about to run out'} before the write (attempt ${attempt}); nothing written, re-reading and starting over`,
        });
      } else options.onConflict?.(attempt, error);
    } finally {
      // A failed release only leaves the lock to expire: never a reason to fail a push that wrote.
      await lease?.release().catch(() => {});
    }
  }
}

function condition(current: ManifestRead, mode: WriteMode) {
  if (current.status !== 'found') return { ifNoneMatch: '*' } as const;
  return {
    ifMatch: current.etag,
    etagForm: mode === 'conditional-unquoted' ? 'unquoted' : 'quoted',
  } as const;
}

async function recordedMode(store: ManifestStore, options: UpdateManifestOptions): Promise<WriteMode> {
  const record = await store.readWriteMode();
  if (record) return record.mode;
  options.onEvent?.({
    type: 'mode-missing',
    message: `no ${BUCKET_MODE_KEY} beside ${store.url}: writing with compare-and-swap; run "push init" to probe the bucket (on one that ignores conditional writes, two pushes at once can lose an update)`,
  });
  return 'conditional';
}
