import { verify } from 'node:crypto';
import { ed25519PublicKey, type PublicKey } from '../keys/nix-key.js';

export {
  ed25519PrivateKey,
  ed25519PublicKey,
  KEY_NAME_RE,
  type PublicKey,
  parsePublicKey,
  parseSecretKey,
  publicKeyFromSecretKey,
  type SecretKey,
} from '../keys/nix-key.js';

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
    const publicKey = ed25519PublicKey(key.key);
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
