import { DeployError } from '../errors.js';
import { parseGenerationLinks, type SymlinkEntry } from './generations.js';

/** One directory's view of a profile: the profile's file name and the symlinks beside it. */
export interface ProfileListing {
  /** The profile's file name, e.g. `web` for `/nix/var/nix/profiles/biz/web`. */
  name: string;
  /** The symlinks of the directory it is in (see `Nix.listGcRoots`). */
  entries: readonly SymlinkEntry[];
}

/** The steps that move one profile and its generations to another name or directory, in order. */
export interface ProfileMovePlan {
  /** Generation links to copy, as they are (same store path; the link's time kept): old name → new name. */
  copy: { from: string; to: string; storePath: string }[];
  /** The new profile symlink's target (a relative generation link name), when it must be created. */
  profile?: string;
  /** Old symlinks to delete afterwards, the profile first: file names in the old directory. */
  remove: string[];
}

/**
 * Plans moving the profile `from` to `to` with every generation number and the current generation kept: the
 * upgrade from the layout where a service's profile and its `<name>-<n>-link` generations lay among every other
 * service's. Pure. Safe to repeat after a crash at any step: what is already copied is skipped, an existing new
 * profile is never changed (it is the one in use), and the old links go only after their copies exist.
 *
 * Only links that are the old profile's are touched: generations whose target is a store path, and the profile
 * itself when it points to one of its generation links. In the old layout a service named `web-1-link` had its
 * profile where `web`'s first generation was; such a link points to another link, so it is never taken for a
 * generation of `web`, and `web`'s profile is only recreated if its current generation survived.
 *
 * Throws `NIX_PROFILE` when both sides hold the same generation number for different store paths (a deployer
 * downgraded and upgraded again): which one is right cannot be known here.
 */
export function planProfileMove(from: ProfileListing, to: ProfileListing): ProfileMovePlan {
  const old = parseGenerationLinks(from.name, from.entries);
  const existing = new Map(parseGenerationLinks(to.name, to.entries).map((g) => [g.number, g.storePath]));
  const plan: ProfileMovePlan = { copy: [], remove: [] };
  for (const generation of old) {
    const there = existing.get(generation.number);
    if (there !== undefined && there !== generation.storePath) {
      throw new DeployError(
        'NIX_PROFILE',
        `cannot move profile ${from.name} to ${to.name}: generation ${generation.number} is ${generation.storePath} in the old place and ${there} in the new one; remove the one that is wrong (nix-env -p PROFILE --delete-generations ${generation.number})`,
      );
    }
    if (there === undefined) {
      plan.copy.push({
        from: `${from.name}-${generation.number}-link`,
        to: `${to.name}-${generation.number}-link`,
        storePath: generation.storePath,
      });
    }
  }
  // The old profile is the link named like it that points to one of its generation links (by name: the
  // generation may have been overwritten by another service's profile, see above).
  const profileLink = from.entries.find((entry) => entry.name === from.name);
  const pointsTo = profileLink?.target.split('/').pop() ?? '';
  const ownsProfile = new RegExp(`^${escapeRegExp(from.name)}-[0-9]{1,9}-link$`).test(pointsTo);
  const current = old.find((g) => g.current);
  if (ownsProfile && current && !to.entries.some((entry) => entry.name === to.name)) {
    plan.profile = `${to.name}-${current.number}-link`;
  }
  if (ownsProfile) plan.remove.push(from.name);
  for (const generation of old) plan.remove.push(`${from.name}-${generation.number}-link`);
  return plan;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
