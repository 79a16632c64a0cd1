import type { ArchiveEntry } from '../s3/manifest-store.js';
import type { PushContext } from './context.js';

/**
 * How many archived manifests `push gc` keeps by default. Every push archives the manifest it replaces, so
 * `manifests/` grows by one object per deploy, forever, and every `push history`, `push rollback --steps` and
 * `push gc` lists all of it (one request per 1,000 archives) to find the newest few. A hundred deploys back is
 * further than a rollback goes: `push gc` keeps the closures of the newest `--keep` manifests only.
 */
export const DEFAULT_KEEP_ARCHIVES = 100;

/** What {@link planArchiveRetention} keeps and deletes, both newest first. */
export interface ArchiveRetentionPlan {
  keep: ArchiveEntry[];
  delete: ArchiveEntry[];
}

/** Keeps the newest `keepArchives` of `archives` (given newest first, as `listArchives` returns them). Pure. */
export function planArchiveRetention(
  archives: readonly ArchiveEntry[],
  keepArchives: number,
): ArchiveRetentionPlan {
  return { keep: archives.slice(0, keepArchives), delete: archives.slice(keepArchives) };
}

/**
 * Deletes the archives a plan drops, oldest first: an interrupted run leaves the newest ones, never a gap.
 * Returns how many were deleted.
 */
export async function applyArchiveRetention(ctx: PushContext, plan: ArchiveRetentionPlan): Promise<number> {
  for (const entry of [...plan.delete].reverse()) await ctx.manifests.objects.delete(entry.key);
  return plan.delete.length;
}
