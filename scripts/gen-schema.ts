/**
 * Generates schema/manifest.schema.json and schema/signed-manifest.schema.json from the valibot schemas (the
 * single source of truth). `tsx scripts/gen-schema.ts` writes them; `--check` exits 1 when one is stale.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { toJsonSchema } from '@valibot/to-json-schema';
import { SignedManifestSchema } from '../src/manifest/envelope.js';
import { ManifestSchema } from '../src/manifest/schema.js';

export const SCHEMA_FILE = fileURLToPath(new URL('../schema/manifest.schema.json', import.meta.url));
export const SIGNED_SCHEMA_FILE = fileURLToPath(
  new URL('../schema/signed-manifest.schema.json', import.meta.url),
);

/** The manifest's JSON Schema as text. Cross-field rules (unique names, ports, secrets dir) are not expressible here. */
export function renderManifestJsonSchema(): string {
  // 'ignore' drops the v.check() refinements (calendar dates, control characters); their regex parts remain.
  const schema = toJsonSchema(ManifestSchema, { errorMode: 'ignore' });
  const document = {
    $schema: schema.$schema,
    $id: 'https://github.com/omni/deploy/schema/manifest.schema.json',
    title: '@omni/deploy manifest v1',
    description:
      'What runs where. Validate fully with `deployer validate`: it also checks unique names, routes and ports, and envFile locations.',
    ...Object.fromEntries(Object.entries(schema).filter(([key]) => key !== '$schema')),
  };
  return `${JSON.stringify(document, null, 2)}\n`;
}

/**
 * The signed manifest envelope's JSON Schema as text. What it cannot say: the exact serialisation, the payload
 * being a valid manifest, and the signature itself; `deployer validate --trusted-public-key` checks those.
 */
export function renderSignedManifestJsonSchema(): string {
  const schema = toJsonSchema(SignedManifestSchema, { errorMode: 'ignore' }) as Record<string, unknown> & {
    properties: Record<string, Record<string, unknown>>;
  };
  // draft-07 can say the string holds JSON, and where its schema is, but not enforce it.
  schema.properties.payload = { ...schema.properties.payload, contentMediaType: 'application/json' };
  const document = {
    $schema: schema.$schema,
    $id: 'https://github.com/omni/deploy/schema/signed-manifest.schema.json',
    title: '@omni/deploy signed manifest (format version 1)',
    description:
      'A manifest and its ed25519 signature by a Nix signing key, in one object. The text is exactly JSON.stringify of this object (keys in this order, no whitespace) and one newline; check the signature with `deployer validate --trusted-public-key`.',
    ...Object.fromEntries(Object.entries(schema).filter(([key]) => key !== '$schema')),
  };
  return `${JSON.stringify(document, null, 2)}\n`;
}

const GENERATED: [file: string, render: () => string][] = [
  [SCHEMA_FILE, renderManifestJsonSchema],
  [SIGNED_SCHEMA_FILE, renderSignedManifestJsonSchema],
];

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  for (const [file, render] of GENERATED) {
    const text = render();
    if (!process.argv.includes('--check')) writeFileSync(file, text);
    else if (readFileSync(file, 'utf8') !== text) {
      process.stderr.write(`${file} is stale: run npm run schema\n`);
      process.exitCode = 1;
    }
  }
}
