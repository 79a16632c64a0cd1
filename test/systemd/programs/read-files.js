// Tries to read each file named in argv and records what happened, to $STATE_DIRECTORY/out.json:
// "cred:NAME" stands for $CREDENTIALS_DIRECTORY/NAME. With --stay it keeps running afterwards (systemd removes
// a unit's credentials when it stops).
const fs = require('node:fs');
const path = require('node:path');

const args = process.argv.slice(2);
const stay = args.includes('--stay');
const credentials = process.env.CREDENTIALS_DIRECTORY ?? null;
const reads = {};
for (const arg of args.filter((a) => a !== '--stay')) {
  const file = arg.startsWith('cred:') ? path.join(credentials ?? '/nonexistent', arg.slice(5)) : arg;
  try {
    reads[arg] = fs.readFileSync(file, 'utf8');
  } catch (error) {
    reads[arg] = `error: ${error.code}`;
  }
}
// Everything the service inherits besides the credential: the secret must not be in here.
const out = { credentials, reads, env: process.env };
const file = path.join(process.env.STATE_DIRECTORY, 'out.json');
fs.writeFileSync(`${file}.tmp`, JSON.stringify(out));
fs.renameSync(`${file}.tmp`, file);
if (stay) setInterval(() => {}, 60_000);
