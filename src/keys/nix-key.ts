/**
 * Nix signing keys (`name:base64`, as `nix-store --generate-binary-cache-key` writes them) and their ed25519
 * key objects: shared by the Nix module (narinfo signatures) and the manifest module (signed manifests).
 */
import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { DeployError } from '../errors.js';

/** A Nix signing key's public half: `name:base64(32-byte ed25519 key)`. */
export interface PublicKey {
  name: string;
  /** The raw 32-byte ed25519 public key. */
  key: Uint8Array;
}

/** A Nix signing key's name: what precedes the `:` in keys and signatures. */
export const KEY_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

const KEY_RE = new RegExp(`^(${KEY_NAME_RE.source.slice(1, -1)}):([A-Za-z0-9+/]+={0,2})$`);

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
  const secret = parseSecretKey(secretKeyText);
  return `${secret.name}:${Buffer.from(secret.publicKey).toString('base64')}`;
}

/** A Nix secret key file's contents, split: the key name, the 32-byte ed25519 seed and the public half. */
export interface SecretKey {
  name: string;
  seed: Uint8Array;
  publicKey: Uint8Array;
}

/**
 * Parses a Nix secret key file's contents (`name:base64(seed ‖ public key)`, as `nix-store
 * --generate-binary-cache-key` writes it). Throws `NIX_KEY` without echoing the input: it is (or resembles) a
 * secret.
 */
export function parseSecretKey(secretKeyText: string): SecretKey {
  const match = KEY_RE.exec(secretKeyText.trim());
  const key = match ? Buffer.from(match[2] as string, 'base64') : undefined;
  if (!match || key?.length !== 64) {
    throw new DeployError('NIX_KEY', 'secret key: expected name:base64 of a 64-byte ed25519 secret key');
  }
  return { name: match[1] as string, seed: key.subarray(0, 32), publicKey: key.subarray(32) };
}

// DER prefixes of ed25519 SubjectPublicKeyInfo and PKCS#8 keys: what node:crypto needs around raw 32-byte keys.
const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
const ED25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

/** A node:crypto key object for a raw 32-byte ed25519 public key. */
export function ed25519PublicKey(raw: Uint8Array): KeyObject {
  return createPublicKey({ key: Buffer.concat([ED25519_SPKI_PREFIX, raw]), format: 'der', type: 'spki' });
}

/** A node:crypto key object for a raw 32-byte ed25519 seed (the first half of a Nix secret key). */
export function ed25519PrivateKey(seed: Uint8Array): KeyObject {
  return createPrivateKey({ key: Buffer.concat([ED25519_PKCS8_PREFIX, seed]), format: 'der', type: 'pkcs8' });
}
