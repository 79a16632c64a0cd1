import { generateKeyPairSync, sign } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  parsePublicKey,
  publicKeyFromSecretKey,
  signatureFingerprint,
  verifySignatures,
} from '../../src/nix/index.js';
import { storePath } from '../builders.js';

/** A Nix-format key pair made with node:crypto: secret = seed ‖ public, as Nix stores it. */
function keyPair(name: string) {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const raw = publicKey.export({ format: 'der', type: 'spki' }).subarray(-32);
  const seed = privateKey.export({ format: 'der', type: 'pkcs8' }).subarray(-32);
  return {
    publicText: `${name}:${raw.toString('base64')}`,
    secretText: `${name}:${Buffer.concat([seed, raw]).toString('base64')}`,
    sign: (fingerprint: string) =>
      `${name}:${sign(null, Buffer.from(fingerprint), privateKey).toString('base64')}`,
  };
}

const info = {
  storePath: storePath('app-1.0'),
  narHash: 'sha256:1zwsi29ympbp0v5d68w9mnq3c5nhm61lpj8zcsn5vlslj5hfz1fq',
  narSize: 568,
  references: [storePath('lib-2.0').slice('/nix/store/'.length), storePath('app-1.0')],
};

describe('signing', () => {
  it('builds the fingerprint Nix signs: full, sorted reference paths', () => {
    const refs = [storePath('app-1.0'), storePath('lib-2.0')].sort().join(',');
    expect(signatureFingerprint(info)).toBe(`1;${info.storePath};${info.narHash};568;${refs}`);
  });

  it('accepts a signature by a trusted key and nothing else', () => {
    const good = keyPair('cache-1');
    const other = keyPair('cache-1'); // same name, another key
    const fingerprint = signatureFingerprint(info);
    const trusted = [parsePublicKey(good.publicText)];
    expect(verifySignatures(fingerprint, [good.sign(fingerprint)], trusted)).toEqual(['cache-1']);
    expect(verifySignatures(fingerprint, [other.sign(fingerprint)], trusted)).toEqual([]);
    expect(verifySignatures(`${fingerprint}x`, [good.sign(fingerprint)], trusted)).toEqual([]);
    expect(verifySignatures(fingerprint, [], trusted)).toEqual([]);
    expect(verifySignatures(fingerprint, ['cache-1:garbage'], trusted)).toEqual([]);
  });

  it('derives the public key from a secret key and never echoes a bad one', () => {
    const pair = keyPair('cache-1');
    expect(publicKeyFromSecretKey(`${pair.secretText}\n`)).toBe(pair.publicText);
    expect(() => publicKeyFromSecretKey('cache-1:c2VjcmV0')).toThrow(/^secret key: expected/);
    try {
      publicKeyFromSecretKey('cache-1:c2VjcmV0');
    } catch (error) {
      expect((error as Error).message).not.toContain('c2VjcmV0');
    }
  });

  it.each([
    ['empty', ''],
    ['no name', 'AAAA'],
    ['a short key', 'k:AAAA'],
    ['a space inside', `k:${'A'.repeat(43)}= x`],
    ['an option', '--help'],
  ])('refuses a public key that is %s', (_label, text) => {
    expect(() => parsePublicKey(text)).toThrow(/public key/);
  });

  it('recognises a secret key passed as a public key', () => {
    expect(() => parsePublicKey(keyPair('k').secretText)).toThrow(/SECRET/);
  });
});
