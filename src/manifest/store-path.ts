/** Nix's base32 alphabet: digits and lowercase letters without e, o, u and t. */
export const NIX_BASE32_CHARS = '0123456789abcdfghijklmnpqrsvwxyz';

/**
 * A top-level store path: `/nix/store/` + 32 base32 characters + `-` + a store name, and nothing after it.
 * Store names use Nix's own character set, may not start with `.`, and are at most 211 characters.
 */
export const STORE_PATH_RE =
  /^\/nix\/store\/([0123456789abcdfghijklmnpqrsvwxyz]{32})-([A-Za-z0-9+_?=-][A-Za-z0-9+._?=-]{0,210})$/;

/** The parts of a store path. */
export interface StorePath {
  /** The full path, e.g. `/nix/store/<hash>-hello-1.0`. */
  path: string;
  /** The 32-character hash part. */
  hash: string;
  /** The name part after the hash, e.g. `hello-1.0`. */
  name: string;
}

/**
 * Parses a top-level Nix store path. Returns `undefined` for anything else, including paths inside a store
 * path (`.../bin/x`) and traversal attempts (`.../..`).
 */
export function parseStorePath(path: string): StorePath | undefined {
  const match = STORE_PATH_RE.exec(path);
  if (!match) return undefined;
  return { path, hash: match[1] as string, name: match[2] as string };
}

/** True when `path` is a top-level Nix store path (see {@link parseStorePath}). */
export function isStorePath(path: string): boolean {
  return STORE_PATH_RE.test(path);
}
