import { execFileSync } from 'node:child_process';
import { sign as cryptoSign, verify as cryptoVerify, generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isDeployError } from '../../src/errors.js';
import {
  MANIFEST_SIGNATURE_DOMAIN,
  MAX_SIGNED_MANIFEST_BYTES,
  manifestDigest,
  openManifest,
  parseManifest,
  readSignedManifest,
  renderSignedManifest,
  type SignedManifest,
  signManifest,
  verifyManifest,
} from '../../src/manifest/index.js';
import { parsePathInfoJson, signatureFingerprint, verifySignatures } from '../../src/nix/index.js';
import { ed25519PrivateKey, parseSecretKey } from '../../src/nix/signing.js';
import { makeManifest, makeService } from '../builders.js';
import { buildClosures, NIX_ENV, requireNix } from '../support/real-nix.js';

interface Key {
  name: string;
  secret: string;
  public: string;
}

let dir: string;
/** Keys made by Nix itself: `cache-1`, `cache-2`, and `cache-1` again (another key with the same name). */
let one: Key;
let two: Key;
let impostor: Key;

function nixKey(name: string, file: string): Key {
  const secretFile = join(dir, `${file}.sk`);
  const publicFile = join(dir, `${file}.pk`);
  execFileSync('nix-store', ['--generate-binary-cache-key', name, secretFile, publicFile], {
    env: { ...process.env, ...NIX_ENV },
    stdio: 'pipe',
  });
  return { name, secret: readFileSync(secretFile, 'utf8'), public: readFileSync(publicFile, 'utf8') };
}

