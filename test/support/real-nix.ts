import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requireBinary } from './binaries.js';

/**
 * Real Nix without nixpkgs or a daemon (ENVIRONMENT.md): single-user as root, no build users, no substituters.
 * Passed to every nix command the tests run, through the adapter's `env` option or here.
 */
export const NIX_ENV = { NIX_CONFIG: 'build-users-group =\nsubstituters =' };

/** Fails with the package to install when nix-bin is missing. */
export function requireNix(): void {
  requireBinary('nix', 'nix-bin');
  requireBinary('nix-store', 'nix-bin');
}

/**
 * Builds `versions` tiny closures in the system store (each a `svc` path referring to a `dep` path) with one
 * nix-build, and returns the `svc` store paths in order. Names carry `tag`, so they are this suite's own;
 * contents are deterministic, so a second run reuses them. Nothing is rooted: they are garbage when unused.
 */
export function buildClosures(tag: string, versions: string[]): string[] {
  const dir = mkdtempSync(join(tmpdir(), 'omni-nix-build-'));
  const file = join(dir, 'closures.nix');
  writeFileSync(
    file,
    `{ tag, versions }:
let
  sh = name: script: derivation {
    inherit name; system = builtins.currentSystem; builder = "/bin/sh"; PATH = "/usr/bin:/bin";
    args = [ "-c" script ];
  };
  mk = v: let dep = sh "omni-\${tag}-dep-\${v}" "mkdir -p $out; echo dep \${v} > $out/data"; in
    sh "omni-\${tag}-svc-\${v}" "mkdir -p $out/bin; printf '#!/bin/sh\\\\necho svc \${v} \${dep}\\\\n' > $out/bin/svc; chmod +x $out/bin/svc";
in map mk (builtins.fromJSON versions)
`,
  );
  let out: string;
  try {
    out = execFileSync(
      'nix-build',
      [file, '--no-out-link', '--argstr', 'tag', tag, '--argstr', 'versions', JSON.stringify(versions)],
      { encoding: 'utf8', env: { ...process.env, ...NIX_ENV }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return out.trim().split('\n');
}
