#!/usr/bin/env node
import pkg from '../package.json' with { type: 'json' };

// push arrives with its own issue; until then it says what it will do instead of pretending.
const HELP = `push ${pkg.version}: build a service, upload its closure and update the manifest

Not implemented yet in this version: only --help and --version work.
Validate a manifest before uploading it with: deployer validate <file>
`;

const [arg] = process.argv.slice(2);
if (arg === '--version') process.stdout.write(`${pkg.version}\n`);
else if (arg === undefined || arg === '--help' || arg === '-h') process.stdout.write(HELP);
else {
  process.stderr.write(`push: ${JSON.stringify(arg)} is not available yet; run push --help\n`);
  process.exitCode = 2;
}