beforeAll(() => {
  requireNix();
  dir = mkdtempSync(join(tmpdir(), 'omni-manifest-sig-'));
  one = nixKey('cache-1', 'one');
  two = nixKey('cache-2', 'two');
  impostor = nixKey('cache-1', 'impostor');
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** A realistic payload: pretty JSON with a final newline (as push writes it) and multi-byte characters. */
const payload = `${JSON.stringify(
  makeManifest([
    makeService({ name: 'web', env: { GREETING: 'café ☕ 🚀', EMPTY: '' } }),
    makeService({ name: 'worker', exec: { command: 'bin/w', args: ['--x', 'a "quoted" \\ arg'] } }),
  ]),
  null,
  2,
)}\n`;

/** Rebuilds an envelope with `change` applied, in the exact serialisation (so only the change is judged). */
function edit(text: string, change: (envelope: SignedManifest) => unknown): string {
  const envelope = JSON.parse(text) as SignedManifest;
  return `${JSON.stringify(change(envelope))}\n`;
}

/** Every base64 string in `keys`' texts: what no message may contain. */
function keyMaterial(...keys: Key[]): string[] {
  return keys.flatMap((k) => [k.secret, k.public].map((t) => t.trim().split(':')[1] as string));
}

describe('signManifest / verifyManifest with keys from nix-store --generate-binary-cache-key', () => {
  it('round-trips: the verified payload is byte-identical and names the key', () => {
    const text = signManifest(payload, one.secret);
    expect(text.startsWith('{"format":"omni-deploy-signed-manifest","formatVersion":1,"payload":"{')).toBe(
      true,
    );
    expect(text.endsWith('"}}\n')).toBe(true);
    expect(verifyManifest(text, [one.public])).toEqual({ ok: true, payload, keyName: 'cache-1' });
    expect(parseManifest(payload).ok).toBe(true);
  });

  it('signs the domain followed by the payload bytes, checkable with node:crypto and the Nix public key alone', () => {
    const text = signManifest(payload, one.secret);
    const envelope = JSON.parse(text) as SignedManifest;
    const raw = Buffer.from(one.public.trim().split(':')[1] as string, 'base64');
    const spki = Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), raw]);
    const message = Buffer.from(`omni-deploy signed manifest v1\n${payload}`, 'utf8');
    const sig = Buffer.from(envelope.signature.sig, 'base64');
    expect(cryptoVerify(null, message, { key: spki, format: 'der', type: 'spki' }, sig)).toBe(true);
    expect(MANIFEST_SIGNATURE_DOMAIN).toBe('omni-deploy signed manifest v1\n');
    // ed25519 is deterministic: the same key and payload always give the same text.
    expect(signManifest(payload, one.secret)).toBe(text);
  });

  it('accepts any of several trusted keys (rotation) and reports which one signed', () => {
    const byTwo = signManifest(payload, two.secret);
    expect(verifyManifest(byTwo, [one.public, two.public])).toMatchObject({ ok: true, keyName: 'cache-2' });
    expect(verifyManifest(byTwo, [two.public, one.public])).toMatchObject({ ok: true, keyName: 'cache-2' });
    // Two trusted keys with one name: either may have signed.
    const byImpostor = signManifest(payload, impostor.secret);
    expect(verifyManifest(byImpostor, [one.public, impostor.public])).toMatchObject({ ok: true });
  });

  it.each([
    ['signed by a key that is not trusted', () => signManifest(payload, two.secret), () => [one.public]],
    ['no trusted keys at all', () => signManifest(payload, one.secret), () => []],
  ])('refuses a manifest %s (MANIFEST_UNTRUSTED_KEY), naming the key', (_label, text, trusted) => {
    const result = verifyManifest(text(), trusted());
    expect(result).toMatchObject({ ok: false, code: 'MANIFEST_UNTRUSTED_KEY' });
    if (result.ok) return;
    expect(result.message).toMatch(/^manifest signature by key "cache-[12]" is not trusted here/);
  });

  it('lists the trusted key names (never the keys) when refusing an untrusted one', () => {
    const result = verifyManifest(signManifest(payload, two.secret), [one.public]);
    expect(result).toEqual({
      ok: false,
      code: 'MANIFEST_UNTRUSTED_KEY',
      message: 'manifest signature by key "cache-2" is not trusted here (trusted: "cache-1")',
    });
  });

  it('refuses a signature by another key that bears a trusted name (MANIFEST_BAD_SIGNATURE)', () => {
    const result = verifyManifest(signManifest(payload, impostor.secret), [one.public]);
    expect(result).toMatchObject({ ok: false, code: 'MANIFEST_BAD_SIGNATURE' });
    if (!result.ok) expect(result.message).toContain('signature by key "cache-1" does not verify');
  });

  it('refuses a signature whose key name was changed to another trusted key', () => {
    const renamed = edit(signManifest(payload, one.secret), (e) => ({
      ...e,
      signature: { keyName: 'cache-2', sig: e.signature.sig },
    }));
    expect(verifyManifest(renamed, [one.public, two.public])).toMatchObject({
      ok: false,
      code: 'MANIFEST_BAD_SIGNATURE',
    });
  });

  it('refuses a changed payload, even one that is still a valid manifest', () => {
    const text = signManifest(payload, one.secret);
    const downgraded = edit(text, (e) => ({ ...e, payload: e.payload.replace('web-1.0.0', 'web-0.9.0') }));
    expect(parseManifest(JSON.parse(downgraded).payload).ok).toBe(true);
    expect(verifyManifest(downgraded, [one.public])).toMatchObject({
      ok: false,
      code: 'MANIFEST_BAD_SIGNATURE',
    });
    // Another manifest's signature never fits: the signature travels with its own payload only.
    const other = signManifest(payload.replace('worker', 'worker2'), one.secret);
    const swapped = edit(text, (e) => ({ ...e, signature: (JSON.parse(other) as SignedManifest).signature }));
    expect(verifyManifest(swapped, [one.public])).toMatchObject({
      ok: false,
      code: 'MANIFEST_BAD_SIGNATURE',
    });
  });

  it('refuses an unsigned manifest (MANIFEST_UNSIGNED) unless allowUnsigned, and says what it found', () => {
    for (const [text, found] of [
      [payload, 'a plain manifest'],
      ['{"version": 1,', 'text that is not valid JSON'],
      ['[]', 'an array of 0'],
      ['', 'text that is not valid JSON'],
    ] as const) {
      const result = verifyManifest(text, [one.public]);
      expect(result).toMatchObject({ ok: false, code: 'MANIFEST_UNSIGNED' });
      if (!result.ok) expect(result.message).toContain(`found ${found}`);
    }
    expect(openManifest(payload, { trustedPublicKeys: [one.public], allowUnsigned: true })).toEqual({
      ok: true,
      payload,
      digest: manifestDigest(payload),
      keyName: undefined,
    });
    expect(openManifest(payload, { trustedPublicKeys: [one.public] })).toMatchObject({
      ok: false,
      code: 'MANIFEST_UNSIGNED',
    });
  });

  it('openManifest returns the verified payload and its digest; allowUnsigned never excuses a bad signature', () => {
    const text = signManifest(payload, one.secret);
    expect(openManifest(text, { trustedPublicKeys: [one.public] })).toEqual({
      ok: true,
      payload,
      digest: manifestDigest(payload),
      keyName: 'cache-1',
    });
    for (const allowUnsigned of [false, true]) {
      const options = { trustedPublicKeys: [one.public], allowUnsigned };
      expect(openManifest(signManifest(payload, two.secret), options)).toMatchObject({
        code: 'MANIFEST_UNTRUSTED_KEY',
      });
      expect(openManifest(signManifest(payload, impostor.secret), options)).toMatchObject({
        code: 'MANIFEST_BAD_SIGNATURE',
      });
      expect(openManifest(`${text} `, options)).toMatchObject({ code: 'MANIFEST_ENVELOPE_INVALID' });
    }
  });

  it('never puts key material into a message', () => {
    const texts = [
      signManifest(payload, two.secret),
      signManifest(payload, impostor.secret),
      payload,
      edit(signManifest(payload, one.secret), (e) => ({ ...e, extra: one.public })),
    ];
    for (const text of texts) {
      const result = verifyManifest(text, [one.public]);
      expect(result.ok).toBe(false);
      if (result.ok) continue;
      for (const material of keyMaterial(one, two, impostor)) expect(result.message).not.toContain(material);
    }
  });

  it('refuses a malformed trusted key as configuration (NIX_INPUT), a secret key included', () => {
    expect(() => verifyManifest(payload, ['cache-1:AAAA'])).toThrow(/public key: expected name:base64/);
    expect(() => verifyManifest(payload, [one.secret])).toThrow(/SECRET key/);
  });
});

