// Writes docs/cli.md from the command definitions (npm run docs:cli); test/cli/docs.test.ts fails when it is stale.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { DEPLOYER } from '../src/cli/deployer.js';
import { CLI_DOCS_FILE, renderCliReference } from '../src/cli/docs.js';
import { PUSH } from '../src/cli/push.js';

const file = join(new URL('..', import.meta.url).pathname, CLI_DOCS_FILE);
mkdirSync(dirname(file), { recursive: true });
writeFileSync(file, renderCliReference([DEPLOYER, PUSH]));
console.log(`wrote ${CLI_DOCS_FILE}`);
