import { DeployError } from '../errors.js';
import type { ProfileGeneration } from './generations.js';
import { checkStorePaths } from './input.js';
import { DEFAULT_KEEP, type ServiceLayout } from './layout.js';
import { planRetention, type RetentionPlan } from './retention.js';
import type { Nix } from './types.js';

/** Options of {@link pinServiceVersion}. */
export interface PinOptions {
  layout: ServiceLayout;
  /** The store path the service must run; already in the store (see `Nix.copyFrom`). */
  storePath: string;
  /** Versions to keep (generations and GC roots). Default {@link DEFAULT_KEEP}. */
  keep?: number;
}

/** What {@link pinServiceVersion} did. */
export interface PinResult {
  /** The generation now current. */
  generation: ProfileGeneration;
  /** The store path that was current before, if any: what a health-gate failure switches back to. */
  previousStorePath?: string;
  /** The retention applied. */
  retention: RetentionPlan;
}

/**
 * Makes `storePath` the current version of a service: points its profile at it, roots it, and prunes older
 * versions down to `keep` (generations and GC roots alike). Switching back after a failed deploy is the same
 * call with the explicit previous store path, never `nix-env --rollback`: that picks the next generation down,
 * which after out-of-order history is not the one that was running.
 *
 * Roots are added before anything is deleted, so the new and the kept versions are rooted at every moment.
 * A profile still in the earlier layout (`layout.legacyProfile`) is moved into place first, generations kept.
 */
export async function pinServiceVersion(nix: Nix, options: PinOptions): Promise<PinResult> {
  const { layout, storePath } = options;
  checkStorePaths([storePath]);
  // A host deployed with the earlier layout: its profile moves first, so history and rollback carry over.
  if (layout.legacyProfile !== undefined) await nix.moveProfile(layout.legacyProfile, layout.profile);
  const before = await nix.listGenerations(layout.profile);
  const previousStorePath = before.find((g) => g.current)?.storePath;
  await nix.setProfile(layout.profile, storePath);
  const generations = await nix.listGenerations(layout.profile);
  const current = generations.find((g) => g.current);
  if (!current || current.storePath !== storePath) {
    throw new DeployError(
      'NIX_PROFILE',
      `profile ${layout.profile}: expected it to point to ${storePath} after setting it, found ${current?.storePath ?? 'no current generation'} (another process changed it?)`,
    );
  }
  const retention = planRetention({
    layout,
    generations,
    roots: await nix.listGcRoots(layout.gcrootsDir),
    keep: options.keep ?? DEFAULT_KEEP,
  });
  for (const root of retention.addRoots) await nix.addGcRoot(root.link, root.storePath);
  await nix.deleteGenerations(layout.profile, retention.deleteGenerations);
  for (const link of retention.removeRoots) await nix.removeGcRoot(link);
  return {
    generation: current,
    ...(previousStorePath === undefined || previousStorePath === storePath ? {} : { previousStorePath }),
    retention,
  };
}