describe('domain separation from Nix narinfo signatures made by the same key', () => {
  let fingerprint: string;
  let nixSignature: string;

  beforeAll(() => {
    const [path] = buildClosures('sign12-manifest', ['1']) as [string];
    const nix = (...args: string[]) =>
      execFileSync('nix', ['--extra-experimental-features', 'nix-command', ...args], {
        encoding: 'utf8',
        env: { ...process.env, ...NIX_ENV },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
    // A chroot store of its own: the system store keeps signatures from earlier runs (other keys, same name).
    const store = join(dir, 'store');
    nix('copy', '--no-check-sigs', '--to', store, path);
    const infoOf = () => {
      const [info] = parsePathInfoJson(nix('path-info', '--store', store, '--json', path));
      if (!info) throw new Error(`nix path-info printed nothing for ${path}`);
      return info;
    };
    // Signatures copied along (earlier runs' keys, also named cache-1) stay: ours is the one that is new.
    const before = infoOf().signatures;
    nix('store', 'sign', '--store', store, '--key-file', join(dir, 'one.sk'), path);
    const info = infoOf();
    const added = info.signatures.filter((s) => !before.includes(s));
    expect(added).toHaveLength(1);
    nixSignature = (added[0] as string).slice('cache-1:'.length);
    // path-info prints the hash in SRI form; signatures cover it as sha256:<nix base32>.
    const narHash = `sha256:${nix('hash', 'to-base32', info.narHash).trim()}`;
    fingerprint = signatureFingerprint({
      storePath: info.path,
      narHash,
      narSize: info.narSize,
      references: info.references,
    });
  });

  it('parses the Nix secret key exactly as Nix does: the same key signs a narinfo identically', () => {
    const seed = parseSecretKey(one.secret).seed;
    const ours = cryptoSign(null, Buffer.from(fingerprint), ed25519PrivateKey(seed)).toString('base64');
    expect(ours).toBe(nixSignature);
  });

  it('does not accept a narinfo signature as a manifest signature, even over the same text', () => {
    const forged = renderSignedManifest({
      format: 'omni-deploy-signed-manifest',
      formatVersion: 1,
      payload: fingerprint,
      signature: { keyName: 'cache-1', sig: nixSignature },
    });
    expect(readSignedManifest(forged).kind).toBe('signed');
    expect(verifyManifest(forged, [one.public])).toMatchObject({ ok: false, code: 'MANIFEST_BAD_SIGNATURE' });
  });

  it('does not accept a manifest signature as a narinfo signature', () => {
    const envelope = JSON.parse(signManifest(fingerprint, one.secret)) as SignedManifest;
    const trusted = [
      { name: 'cache-1', key: Buffer.from(one.public.trim().split(':')[1] as string, 'base64') },
    ];
    expect(verifySignatures(fingerprint, [`cache-1:${envelope.signature.sig}`], trusted)).toEqual([]);
    expect(verifySignatures(fingerprint, [`cache-1:${nixSignature}`], trusted)).toEqual(['cache-1']);
  });
});

describe('the envelope is strict: every byte matters', () => {
  const signed = () => signManifest(payload, one.secret);

  it.each<[string, (text: string) => string, RegExp]>([
    ['an unknown field', (t) => edit(t, (e) => ({ ...e, note: 'x' })), /unknown key "note"/],
    ['no signature', (t) => edit(t, ({ signature: _, ...e }) => e), /signature: required, but missing/],
    [
      'a list of signatures',
      (t) => edit(t, (e) => ({ ...e, signature: [e.signature] })),
      /signature: expected a signature object/,
    ],
    [
      'an unknown signature field',
      (t) => edit(t, (e) => ({ ...e, signature: { ...e.signature, alg: 'ed25519' } })),
      /unknown key "alg"/,
    ],
    [
      'another format',
      (t) => edit(t, (e) => ({ ...e, format: 'nix-signed' })),
      /format: expected "omni-deploy/,
    ],
    [
      'a future format version',
      (t) => edit(t, (e) => ({ ...e, formatVersion: 2 })),
      /unsupported signed manifest format version 2; this deployer reads 1/,
    ],
    [
      'an empty payload',
      (t) => edit(t, (e) => ({ ...e, payload: '' })),
      /payload: expected the manifest JSON/,
    ],
    [
      'a payload object',
      (t) => edit(t, (e) => ({ ...e, payload: {} })),
      /payload: expected the manifest JSON/,
    ],
    [
      'a 63-byte signature',
      (t) =>
        edit(t, (e) => ({
          ...e,
          signature: { ...e.signature, sig: Buffer.alloc(63, 7).toString('base64') },
        })),
      /signature\.sig: expected base64 of a 64-byte ed25519 signature/,
    ],
    [
      'a 65-byte signature',
      (t) =>
        edit(t, (e) => ({
          ...e,
          signature: { ...e.signature, sig: Buffer.alloc(65, 7).toString('base64') },
        })),
      /signature\.sig: expected base64/,
    ],
    [
      'non-canonical base64 (unused bits set)',
      (t) =>
        edit(t, (e) => ({
          ...e,
          signature: { ...e.signature, sig: `${e.signature.sig.slice(0, 85)}B==` },
        })),
      /signature\.sig: expected base64/,
    ],
    [
      'base64url',
      (t) =>
        edit(t, (e) => ({
          ...e,
          signature: { ...e.signature, sig: `-_${e.signature.sig.slice(2)}` },
        })),
      /signature\.sig: expected base64/,
    ],
    [
      'a key name with a colon',
      (t) => edit(t, (e) => ({ ...e, signature: { ...e.signature, keyName: 'cache:1' } })),
      /signature\.keyName: expected a Nix key name/,
    ],
    [
      'a lone surrogate in the payload',
      (t) => edit(t, (e) => ({ ...e, payload: `${e.payload}\ud800` })),
      /payload: expected well-formed Unicode/,
    ],
    [
      'pretty-printed',
      (t) => `${JSON.stringify(JSON.parse(t), null, 2)}\n`,
      /found a difference at character 1$/,
    ],
    ['no final newline', (t) => t.slice(0, -1), /found a difference at character \d+/],
    ['two final newlines', (t) => `${t}\n`, /found a difference/],
    ['a BOM', (t) => `\ufeff${t}`, /found a difference at character 0/],
    [
      'keys in another order',
      (t) => edit(t, ({ format, ...rest }) => ({ ...rest, format })),
      /found a difference at character 8$/,
    ],
    [
      'an escaped letter',
      (t) => t.replace('"format"', '"\\u0066ormat"'),
      /found a difference at character 2$/,
    ],
    ['a duplicated key', (t) => t.replace('{"format":', '{"format":"x","format":'), /found a difference/],
  ])('refuses %s (MANIFEST_ENVELOPE_INVALID) with a message naming the field', (_label, change, message) => {
    const result = verifyManifest(change(signed()), [one.public]);
    expect(result).toMatchObject({ ok: false, code: 'MANIFEST_ENVELOPE_INVALID' });
    if (!result.ok) {
      expect(result.message).toMatch(/^malformed signed manifest: /);
      expect(result.message).toMatch(message);
      expect(result.message).not.toMatch(/[\n\r]/);
    }
  });

  it('bounds the input: a huge text is refused before it is parsed', () => {
    const huge = `{"format":"omni-deploy-signed-manifest","payload":"${'x'.repeat(MAX_SIGNED_MANIFEST_BYTES)}"}`;
    const result = verifyManifest(huge, [one.public]);
    expect(result).toMatchObject({ ok: false, code: 'MANIFEST_ENVELOPE_INVALID' });
    if (!result.ok) expect(result.message).toMatch(/expected at most 8388608 bytes, found 8388\d{3}/);
    // Multi-byte characters count as bytes, not as characters.
    const wide = `"${'é'.repeat(MAX_SIGNED_MANIFEST_BYTES / 2)}"`;
    expect(readSignedManifest(wide)).toMatchObject({ kind: 'invalid' });
    expect(() => signManifest(`"${'x'.repeat(MAX_SIGNED_MANIFEST_BYTES)}"`, one.secret)).toThrow(
      /cannot sign the manifest: expected its JSON text, found 8388610 bytes \(at most 8388608/,
    );
  });

  /**
   * The property the issue asks for. A change is one byte of the stored UTF-8 text replaced by another value,
   * deleted, or inserted; the text is decoded as a reader would (invalid UTF-8 becomes U+FFFD). "Refused" means
   * verifyManifest returns ok: false, and openManifest with allowUnsigned either refuses too or hands on a text
   * that parseManifest refuses: no change downgrades a signed manifest to an accepted unsigned one. There is no
   * ignorable whitespace: the envelope must be exactly its own JSON.stringify and a newline.
   */
  describe('any single-byte change to a signed manifest is refused', () => {
    const bytes = () => Buffer.from(signed(), 'utf8');
    const refused = (changed: Buffer) => {
      const text = changed.toString('utf8');
      const verified = verifyManifest(text, [one.public, two.public]);
      if (verified.ok) return false;
      const opened = openManifest(text, { trustedPublicKeys: [one.public, two.public], allowUnsigned: true });
      return !opened.ok || !parseManifest(opened.payload).ok;
    };
    const replace = (b: Buffer, at: number, value: number) => {
      const copy = Buffer.from(b);
      copy[at] = value;
      return copy;
    };
    const remove = (b: Buffer, at: number) => Buffer.concat([b.subarray(0, at), b.subarray(at + 1)]);
    const insert = (b: Buffer, at: number, value: number) =>
      Buffer.concat([b.subarray(0, at), Buffer.of(value), b.subarray(at)]);

    it('at every position: flipping the lowest bit, deleting it, inserting a space before it', () => {
      const original = bytes();
      for (let at = 0; at < original.length; at++) {
        const value = original[at] as number;
        expect(refused(replace(original, at, value ^ 1)), `flip at ${at}`).toBe(true);
        expect(refused(remove(original, at)), `delete at ${at}`).toBe(true);
        expect(refused(insert(original, at, 0x20)), `insert at ${at}`).toBe(true);
      }
      expect(refused(insert(original, original.length, 0x20))).toBe(true);
    });

    it('for any position and any other byte value (fast-check)', () => {
      const original = bytes();
      fc.assert(
        fc.property(
          fc.nat({ max: original.length - 1 }),
          fc.integer({ min: 0, max: 255 }),
          fc.constantFrom('replace', 'insert'),
          (at, value, how) => {
            if (how === 'replace' && original[at] === value) return;
            const changed = how === 'replace' ? replace(original, at, value) : insert(original, at, value);
            expect(refused(changed)).toBe(true);
          },
        ),
        { numRuns: 3000 },
      );
    });
  });
});

describe('signing input', () => {
  it.each([
    ['empty', '', /found an empty text/],
    ['already signed', 'signed', /found an already signed manifest/],
    ['a lone surrogate', '{"a":"\ud800"}', /found a lone surrogate/],
  ])('refuses a payload that is %s (MANIFEST_SIGN)', (_label, text, message) => {
    const payloadText = text === 'signed' ? signManifest(payload, one.secret) : text;
    expect(() => signManifest(payloadText, one.secret)).toThrow(message);
    try {
      signManifest(payloadText, one.secret);
    } catch (error) {
      expect(isDeployError(error, 'MANIFEST_SIGN')).toBe(true);
    }
  });

  it('refuses a malformed or damaged secret key (NIX_KEY) without echoing it', () => {
    const { publicKey } = generateKeyPairSync('ed25519');
    const strangerHalf = publicKey.export({ format: 'der', type: 'spki' }).subarray(-32);
    const secret = Buffer.from(one.secret.split(':')[1] as string, 'base64');
    const damaged = `cache-1:${Buffer.concat([secret.subarray(0, 32), strangerHalf]).toString('base64')}`;
    for (const [key, message] of [
      [one.public, /secret key: expected name:base64 of a 64-byte ed25519 secret key/],
      ['cache-1', /secret key: expected/],
      [damaged, /secret key "cache-1": its public half does not match its secret half/],
    ] as const) {
      let thrown: unknown;
      try {
        signManifest(payload, key);
      } catch (error) {
        thrown = error;
      }
      expect(isDeployError(thrown, 'NIX_KEY')).toBe(true);
      expect((thrown as Error).message).toMatch(message);
      for (const material of keyMaterial(one)) expect((thrown as Error).message).not.toContain(material);
      expect((thrown as Error).message).not.toContain(damaged.split(':')[1]);
    }
  });

  it('accepts the key file as Nix writes it, with or without a trailing newline', () => {
    const text = signManifest(payload, `${one.secret.trim()}\n`);
    expect(verifyManifest(text, [`${one.public.trim()}\n`])).toMatchObject({ ok: true });
  });
});
