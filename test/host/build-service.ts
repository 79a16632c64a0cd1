/**
 * Real store paths for tests, from a tiny Nix derivation (no nixpkgs needed): files with exact contents under
 * `$out`, e.g. `bin/web` as a wrapper that runs Debian's /usr/bin/node or /usr/bin/python3. In file contents,
 * `@out@` stands for the store path itself.
 */
import { createShell } from '../../src/shell/index.js';
import type { Shell } from '../../src/shell/types.js';

/** What to build. */
export interface ServiceBuild {
  /** The store name, e.g. `web-1.0.0` (becomes `/nix/store/<hash>-web-1.0.0`). */
  name: string;
  /** Relative path under `$out` → contents. Files under `bin/` (and `*.sh`) are made executable. */
  files: Readonly<Record<string, string>>;
}

/** The environment Nix needs here: no nixpkgs, no remote substituters, single-user root. */
export const NIX_ENV = {
  PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
  HOME: '/root',
  NIX_CONFIG: 'experimental-features = nix-command\nbuild-users-group =\nsubstituters =',
  // See CLEAN_ENV in boot-host.ts: keeps bash from sourcing ~/.bashrc.
  SHLVL: '1',
};

// The builder is Debian's node: the file list arrives as one JSON string in the environment, exact bytes.
const BUILDER = `
const fs = require('fs'), path = require('path');
const out = process.env.out;
for (const [rel, text] of Object.entries(JSON.parse(process.env.files))) {
  const file = path.join(out, rel);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, text.replaceAll('@out@', out));
  if (rel.startsWith('bin/') || rel.endsWith('.sh')) fs.chmodSync(file, 0o755);
}`;

const EXPRESSION = `{ name, files, builderScript }: derivation {
  inherit name files;
  system = builtins.currentSystem;
  builder = "/usr/bin/node";
  args = [ "-e" builderScript ];
}`;

const NIX_MISSING =
  'nix-build not found: building test services needs the Debian package nix-bin (apt-get install -y nix-bin)';

/**
 * Builds `spec` with `nix-build` and returns its store path. `shell` chooses where: this machine (default) or
 * a booted test host (`host.shell`), whose store is its own. Builds are cached by Nix: same spec, same path.
 */
export async function buildService(
  spec: ServiceBuild,
  shell: Shell = createShell({ env: NIX_ENV }),
): Promise<string> {
  const r = await shell.run(
    'nix-build',
    [
      '--no-out-link',
      '-E',
      EXPRESSION,
      '--argstr',
      'name',
      spec.name,
      '--argstr',
      'files',
      JSON.stringify(spec.files),
      '--argstr',
      'builderScript',
      BUILDER,
    ],
    { env: NIX_ENV },
  );
  // 127: the shell found no such program.
  if (r.exitCode === 127) throw new Error(`${NIX_MISSING}\n${r.stderr}`);
  const path = r.stdout.trim().split('\n').pop() ?? '';
  if (r.exitCode !== 0 || !path.startsWith('/nix/store/'))
    throw new Error(`nix-build of ${spec.name} failed (exit ${r.exitCode}):\n${r.stderr}`);
  return path;
}

/** A `bin/<command>` wrapper that runs `program` on the script file `script` of the same closure. */
export function wrapper(program: '/usr/bin/node' | '/usr/bin/python3', script: string): string {
  return `#!/bin/sh\nexec ${program} @out@/${script} "$@"\n`;
}
