/**
 * Signing and verifying manifests with the Nix ed25519 key that signs the closures. Pure: text and keys in,
 * text or a verdict out (node:crypto only).
 */
import { createPublicKey, sign, verify } from 'node:crypto';
import { DeployError } from '../errors.js';
import {
  ed25519PrivateKey,
  ed25519PublicKey,
  type PublicKey,
  parsePublicKey,
  parseSecretKey,
} from '../keys/nix-key.js';
import { describeValue } from './describe.js';
import {
  MAX_SIGNED_MANIFEST_BYTES,
  readSignedManifest,
  renderSignedManifest,
  SIGNED_MANIFEST_FORMAT,
  SIGNED_MANIFEST_FORMAT_VERSION,
} from './envelope.js';
import { manifestDigest } from './replay.js';

/**
 * What precedes the payload's bytes in the signed message. Nix signs narinfo fingerprints (`1;/nix/store/...`)
 * with the same key; a message that starts otherwise can never be one of those, so neither kind of signature
 * is ever accepted as the other.
 */
export const MANIFEST_SIGNATURE_DOMAIN = 'omni-deploy signed manifest v1\n';

/** Why a manifest was refused: a stable code for callers to switch on. */
export type ManifestSignatureCode =
  | 'MANIFEST_UNSIGNED'
  | 'MANIFEST_UNTRUSTED_KEY'
  | 'MANIFEST_BAD_SIGNATURE'
  | 'MANIFEST_ENVELOPE_INVALID';

/** A refusal: its code and a one-line message naming the signature's key (never key material). */
export interface ManifestSignatureFailure {
  ok: false;
  code: ManifestSignatureCode;
  message: string;
}

/** The outcome of {@link verifyManifest}: the payload exactly as signed and the key that signed it, or why not. */
export type ManifestVerification = { ok: true; payload: string; keyName: string } | ManifestSignatureFailure;

/** The outcome of {@link openManifest}: the manifest text to parse, or why it may not be. */
export type ManifestOpening =
  | {
      ok: true;
      /** The manifest's JSON text: the verified payload, or the whole text of an allowed unsigned manifest. */
      payload: string;
      /** `sha256:<hex>` of the payload's UTF-8 bytes: what replay protection compares. */
      digest: string;
      /** The trusted key that signed it; `undefined` for an unsigned manifest let through by `allowUnsigned`. */
      keyName: string | undefined;
    }
  | ManifestSignatureFailure;

/** Options of {@link openManifest}. */
export interface OpenManifestOptions {
  /** Public keys (`name:base64`, as Nix writes them) whose signatures are accepted; several during rotation. */
  trustedPublicKeys: readonly string[];
  /**
   * Accept a manifest that carries no signature at all (migration only). A signed manifest is still verified:
   * a bad or untrusted signature is refused even then.
   */
  allowUnsigned?: boolean;
}

/** The bytes a manifest signature covers: the domain, then the payload's UTF-8 bytes. */
function signedMessage(payload: string): Buffer {
  return Buffer.concat([Buffer.from(MANIFEST_SIGNATURE_DOMAIN, 'utf8'), Buffer.from(payload, 'utf8')]);
}

/**
 * Signs a manifest's exact JSON text with a Nix secret key (`name:base64`, the `--key-file` contents) and
 * returns the signed manifest's text to store. The payload is carried byte for byte; nothing is re-serialised.
 * Throws `NIX_KEY` for a malformed or damaged key (never echoing it) and `MANIFEST_SIGN` for a payload that
 * cannot be signed (empty, already signed, too large, not well-formed Unicode).
 */
