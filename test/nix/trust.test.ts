import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isDeployError } from '../../src/errors.js';
import {
  createNix,
  narHashForFingerprint,
  type PathInfo,
  parsePublicKey,
  signatureFingerprint,
  trustedSigners,
  untrustedError,
  untrustedPaths,
} from '../../src/nix/index.js';
import { storePath } from '../builders.js';
import { makeKeyPair } from '../support/local-cache.js';
import { buildClosures, NIX_ENV, requireNix } from '../support/real-nix.js';

// One NAR hash in the three spellings Nix uses (seen from nix 2.8: path-info --json, and the narinfo it wrote).
const SRI = 'sha256-4BluU0391eafxOYdnrrMlgZNye36AHGuehWOpWXth5M=';
const BASE32 = 'sha256:14w7xmjsb3hmgap7207sxp4ls1lnrjx9w7g6qjgydmgx9m9nw6g0';
const HEX = `sha256:${Buffer.from(SRI.slice('sha256-'.length), 'base64').toString('hex')}`;

describe('narHashForFingerprint', () => {
  it.each([
    ['SRI (nix path-info --json)', SRI],
    ['base32 (narinfo)', BASE32],
    ['hex', HEX],
  ])('writes %s as sha256:<base32>', (_label, hash) => {
    expect(narHashForFingerprint(hash)).toBe(BASE32);
  });

  it.each([['md5-AAAA'], ['sha256-short='], ['sha256:xyz'], ['']])('refuses %j', (hash) => {
    expect(() => narHashForFingerprint(hash)).toThrow(/narHash: expected sha256/);
  });
});

describe('untrustedPaths', () => {
  const trusted = makeKeyPair('deploy-1');
  const foreign = makeKeyPair('attacker-1');
  const impostor = makeKeyPair('deploy-1'); // the trusted key's name, another key
  const keys = [parsePublicKey(trusted.publicKey)];
  const local = (name: string, signatures: string[] = [], narHash = SRI): PathInfo => ({
    path: storePath(name),
    narHash,
    narSize: 512,
    references: [storePath('dep')],
    signatures,
  });
  const sign = (signer: ReturnType<typeof makeKeyPair>, info: PathInfo, narHash = info.narHash) =>
    signer.sign(
      signatureFingerprint({
        storePath: info.path,
        narHash: narHashForFingerprint(narHash),
        narSize: info.narSize,
        references: info.references,
      }),
    );

  it.each([
    [
      'a local signature by the trusted key',
      (i: PathInfo) => ({ local: [sign(trusted, i)], cached: [] }),
      true,
    ],
    [
      'a cached signature by the trusted key of the same content',
      (i: PathInfo) => ({ local: [], cached: [sign(trusted, i)] }),
      true,
    ],
    ['no signature anywhere', () => ({ local: [], cached: [] }), false],
    [
      'a foreign key, locally and in the cache',
      (i: PathInfo) => ({ local: [sign(foreign, i)], cached: [sign(foreign, i)] }),
      false,
    ],
    [
      'another key carrying the trusted name',
      (i: PathInfo) => ({ local: [sign(impostor, i)], cached: [] }),
      false,
    ],
    [
      'a trusted signature of another build of the same path (other NAR hash)',
      (i: PathInfo) => ({ local: [], cached: [sign(trusted, i, BASE32.replace(/.$/, '1'))] }),
      false,
    ],
  ])('%s → trusted: %s', (_label, make, ok) => {
    const base = local('app');
    const { local: sigs, cached } = make(base);
    const info = { ...base, signatures: sigs };
    expect(untrustedPaths([info], new Map([[info.path, cached]]), keys)).toEqual(ok ? [] : [info.path]);
    expect(trustedSigners(info, [...sigs, ...cached], keys).length > 0).toBe(ok);
  });

  it('names the paths and the trusted keys in its refusal', () => {
    const error = untrustedError([storePath('bash')], keys, 'file:///cache');
    expect(isDeployError(error, 'NIX_SIGNATURE')).toBe(true);
    expect(error.message).toBe(
      `signature check failed: ${storePath('bash')} has no valid signature by a trusted key (deploy-1), neither in this store nor in file:///cache`,
    );
  });
});

describe('closure trust with the real Nix: the cache narinfo of a present path', () => {
  it('counts only a trusted signature over the NAR hash this store has', async () => {
    requireNix();
    const dir = mkdtempSync(join(tmpdir(), 'omni-nix-trust-'));
    try {
      const [path] = buildClosures('nixs3-trust', ['1']) as [string];
      const svcOnly = execFileSync('nix-store', ['-qR', path], { encoding: 'utf8' }).trim().split('\n');
      execFileSync(
        'nix',
        [
          '--extra-experimental-features',
          'nix-command',
          'copy',
          '--no-check-sigs',
          '--to',
          `${dir}/store`,
          ...svcOnly,
        ],
        { env: { ...process.env, ...NIX_ENV }, stdio: 'pipe' },
      );
      const nix = createNix({ env: NIX_ENV, store: `${dir}/store` });
      const closure = await nix.pathInfo([path], { closure: true });
      const info = closure.find((i) => i.path === path) as PathInfo;
      expect(info.signatures).toEqual([]);
      const key = makeKeyPair('deploy-1');
      /** A binary cache whose narinfos are signed by `key` over the given NAR hash of `path`. */
      const forge = (name: string, narHash: string) => {
        const cache = `${dir}/${name}`;
        mkdirSync(`${cache}/nar`, { recursive: true });
        writeFileSync(`${cache}/nix-cache-info`, 'StoreDir: /nix/store\n');
        for (const entry of closure) {
          const hash = entry.path === path ? narHash : narHashForFingerprint(entry.narHash);
          const fingerprint = signatureFingerprint({
            storePath: entry.path,
            narHash: hash,
            narSize: entry.narSize,
            references: entry.references,
          });
          writeFileSync(
            `${cache}/${entry.path.slice('/nix/store/'.length, '/nix/store/'.length + 32)}.narinfo`,
            [
              `StorePath: ${entry.path}`,
              `URL: nar/${'0'.repeat(52)}.nar`,
              'Compression: none',
              `NarHash: ${hash}`,
              `NarSize: ${entry.narSize}`,
              `References: ${entry.references.map((r) => r.slice('/nix/store/'.length)).join(' ')}`,
              `Sig: ${key.sign(fingerprint)}`,
              '',
            ].join('\n'),
          );
        }
        return `file://${cache}`;
      };
      const ours = narHashForFingerprint(info.narHash);
      const other = ours.slice(0, -1) + (ours.endsWith('0') ? '1' : '0');
      const error = await nix
        .copyFrom(forge('other-build', other), [path], { trustedPublicKeys: [key.publicKey] })
        .catch((e: unknown) => e);
      expect(isDeployError(error, 'NIX_SIGNATURE'), String(error)).toBe(true);
      expect((error as Error).message).toContain(path);
      await nix.copyFrom(forge('same-build', ours), [path], { trustedPublicKeys: [key.publicKey] });
    } finally {
      execFileSync('chmod', ['-R', 'u+w', dir]);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
