import { isStorePath } from '../manifest/store-path.js';

/** One generation of a Nix profile. */
export interface ProfileGeneration {
  /** Generation number, as `nix-env --list-generations` shows it. */
  number: number;
  /** The store path the generation points to. */
  storePath: string;
  /** True for the generation the profile currently points to. */
  current: boolean;
}

/** A symlink found in a directory: its file name and its target. */
export interface SymlinkEntry {
  name: string;
  target: string;
}

/**
 * Reads a profile's generations from the symlinks of its directory: `<name>` points to `<name>-<n>-link`, which
 * points to a store path. Links of other profiles in the same directory (`web-1` beside `web`) never match,
 * because the number must be all digits. Sorted by number, oldest first.
 */
export function parseGenerationLinks(
  profileName: string,
  entries: readonly SymlinkEntry[],
): ProfileGeneration[] {
  const current = entries.find((entry) => entry.name === profileName)?.target;
  const generations: ProfileGeneration[] = [];
  for (const entry of entries) {
    if (!entry.name.startsWith(`${profileName}-`) || !entry.name.endsWith('-link')) continue;
    const digits = entry.name.slice(profileName.length + 1, -'-link'.length);
    if (!/^[0-9]{1,9}$/.test(digits) || !isStorePath(entry.target)) continue;
    // Nix writes the profile link relative (`web-3-link`); accept an absolute one too.
    const isCurrent = current === entry.name || current?.endsWith(`/${entry.name}`) === true;
    generations.push({ number: Number(digits), storePath: entry.target, current: isCurrent });
  }
  return generations.sort((a, b) => a.number - b.number);
}

/**
 * Parses `find DIR -maxdepth 1 -type l -printf '%f\0%l\0'` output: NUL-separated name/target pairs, so no
 * file name can forge an entry.
 */
export function parseSymlinkListing(output: string): SymlinkEntry[] {
  const fields = output.split('\0');
  const entries: SymlinkEntry[] = [];
  for (let i = 0; i + 1 < fields.length; i += 2) {
    entries.push({ name: fields[i] as string, target: fields[i + 1] as string });
  }
  return entries;
}
