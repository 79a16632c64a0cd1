// Records exactly what systemd handed this process: argv and environment as Node decoded them, and the raw
// bytes from /proc/self/cmdline and /proc/self/environ (hex), written to $STATE_DIRECTORY/out.json.
const fs = require('node:fs');
const path = require('node:path');

/** Splits a NUL-terminated list of byte strings into hex strings. */
function split(buffer) {
  const parts = [];
  let start = 0;
  for (let i = 0; i < buffer.length; i++) {
    if (buffer[i] === 0) {
      parts.push(buffer.subarray(start, i).toString('hex'));
      start = i + 1;
    }
  }
  return parts;
}

const out = {
  argv: process.argv.slice(2),
  env: process.env,
  // cmdline is node, this script, then the arguments.
  rawArgv: split(fs.readFileSync('/proc/self/cmdline')).slice(2),
  rawEnv: split(fs.readFileSync('/proc/self/environ')),
};
const file = path.join(process.env.STATE_DIRECTORY, 'out.json');
fs.writeFileSync(`${file}.tmp`, JSON.stringify(out));
fs.renameSync(`${file}.tmp`, file);
