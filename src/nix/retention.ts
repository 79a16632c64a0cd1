import { DeployError } from '../errors.js';
import { parseStorePath } from '../manifest/store-path.js';
import type { ProfileGeneration, SymlinkEntry } from './generations.js';
import { gcRootPath, type ServiceLayout } from './layout.js';

/** What to delete and pin so a service keeps exactly its last versions. */
export interface RetentionPlan {
  /** Generations that stay, oldest first. */
  keep: ProfileGeneration[];
  /** Generation numbers to delete. */
  deleteGenerations: number[];
  /** GC roots to create (symlink → store path). */
  addRoots: { link: string; storePath: string }[];
  /** GC-root symlinks to remove. */
  removeRoots: string[];
}

/** The inputs of {@link planRetention}. */
export interface RetentionInput {
  layout: ServiceLayout;
  /** The profile's generations, as listed after the newest was set. */
  generations: readonly ProfileGeneration[];
  /** The symlinks currently in `layout.gcrootsDir`. */
  roots: readonly SymlinkEntry[];
  /** How many generations to keep, at least 1. */
  keep: number;
}

/**
 * Plans retention: keep the `keep` newest generations, always including the current one (after a manual
 * `--switch-generation` it may not be the newest: then it and the `keep - 1` newest stay), and make the GC roots
 * exactly the store paths of the kept generations. Symlinks in the roots directory whose names are not store
 * path base names are not ours and are left alone.
 */
export function planRetention(input: RetentionInput): RetentionPlan {
  const { layout, generations, roots, keep } = input;
  if (!Number.isInteger(keep) || keep < 1) {
    throw new DeployError('NIX_INPUT', `keep: expected an integer >= 1, found ${String(keep)}`);
  }
  const newestFirst = [...generations].sort((a, b) => b.number - a.number);
  const current = newestFirst.find((generation) => generation.current);
  const kept = new Set<ProfileGeneration>(current ? [current] : []);
  for (const generation of newestFirst) {
    if (kept.size >= keep) break;
    kept.add(generation);
  }
  const keepList = [...kept].sort((a, b) => a.number - b.number);
  const wanted = new Map(keepList.map((g) => [gcRootPath(layout, g.storePath), g.storePath]));
  const existing = new Map<string, string>();
  for (const root of roots) {
    if (!parseStorePath(`/nix/store/${root.name}`)) continue; // not a root we made
    existing.set(`${layout.gcrootsDir}/${root.name}`, root.target);
  }
  return {
    keep: keepList,
    deleteGenerations: newestFirst
      .filter((generation) => !kept.has(generation))
      .map((generation) => generation.number)
      .sort((a, b) => a - b),
    addRoots: [...wanted]
      .filter(([link, storePath]) => existing.get(link) !== storePath)
      .map(([link, storePath]) => ({ link, storePath })),
    removeRoots: [...existing.keys()].filter((link) => !wanted.has(link)),
  };
}
