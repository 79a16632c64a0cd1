import type { ProfileGeneration, SymlinkEntry } from './generations.js';
import type { PathInfo } from './path-info.js';

/** How NARs are compressed in an exported binary cache. */
export type NarCompression = 'xz' | 'zstd' | 'bzip2' | 'none';

/** Options of {@link Nix.copyFrom}. */
export interface CopyFromOptions {
  /**
   * The only keys whose signatures are accepted (`name:base64`). They replace, not extend, the host's
   * configured keys, so what is trusted is exactly what the caller passed. At least one is required.
   */
  trustedPublicKeys: readonly string[];
  /**
   * `false` accepts unsigned paths (`require-sigs false`): only for an operator's explicit
   * `--insecure-allow-unsigned`, and only then may `trustedPublicKeys` be empty. Default true.
   */
  requireSignatures?: boolean;
}

/**
 * The Nix operations the deployer and push need. Implemented by {@link createNix} (the real `nix`, `nix-env` and
 * `nix-store` through a Shell) and by `createFakeNix` from `@omni/deploy/testing`; one contract suite runs
 * against both. Every method refuses malformed input (`NIX_INPUT`) before running anything, and reports failure
 * as a `DeployError` with a `NIX_*` code.
 */
export interface Nix {
  /**
   * Copies the closures of `paths` from a binary cache (`s3://bucket?...`, `http(s)://...`, `file:///dir`) into
   * this store, refusing any fetched path not signed by one of `trustedPublicKeys` (`NIX_SIGNATURE`). Paths
   * already present are not fetched again, so each of `paths` itself is then checked too: it must carry a valid
   * signature by a trusted key, in this store or in the cache's narinfo over this store's NAR hash, or the call
   * fails with `NIX_SIGNATURE` naming it and the trusted keys (its dependencies are valid here either way). Only
   * `requireSignatures: false` skips both checks. `NIX_NOT_FOUND` when the cache lacks a path (Nix reads even a
   * present path's closure from it), `NIX_UNREACHABLE` when it cannot be reached.
   */
  copyFrom(substituter: string, paths: readonly string[], options: CopyFromOptions): Promise<void>;
  /**
   * Information on the valid paths among `paths` (with `closure`, on their whole closures). Paths that are not
   * in the store are left out, so `pathInfo([p])` being empty means "not installed".
   */
  pathInfo(paths: readonly string[], options?: { closure?: boolean }): Promise<PathInfo[]>;
  /** Creates an ed25519 signing key pair (`nix-store --generate-binary-cache-key`); returns the public key. */
  generateKey(name: string, secretKeyFile: string, publicKeyFile: string): Promise<string>;
  /** Signs the closures of `paths` with the secret key in `secretKeyFile` (`nix store sign -r`). */
  sign(paths: readonly string[], secretKeyFile: string): Promise<void>;
  /**
   * Writes the closures of `paths` to a binary-cache directory (`nix copy --to file://DIR`): `nix-cache-info`,
   * `<hash>.narinfo`, `nar/*`. Paths already in it are skipped, signatures included: sign first.
   */
  exportToCache(
    paths: readonly string[],
    cacheDir: string,
    options?: { compression?: NarCompression },
  ): Promise<void>;
  /** Points `profile` at `storePath`, as a new generation unless the newest already is that path. */
  setProfile(profile: string, storePath: string): Promise<void>;
  /**
   * Moves the profile `from` and its generations (`<from>-<n>-link`) to `to` (`<to>-<n>-link`), numbers, store
   * paths and the current generation kept (see `planProfileMove`): the new links exist before the old ones go,
   * so every version stays rooted, and a move cut short finishes when repeated. Nothing when `from` has no
   * generations; `NIX_PROFILE` when both hold one number for different paths.
   */
  moveProfile(from: string, to: string): Promise<void>;
  /** Points `profile` at an existing generation (`nix-env --switch-generation`). */
  switchGeneration(profile: string, generation: number): Promise<void>;
  /** The generations of `profile`, oldest first; empty when it does not exist. */
  listGenerations(profile: string): Promise<ProfileGeneration[]>;
  /** Deletes the given generations; refuses (`NIX_COMMAND`) to delete the current one. */
  deleteGenerations(profile: string, generations: readonly number[]): Promise<void>;
  /** Makes `link` a symlink to `storePath` registered as a GC root (`nix-store --realise --add-root`). */
  addGcRoot(link: string, storePath: string): Promise<void>;
  /** Removes a GC-root symlink; no error when it is already gone. */
  removeGcRoot(link: string): Promise<void>;
  /** The symlinks in `dir` (name and target); empty when `dir` does not exist. */
  listGcRoots(dir: string): Promise<SymlinkEntry[]>;
}