export function signManifest(payloadText: string, secretKeyText: string): string {
  const secret = parseSecretKey(secretKeyText);
  const privateKey = ed25519PrivateKey(secret.seed);
  const derived = createPublicKey(privateKey).export({ format: 'der', type: 'spki' }).subarray(-32);
  if (!derived.equals(secret.publicKey)) {
    throw new DeployError(
      'NIX_KEY',
      `secret key ${describeValue(secret.name)}: its public half does not match its secret half (a damaged key file?)`,
    );
  }
  const refuse = (found: string) =>
    new DeployError('MANIFEST_SIGN', `cannot sign the manifest: expected its JSON text, found ${found}`);
  const limit = `at most ${MAX_SIGNED_MANIFEST_BYTES} are read by deployers`;
  const bytes = Buffer.byteLength(payloadText);
  if (payloadText.length === 0) throw refuse('an empty text');
  if (bytes > MAX_SIGNED_MANIFEST_BYTES) throw refuse(`${bytes} bytes (${limit})`);
  if (Buffer.from(payloadText, 'utf8').toString('utf8') !== payloadText) throw refuse('a lone surrogate');
  const read = readSignedManifest(payloadText);
  if (read.kind === 'signed') throw refuse('an already signed manifest');
  if (read.kind === 'invalid')
    throw refuse('an object with signed manifest keys (format, payload, signature)');
  const text = renderSignedManifest({
    format: SIGNED_MANIFEST_FORMAT,
    formatVersion: SIGNED_MANIFEST_FORMAT_VERSION,
    payload: payloadText,
    signature: {
      keyName: secret.name,
      sig: sign(null, signedMessage(payloadText), privateKey).toString('base64'),
    },
  });
  const size = Buffer.byteLength(text);
  if (size > MAX_SIGNED_MANIFEST_BYTES) {
    throw refuse(`${bytes} bytes, ${size} once signed (${limit})`);
  }
  return text;
}

/**
 * Verifies a signed manifest against the trusted public keys (`name:base64`; several at once during key
 * rotation) and returns the payload exactly as signed. Refuses, before anything else is looked at: text that is
 * not a signed manifest (`MANIFEST_UNSIGNED`), a malformed envelope (`MANIFEST_ENVELOPE_INVALID`), a signature by
 * a key name that is not trusted (`MANIFEST_UNTRUSTED_KEY`) and one that does not verify with any trusted key of
 * that name (`MANIFEST_BAD_SIGNATURE`). Throws `NIX_INPUT` for a malformed trusted key: that is configuration.
 */
export function verifyManifest(text: string, trustedPublicKeys: readonly string[]): ManifestVerification {
  const trusted = trustedPublicKeys.map(parsePublicKey);
  const read = readSignedManifest(text);
  if (read.kind === 'unsigned') {
    const message = `manifest is not signed: expected a signed manifest ({"format":"${SIGNED_MANIFEST_FORMAT}", ..., "signature": {...}}), found ${read.found}`;
    return { ok: false, code: 'MANIFEST_UNSIGNED', message };
  }
  if (read.kind === 'invalid') {
    return {
      ok: false,
      code: 'MANIFEST_ENVELOPE_INVALID',
      message: `malformed signed manifest: ${read.message}`,
    };
  }
  const { payload, signature } = read.envelope;
  const keyName = signature.keyName;
  const candidates = trusted.filter((key) => key.name === keyName);
  if (candidates.length === 0) {
    return {
      ok: false,
      code: 'MANIFEST_UNTRUSTED_KEY',
      message: `manifest signature by key "${keyName}" is not trusted here (${describeTrusted(trusted)})`,
    };
  }
  const message = signedMessage(payload);
  const sig = Buffer.from(signature.sig, 'base64');
  if (candidates.some((key) => verify(null, message, ed25519PublicKey(key.key), sig))) {
    return { ok: true, payload, keyName };
  }
  return {
    ok: false,
    code: 'MANIFEST_BAD_SIGNATURE',
    message: `manifest signature by key "${keyName}" does not verify: the manifest was changed after it was signed, or another key named "${keyName}" signed it`,
  };
}

/**
 * The manifest text a deployer may parse: the verified payload of a signed manifest or, with `allowUnsigned`,
 * an unsigned text as it is (its JSON and structure are `parseManifest`'s to judge). A malformed, untrusted or
 * tampered signed manifest is refused even with `allowUnsigned`.
 */
export function openManifest(text: string, options: OpenManifestOptions): ManifestOpening {
  const verified = verifyManifest(text, options.trustedPublicKeys);
  if (verified.ok) {
    return {
      ok: true,
      payload: verified.payload,
      digest: manifestDigest(verified.payload),
      keyName: verified.keyName,
    };
  }
  if (verified.code === 'MANIFEST_UNSIGNED' && options.allowUnsigned) {
    return { ok: true, payload: text, digest: manifestDigest(text), keyName: undefined };
  }
  return verified;
}

function describeTrusted(trusted: readonly PublicKey[]): string {
  if (trusted.length === 0) return 'no trusted public keys are configured';
  const names = [...new Set(trusted.map((key) => `"${key.name}"`))];
  return `trusted: ${names.join(', ')}`;
}
