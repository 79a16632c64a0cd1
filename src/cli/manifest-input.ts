/**
 * A manifest file as `deployer validate` and `deployer plan` read it: a signed manifest is unwrapped, and its
 * signature checked as the deployer checks it when trusted keys are given; a plain manifest is read as it is.
 */
import { readSignedManifest } from '../manifest/envelope.js';
import { openManifest } from '../manifest/signature.js';
import { type ManifestResult, parseManifest } from '../manifest/validate.js';

/** Options of {@link parseManifestInput}. */
export interface ManifestInputOptions {
  secretsDir?: string | undefined;
  /** Keys whose signature is required (`name:base64`); none: the signature, if any, is not checked. */
  trustedPublicKeys: readonly string[];
  /** With keys: accept a manifest that carries no signature (the deployer's migration setting). */
  allowUnsigned: boolean;
}

/**
 * Parses a manifest text, signed or not. With trusted keys, a manifest that is not signed by one of them (or
 * was changed after signing) is invalid, with one issue at `signature` naming the key; without keys only the
 * envelope's structure is checked. `signature` says what was found, for people (`undefined`: a plain manifest).
 */
export function parseManifestInput(
  text: string,
  options: ManifestInputOptions,
): { result: ManifestResult; signature: string | undefined } {
  const parse = (payload: string) =>
    parseManifest(payload, options.secretsDir === undefined ? {} : { secretsDir: options.secretsDir });
  const refused = (message: string) => ({
    result: { ok: false as const, issues: [{ path: 'signature', message }], warnings: [] },
    signature: undefined,
  });
  if (options.trustedPublicKeys.length > 0) {
    const opened = openManifest(text, {
      trustedPublicKeys: options.trustedPublicKeys,
      allowUnsigned: options.allowUnsigned,
    });
    if (!opened.ok) return refused(opened.message);
    return {
      result: parse(opened.payload),
      signature:
        opened.keyName === undefined
          ? 'not signed (allowed by --insecure-allow-unsigned-manifest)'
          : `signed by ${opened.keyName}, verified`,
    };
  }
  const read = readSignedManifest(text);
  if (read.kind === 'invalid') return refused(`malformed signed manifest: ${read.message}`);
  if (read.kind === 'unsigned') return { result: parse(text), signature: undefined };
  return {
    result: parse(read.envelope.payload),
    signature: `signed by ${read.envelope.signature.keyName}, not verified (no trusted public key given)`,
  };
}
