import { generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import { renderSignedManifestJsonSchema, SIGNED_SCHEMA_FILE } from '../../scripts/gen-schema.js';
import {
  parseManifest,
  readSignedManifest,
  type SignedManifest,
  signManifest,
} from '../../src/manifest/index.js';
import { makeManifest } from '../builders.js';

const committed = readFileSync(SIGNED_SCHEMA_FILE, 'utf8');
const check = new Ajv({ strict: false, allErrors: true }).compile(JSON.parse(committed));

/** A Nix-format secret key (seed ‖ public) made with node:crypto: enough for a structural schema test. */
function secretKey(name: string): string {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const raw = publicKey.export({ format: 'der', type: 'spki' }).subarray(-32);
  const seed = privateKey.export({ format: 'der', type: 'pkcs8' }).subarray(-32);
  return `${name}:${Buffer.concat([seed, raw]).toString('base64')}`;
}

const signed = JSON.parse(
  signManifest(`${JSON.stringify(makeManifest(), null, 2)}\n`, secretKey('cache-1')),
) as SignedManifest;

describe('the shipped signed manifest JSON Schema', () => {
  it('is generated from the valibot schema and up to date (run `npm run schema` after changing it)', () => {
    expect(committed).toBe(renderSignedManifestJsonSchema());
  });

  it('accepts what signManifest writes', () => {
    expect(check(signed), JSON.stringify(check.errors)).toBe(true);
  });

  it.each<[string, (e: SignedManifest) => unknown]>([
    ['an unknown key', (e) => ({ ...e, note: 'x' })],
    ['another format', (e) => ({ ...e, format: 'other' })],
    ['another format version', (e) => ({ ...e, formatVersion: 2 })],
    ['an empty payload', (e) => ({ ...e, payload: '' })],
    ['a missing signature', ({ signature: _, ...e }) => e],
    ['a short signature', (e) => ({ ...e, signature: { ...e.signature, sig: 'AAAA' } })],
    ['a bad key name', (e) => ({ ...e, signature: { ...e.signature, keyName: 'a b' } })],
    ['an unknown signature key', (e) => ({ ...e, signature: { ...e.signature, alg: 'ed25519' } })],
  ])('rejects what readSignedManifest rejects at the field level: %s', (_label, change) => {
    const envelope = change(structuredClone(signed));
    expect(readSignedManifest(`${JSON.stringify(envelope)}\n`).kind).toBe('invalid');
    expect(check(envelope)).toBe(false);
  });
});

describe('the documented example (docs/signed-manifests.md)', () => {
  it('is a well-formed signed manifest in its exact serialisation, around a valid manifest', () => {
    const doc = readFileSync(new URL('../../docs/signed-manifests.md', import.meta.url), 'utf8');
    const line = doc.split('\n').find((l) => l.startsWith('{"format":'));
    const read = readSignedManifest(`${line}\n`);
    expect(read.kind).toBe('signed');
    if (read.kind === 'signed') expect(parseManifest(read.envelope.payload).ok).toBe(true);
    expect(check(JSON.parse(line as string))).toBe(true);
  });
});
