/**
 * The package as npm would publish it, built into a staging copy (never this checkout's dist/, which another
 * test may be rebuilding at the same time): tsup into <staging>/dist, then `npm pack` there.
 */
import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO } from './support.js';

/** Builds and packs this checkout into `dir`; returns the tarball's path. Also warms npm's cache for it. */
export function packTarball(dir: string): string {
  const staging = mkdtempSync(join(dir, 'staging-'));
  const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { files: string[] };
  cpSync(join(REPO, 'package.json'), join(staging, 'package.json'));
  cpSync(join(REPO, 'README.md'), join(staging, 'README.md'));
  for (const entry of pkg.files.filter((f) => f !== 'dist'))
    cpSync(join(REPO, entry), join(staging, entry), { recursive: true });
  const run = (command: string, args: string[], cwd: string) =>
    execFileSync(command, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  run(join(REPO, 'node_modules/.bin/tsup'), ['--out-dir', join(staging, 'dist')], REPO);
  run('npm', ['pack', '--pack-destination', dir], staging);
  const tarball = readdirSync(dir).find((f) => f.endsWith('.tgz'));
  if (!tarball) throw new Error(`npm pack wrote no tarball into ${dir}`);
  // A host without network installs from npm's cache (npm_config_offline): make sure every dependency is in it.
  const scratch = mkdtempSync(join(dir, 'warm-'));
  run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', join(dir, tarball)], scratch);
  return join(dir, tarball);
}
