// One fresh process, one parse: what `deployer validate` or a deployer tick pays with cold (unoptimised) code.
// Prints JSON: { jsonParseMs, parseManifestMs } for the manifest file given as argv[2].
import { readFileSync } from 'node:fs';
import { parseManifest } from '../dist/manifest/index.js';

const text = readFileSync(process.argv[2], 'utf8');
let start = performance.now();
JSON.parse(text);
const jsonParseMs = performance.now() - start;
start = performance.now();
const result = parseManifest(text);
const parseManifestMs = performance.now() - start;
if (!result.ok) throw new Error('bench manifest is invalid');
process.stdout.write(JSON.stringify({ jsonParseMs, parseManifestMs }));
