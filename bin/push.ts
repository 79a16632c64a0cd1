#!/usr/bin/env node
import { readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { readStdin } from '../src/cli/process.js';
import { runPush } from '../src/cli/push.js';

// The AWS SDK warns on every run under Node 20 that it will need Node 22 from 2027 (see README).
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

process.exitCode = await runPush(process.argv.slice(2), {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  readText: (path) => (path === '-' ? readStdin() : readFile(path, 'utf8')),
  hostname,
  cwd: () => process.cwd(),
  env: process.env,
  isTTY: process.stderr.isTTY === true,
});
process.exit();
