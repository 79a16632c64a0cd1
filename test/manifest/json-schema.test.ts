import { readFileSync } from 'node:fs';
import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import { renderManifestJsonSchema, SCHEMA_FILE } from '../../scripts/gen-schema.js';
import { validateManifest } from '../../src/manifest/index.js';
import { clone, makeManifest, makeService } from '../builders.js';

const committed = readFileSync(SCHEMA_FILE, 'utf8');
const ajv = new Ajv({ strict: false, allErrors: true });
const check = ajv.compile(JSON.parse(committed));

describe('the shipped JSON Schema', () => {
  it('is generated from the valibot schema and up to date (run `npm run schema` after changing it)', () => {
    expect(committed).toBe(renderManifestJsonSchema());
  });

  it('accepts what the validator accepts: examples/manifest.json and builders', () => {
    const example = JSON.parse(
      readFileSync(new URL('../../examples/manifest.json', import.meta.url), 'utf8'),
    );
    expect(example.$schema).toBe('../schema/manifest.schema.json');
    for (const manifest of [
      example,
      makeManifest([
        makeService({ env: { A: '1' }, http: { domain: '*.a.com', path: '/x', internalPort: 9000 } }),
      ]),
    ]) {
      expect(validateManifest(manifest).ok).toBe(true);
      expect(check(manifest), JSON.stringify(check.errors)).toBe(true);
    }
  });

  it.each([
    ['unknown key', { enviroment: {} }],
    ['bad name', { name: 'Web' }],
    ['bad store path', { artifact: { type: 'nix-closure', storePath: '/nix/store/abc-x' } }],
    ['bad env key', { env: { 'A-B': 'x' } }],
    ['bad port', { http: { domain: 'a.com', path: '/', internalPort: 80 } }],
    ['bad protectSystem', { hardening: { protectSystem: 'yes' } }],
    ['no hosts', { hosts: [] }],
  ])('rejects what the validator rejects at the field level: %s', (_name, overrides) => {
    const manifest = clone(makeManifest([makeService(overrides)]));
    expect(validateManifest(manifest).ok).toBe(false);
    expect(check(manifest)).toBe(false);
  });
});
