import { DeployError } from '../errors.js';
import type { Manifest } from '../manifest/schema.js';
import { parseManifest } from '../manifest/validate.js';
import type { ArchiveEntry } from '../s3/manifest-store.js';
import type { PushContext } from './context.js';
import { isOpenRollout } from './rollout-plan.js';
import { type ManifestTrust, openPushedManifest } from './signing.js';

/** How many archives a search for a rollback point reads at most (newest first). */
export const ROLLBACK_POINT_SEARCH_LIMIT = 500;

/** An archived manifest, read, verified and parsed. */
export interface ReadArchive {
  entry: ArchiveEntry;
  manifest: Manifest;
}

/**
 * True when an archived manifest is a wave of a rollout (its `rollout` is open), of `service`'s rollout when one
 * is given: not a rollback point (of that service). Returning to the middle of a rollout would leave the service
 * on two versions with nothing driving it; the manifest before the rollout is its rollback point. For another
 * service the same manifest is an ordinary one.
 */
export function isWave(manifest: Manifest, service?: string): boolean {
  return isOpenRollout(manifest.rollout) && (service === undefined || manifest.rollout?.service === service);
}

/**
 * Reads archive `entry`: its signature must verify with `trust` (it is what a rollback or a revert builds on)
 * and it must be valid today; otherwise a `DeployError` naming the archive.
 */
export async function readVerifiedArchive(
  ctx: Pick<PushContext, 'manifests' | 'secretsDir'>,
  entry: ArchiveEntry,
  trust: ManifestTrust,
): Promise<ReadArchive> {
  const { text } = await ctx.manifests.readArchive(entry.id);
  const { payload } = openPushedManifest(text, `archived manifest ${entry.id}`, trust);
  const parsed = parseManifest(payload, { secretsDir: ctx.secretsDir });
  if (!parsed.ok)
    throw new DeployError(
      'MANIFEST_INVALID',
      `archived manifest ${entry.id} is not valid today; not restored`,
      {
        details: parsed.issues,
      },
    );
  return { entry, manifest: parsed.manifest };
}

/**
 * The archive holding the manifest of `generation`, a rollout's rollback point, newest first among the newest
 * {@link ROLLBACK_POINT_SEARCH_LIMIT} archives (after an interrupted write the same manifest can be archived
 * twice: either is the same manifest). Throws `S3_NOT_FOUND` when no archive holds it.
 */
export async function findRollbackPoint(
  ctx: Pick<PushContext, 'manifests' | 'secretsDir'>,
  generation: string,
  trust: ManifestTrust,
): Promise<ReadArchive> {
  const archives = (await ctx.manifests.listArchives()).slice(0, ROLLBACK_POINT_SEARCH_LIMIT);
  for (const entry of archives) {
    const { text } = await ctx.manifests.readArchive(entry.id);
    const opened = openPushedManifest(text, `archived manifest ${entry.id}`, 'unverified');
    const parsed = parseManifest(opened.payload, { secretsDir: ctx.secretsDir });
    if (parsed.ok && parsed.manifest.generation === generation) return readVerifiedArchive(ctx, entry, trust);
  }
  throw new DeployError(
    'S3_NOT_FOUND',
    `no archived manifest of generation ${generation} (the rollout's rollback point) among the newest ${archives.length} archives of ${ctx.manifests.url}: push history lists them; push rollback --to ARCHIVE returns to one`,
  );
}
