import { createPublicKey, verify } from 'node:crypto';
import { DeployError } from '../errors.js';

/** A Nix signing key's public half: `name:base64(32-byte ed25519 key)`. */
export interface PublicKey {
  name: string;
  /** The raw 32-byte ed25519 public key. */
  key: Uint8Array;
}

const KEY_RE = /^([A-Za-z0-9][A-Za-z0-9._-]{0,63}):([A-Za-z0-9+/]+={0,2})$/;

/**
 * Parses a Nix public key (`name:base64`, as in `trusted-public-keys`). Throws `NIX_INPUT` for anything else,
 * including a secret key pasted by mistake (64 bytes): that one must never travel further.
 */
export function parsePublicKey(text: string): PublicKey {
  const match = KEY_RE.exec(text.trim());
  const key = match ? Buffer.from(match[2] as string, 'base64') : undefined;
  if (!match || key?.length !== 32) {
    const hint = key?.length === 64 ? ' (this looks like a SECRET key: use the public one)' : '';
    throw new DeployError(
      'NIX_INPUT',
      `public key: expected name:base64 of a 32-byte ed25519 key${hint}, found ${match ? `${key?.length ?? 0} bytes` : 'another format'}`,
    );
  }
  return { name: match[1] as string, key };
}

/**
 * The public key of a Nix secret key file's contents (`name:base64(64 bytes)`): an ed25519 secret key carries
 * its public half in its last 32 bytes, so `push` can check signatures with only the key file it signs with.
 */
export function publicKeyFromSecretKey(secretKeyText: string): string {
  const match = KEY_RE.exec(secretKeyText.trim());
  const key = match ? Buffer.from(match[2] as string, 'base64') : undefined;
  if (!match || key?.length !== 64) {
    // Never echo the input: it is (or resembles) a secret.
    throw new DeployError('NIX_KEY', 'secret key: expected name:base64 of a 64-byte ed25519 secret key');
  }
  return `${match[1]}:${key.subarray(32).toString('base64')}`;
}

/** What a Nix signature covers: `1;<path>;<narHash as sha256:base32>;<narSize>;<references, comma-separated>`. */
export function signatureFingerprint(info: {
  storePath: string;
  narHash: string;
  narSize: number;
  references: readonly string[];
}): string {
  const refs = info.references.map((ref) => (ref.startsWith('/') ? ref : `/nix/store/${ref}`)).sort();
  return `1;${info.storePath};${info.narHash};${info.narSize};${refs.join(',')}`;
}

// DER prefix of an ed25519 SubjectPublicKeyInfo: what node:crypto needs around a raw 32-byte key.
const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

/**
 * The names of the keys among `trusted` whose valid signature is in `signatures` (each `name:base64`) for
 * `fingerprint`. Empty means: not signed by any trusted key.
 */
export function verifySignatures(
  fingerprint: string,
  signatures: readonly string[],
  trusted: readonly PublicKey[],
): string[] {
  const valid: string[] = [];
  for (const key of trusted) {
    const publicKey = createPublicKey({
      key: Buffer.concat([ED25519_SPKI_PREFIX, key.key]),
      format: 'der',
      type: 'spki',
    });
    for (const signature of signatures) {
      const colon = signature.indexOf(':');
      if (signature.slice(0, colon) !== key.name) continue;
      const bytes = Buffer.from(signature.slice(colon + 1), 'base64');
      if (bytes.length === 64 && verify(null, Buffer.from(fingerprint), publicKey, bytes)) {
        valid.push(key.name);
        break;
      }
    }
  }
  return valid;
}
