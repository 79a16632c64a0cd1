#!/usr/bin/env node
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname } from 'node:path';
import { runDeployer } from '../src/cli/deployer.js';
import { readStdin } from '../src/cli/process.js';

// SIGTERM/SIGINT let the tick in progress finish (watch stops after it); a second signal exits at once.
const stop = new AbortController();
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => {
    if (stop.signal.aborted) process.exit(130);
    stop.abort();
  });
}

// The AWS SDK warns on every run under Node 20 that it will need Node 22 from 2027 (see README).
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

process.exitCode = await runDeployer(process.argv.slice(2), {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  readText: (path) => (path === '-' ? readStdin() : readFile(path, 'utf8')),
  hostname,
  cwd: () => process.cwd(),
  writeText: async (path, text) => {
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, text);
  },
  env: process.env,
  isTTY: process.stderr.isTTY === true,
  signal: stop.signal,
});
process.exit();
