/**
 * Manifests as push writes and reads them: every write signed with the key that signs the closures, and every
 * manifest push builds on (the current one, an archive to restore) verified first, so that whoever can write
 * the bucket cannot get their manifest signed by the next push.
 */
import { DeployError } from '../errors.js';
import { publicKeyFromSecretKey } from '../keys/nix-key.js';
import { readSignedManifest } from '../manifest/envelope.js';
import { openManifest } from '../manifest/signature.js';

/** Which signatures push accepts on a manifest it builds on. */
export interface ManifestTrust {
  /**
   * Public keys (`name:base64`) accepted besides the signing key's own public half: the old key during a key
   * rotation, so the manifest in the bucket and the archives it may restore still verify.
   */
  trustedPublicKeys: readonly string[];
  /** Build on a manifest that carries no signature (migration from unsigned manifests only). */
  allowUnsigned: boolean;
  /** The Nix secret key (`name:base64`): its public half is trusted. Required to write (see {@link ManifestSigning}). */
  secretKey?: string;
}

/** What every manifest write needs: the key it is signed with, and the trust for what it builds on. */
export interface ManifestSigning extends ManifestTrust {
  /** The Nix secret key (`name:base64`, the `--key-file` contents) closures and manifests are signed with. */
  secretKey: string;
}

/** The public keys a {@link ManifestTrust} accepts: its own key's public half first, then the others. */
export function trustedKeysOf(trust: ManifestTrust): string[] {
  const own = trust.secretKey === undefined ? [] : [publicKeyFromSecretKey(trust.secretKey)];
  return [...new Set([...own, ...trust.trustedPublicKeys])];
}

/**
 * The manifest text inside `text` once its signature verifies with `trust` (or, with `allowUnsigned`, an
 * unsigned text as it is), ready for `parseManifest`. `'unverified'` only unwraps the envelope: for what is
 * shown or kept, never for what is built on. Throws a `DeployError` with the signature's code
 * (`MANIFEST_UNSIGNED`, `MANIFEST_UNTRUSTED_KEY`, `MANIFEST_BAD_SIGNATURE`, `MANIFEST_ENVELOPE_INVALID`) whose
 * message names `what` and says that nothing was written.
 */
export function openPushedManifest(
  text: string,
  what: string,
  trust: ManifestTrust | 'unverified',
): { payload: string; keyName: string | undefined } {
  if (trust === 'unverified') {
    const read = readSignedManifest(text);
    return read.kind === 'signed'
      ? { payload: read.envelope.payload, keyName: read.envelope.signature.keyName }
      : { payload: text, keyName: undefined };
  }
  const opened = openManifest(text, {
    trustedPublicKeys: trustedKeysOf(trust),
    allowUnsigned: trust.allowUnsigned,
  });
  if (opened.ok) return { payload: opened.payload, keyName: opened.keyName };
  const hint =
    opened.code === 'MANIFEST_UNSIGNED'
      ? 'while migrating from unsigned manifests, pass --insecure-allow-unsigned-manifest once'
      : opened.code === 'MANIFEST_UNTRUSTED_KEY'
        ? 'during a key rotation, pass the old public key with --trusted-public-key'
        : 'someone changed it after it was signed: push rollback to a signed archive (push history lists them)';
  throw new DeployError(
    opened.code,
    `${what} does not verify, so push does not build on it; nothing was written: ${opened.message} (${hint})`,
  );
}
