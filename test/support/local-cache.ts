import { createHash, generateKeyPairSync, sign } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { NIX_BASE32_CHARS } from '../../src/nix/index.js';
import { signatureFingerprint } from '../../src/nix/signing.js';
import { storePath } from '../builders.js';

/** A Nix-format signing key pair made with node:crypto (secret = seed ‖ public, as Nix stores it). */
export function makeKeyPair(name: string) {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const raw = publicKey.export({ format: 'der', type: 'spki' }).subarray(-32);
  const seed = privateKey.export({ format: 'der', type: 'pkcs8' }).subarray(-32);
  return {
    name,
    publicKey: `${name}:${raw.toString('base64')}`,
    secretKey: `${name}:${Buffer.concat([seed, raw]).toString('base64')}`,
    sign: (fingerprint: string) =>
      `${name}:${sign(null, Buffer.from(fingerprint), privateKey).toString('base64')}`,
  };
}

/** One path of a synthetic binary cache. */
export interface CachePathSpec {
  name: string;
  /** Names of the other specs it refers to. */
  refs?: string[];
  /** Bytes of its NAR file. Default 1000. */
  bytes?: number;
}

function base32(data: string, length: number): string {
  const digest = createHash('sha256').update(data).digest();
  return Array.from({ length }, (_, i) => NIX_BASE32_CHARS[(digest[i % 32] as number) % 32]).join('');
}

/**
 * Writes a binary cache as `nix copy --to file://` lays it out (`nix-cache-info`, `<hash>.narinfo`, `nar/`), with
 * the given signers' signatures (none: unsigned). Returns the store path of each spec by name. The NARs are
 * filler, not real NARs: this is for testing the upload, which never looks inside them.
 */
export function writeLocalCache(
  dir: string,
  specs: CachePathSpec[],
  signers: ReturnType<typeof makeKeyPair>[] = [],
): Record<string, string> {
  mkdirSync(`${dir}/nar`, { recursive: true });
  writeFileSync(`${dir}/nix-cache-info`, 'StoreDir: /nix/store\n');
  const paths = Object.fromEntries(specs.map((s) => [s.name, storePath(s.name)]));
  for (const spec of specs) {
    const path = paths[spec.name] as string;
    const fileHash = base32(`file ${spec.name}`, 52);
    const bytes = spec.bytes ?? 1000;
    writeFileSync(`${dir}/nar/${fileHash}.nar`, Buffer.alloc(bytes, spec.name));
    const references = (spec.refs ?? []).map((ref) => paths[ref] as string);
    const narHash = `sha256:${base32(`nar ${spec.name}`, 52)}`;
    const fingerprint = signatureFingerprint({ storePath: path, narHash, narSize: bytes, references });
    const lines = [
      `StorePath: ${path}`,
      `URL: nar/${fileHash}.nar`,
      'Compression: none',
      `FileHash: sha256:${fileHash}`,
      `FileSize: ${bytes}`,
      `NarHash: ${narHash}`,
      `NarSize: ${bytes}`,
      `References: ${references.map((r) => r.slice('/nix/store/'.length)).join(' ')}`,
      ...signers.map((signer) => `Sig: ${signer.sign(fingerprint)}`),
    ];
    writeFileSync(
      `${dir}/${path.slice('/nix/store/'.length, '/nix/store/'.length + 32)}.narinfo`,
      `${lines.join('\n')}\n`,
    );
  }
  return paths;
}
