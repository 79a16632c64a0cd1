/**
 * Generates schema/manifest.schema.json from the valibot schema (the single source of truth).
 * `tsx scripts/gen-schema.ts` writes it; `--check` exits 1 when the committed file is stale.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { toJsonSchema } from '@valibot/to-json-schema';
import { ManifestSchema } from '../src/manifest/schema.js';

export const SCHEMA_FILE = fileURLToPath(new URL('../schema/manifest.schema.json', import.meta.url));

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

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const text = renderManifestJsonSchema();
  if (process.argv.includes('--check')) {
    if (readFileSync(SCHEMA_FILE, 'utf8') !== text) {
      process.stderr.write('schema/manifest.schema.json is stale: run npm run schema\n');
      process.exit(1);
    }
  } else writeFileSync(SCHEMA_FILE, text);
}
