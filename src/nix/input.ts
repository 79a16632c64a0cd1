import { DeployError } from '../errors.js';
import { ABSOLUTE_PATH_RE } from '../manifest/patterns.js';
import { isStorePath } from '../manifest/store-path.js';
import { parsePublicKey } from './signing.js';

/**
 * Argument checks shared by the real Nix adapter and the fake, so both refuse the same input the same way:
 * every value here becomes a command-line argument, and one that starts with `-` or smuggles a space into a
 * space-separated setting would change what Nix does.
 */

/** At least one path, each a top-level store path. */
export function checkStorePaths(paths: readonly string[]): void {
  if (paths.length === 0) throw new DeployError('NIX_INPUT', 'expected at least one store path, found none');
  for (const path of paths) {
    if (!isStorePath(path)) {
      throw new DeployError(
        'NIX_INPUT',
        `expected a top-level store path /nix/store/<hash>-<name>, found ${JSON.stringify(path)}`,
      );
    }
  }
}

/** An absolute path of plain segments: no `..`, no spaces, cannot start with `-`. */
export function checkAbsolutePath(path: string, what: string): void {
  if (!ABSOLUTE_PATH_RE.test(path)) {
    throw new DeployError(
      'NIX_INPUT',
      `${what}: expected an absolute path of plain segments (letters, digits, ".", "_", "+", "-") without "..", found ${JSON.stringify(path)}`,
    );
  }
}

/** Substituter URLs Nix can pull from; anything else (a flag, a newline, an unknown scheme) is refused. */
const SUBSTITUTER_RE = /^(?:s3|https?|file):\/\/[\x21-\x7e]+$/;

/** A substituter URL of a scheme Nix pulls from, in one printable word. */
export function checkSubstituter(url: string): void {
  if (!SUBSTITUTER_RE.test(url)) {
    throw new DeployError(
      'NIX_INPUT',
      `substituter: expected an s3://, http(s):// or file:// URL without spaces, found ${JSON.stringify(url)}`,
    );
  }
}

/** At least one public key, each `name:base64`: a copy with nothing to check signatures against is refused. */
export function checkTrustedKeys(keys: readonly string[]): void {
  if (keys.length === 0) {
    throw new DeployError(
      'NIX_INPUT',
      'trustedPublicKeys: expected at least one public key (name:base64); refusing to copy without signature checks',
    );
  }
  for (const key of keys) parsePublicKey(key);
}

/** A signing key's name: it is written before the `:` of every signature. */
export function checkKeyName(name: string): void {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(name)) {
    throw new DeployError(
      'NIX_INPUT',
      `key name: expected letters, digits, ".", "_", "-", found ${JSON.stringify(name)}`,
    );
  }
}

/** A profile generation number (Nix counts from 1). */
export function checkGeneration(generation: number): void {
  if (!Number.isInteger(generation) || generation < 1) {
    throw new DeployError(
      'NIX_INPUT',
      `generation: expected a positive integer, found ${String(generation)}`,
    );
  }
}
