import { DeployError } from '../errors.js';
import { NIX_BASE32_CHARS } from '../manifest/store-path.js';
import type { PathInfo } from './path-info.js';
import { type PublicKey, signatureFingerprint, verifySignatures } from './signing.js';

/**
 * Closure trust, the pure part. `nix copy --from` checks signatures only on the paths it fetches: a path already
 * valid in the local store (the host's bash, its python) is skipped, so an unsigned narinfo for it in the bucket
 * would be accepted as it is. Before anything runs a store path, the path itself must therefore carry a valid
 * signature by a trusted key whether it was fetched or not. Its dependencies need nothing more: each is either
 * fetched (and then checked by `nix copy`) or already valid locally, and only the top-level path is what the
 * manifest chose to run.
 */

/**
 * A NAR hash as it goes into a signature's fingerprint: `sha256:` + 52 characters of Nix base32. Accepts what
 * `nix path-info --json` prints (`sha256-<base64>` in Nix >= 2.4, `sha256:<base32>` before, `sha256:<hex>`
 * from some tools). Throws `NIX_OUTPUT` for anything else.
 */
export function narHashForFingerprint(narHash: string): string {
  let digest: Buffer | undefined;
  const sri = /^sha256-([A-Za-z0-9+/]{43}=)$/.exec(narHash);
  const b32 = new RegExp(`^sha256:([${NIX_BASE32_CHARS}]{52})$`).exec(narHash);
  const hex = /^sha256:([0-9a-f]{64})$/.exec(narHash);
  if (sri) digest = Buffer.from(sri[1] as string, 'base64');
  else if (b32) return narHash;
  else if (hex) digest = Buffer.from(hex[1] as string, 'hex');
  if (digest?.length !== 32) {
    throw new DeployError(
      'NIX_OUTPUT',
      `narHash: expected sha256-<base64>, sha256:<base32> or sha256:<hex>, found ${JSON.stringify(narHash.slice(0, 80))}`,
    );
  }
  return `sha256:${nixBase32(digest)}`;
}

/** Nix's base32 encoding: 5 bits at a time from the END of the bytes, as `printHash32` writes it. */
function nixBase32(bytes: Uint8Array): string {
  const length = Math.ceil((bytes.length * 8) / 5);
  let out = '';
  for (let n = length - 1; n >= 0; n--) {
    const bit = n * 5;
    const i = Math.floor(bit / 8);
    const j = bit % 8;
    const low = (bytes[i] as number) >> j;
    const high = i + 1 < bytes.length ? (bytes[i + 1] as number) << (8 - j) : 0;
    out += NIX_BASE32_CHARS[(low | high) & 0x1f];
  }
  return out;
}

/**
 * The names of the `trusted` keys with a valid signature among `signatures` for the store path `info`
 * describes. `info` must be what THIS store knows of the path (its NAR hash, size and references): a signature
 * taken from a binary cache counts only if it signs exactly that content.
 */
export function trustedSigners(
  info: PathInfo,
  signatures: readonly string[],
  trusted: readonly PublicKey[],
): string[] {
  const fingerprint = signatureFingerprint({
    storePath: info.path,
    narHash: narHashForFingerprint(info.narHash),
    narSize: info.narSize,
    references: info.references,
  });
  return verifySignatures(fingerprint, signatures, trusted);
}

/**
 * The paths among `local` (this store's view of the top-level paths about to be used) that no trusted key
 * signed: neither by a signature this store holds nor by one the binary cache offers (`cached`, by store path;
 * consulted only for the paths the store alone cannot vouch for). Empty means every path may be used.
 */
export function untrustedPaths(
  local: readonly PathInfo[],
  cached: ReadonlyMap<string, readonly string[]>,
  trusted: readonly PublicKey[],
): string[] {
  return local
    .filter(
      (info) =>
        trustedSigners(info, info.signatures, trusted).length === 0 &&
        trustedSigners(info, cached.get(info.path) ?? [], trusted).length === 0,
    )
    .map((info) => info.path);
}

/** The `NIX_SIGNATURE` refusal of {@link untrustedPaths}' result: it names the paths and the trusted keys. */
export function untrustedError(
  paths: readonly string[],
  trusted: readonly PublicKey[],
  substituter: string,
  note?: string,
): DeployError {
  const names = trusted.map((key) => key.name).join(', ');
  const list = paths.join(', ');
  return new DeployError(
    'NIX_SIGNATURE',
    `signature check failed: ${list} ${paths.length === 1 ? 'has' : 'have'} no valid signature by a trusted key (${names}), neither in this store nor in ${substituter}${note ? ` (${note})` : ''}`,
    { details: { paths: [...paths], trustedKeys: trusted.map((key) => key.name), substituter } },
  );
}
