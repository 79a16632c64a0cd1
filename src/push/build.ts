import { DeployError } from '../errors.js';
import { STORE_PATH_RE } from '../manifest/store-path.js';
import type { Shell } from '../shell/types.js';

/** The default build command (docs/design.md): `bild <target> --cache` builds, signs, uploads, prints the path. */
export const DEFAULT_BUILD_COMMAND = 'bild {target} --cache';

/**
 * Runs the build command for `target` and returns the store path it printed (the last line of its output that
 * is exactly a store path). The command is the operator's own shell text; `{target}` becomes `"$1"`, so the
 * target reaches it as one argument and is never parsed as shell code.
 */
export async function runBuild(shell: Shell, command: string, target: string, cwd?: string): Promise<string> {
  if (!command.includes('{target}'))
    throw new DeployError(
      'USAGE',
      `build command: expected a {target} placeholder, found ${JSON.stringify(command)}`,
    );
  const script = command.replaceAll('{target}', '"$1"');
  const r = await shell.run(
    '/bin/sh',
    ['-c', script, 'push-build', target],
    cwd === undefined ? {} : { cwd },
  );
  const output = `${r.stdout}\n${r.stderr}`.trim().split('\n').slice(-15).join('\n');
  if (r.exitCode !== 0) {
    throw new DeployError(
      'BUILD_FAILED',
      `build of ${target} failed (${r.exitCode === null ? `signal ${r.signal}` : `exit status ${r.exitCode}`}): ${command}\n${output}`,
    );
  }
  const path = r.stdout
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => STORE_PATH_RE.test(line))
    .at(-1);
  if (!path)
    throw new DeployError(
      'BUILD_FAILED',
      `build of ${target} printed no store path on stdout: ${command}\n${output}`,
    );
  return path;
}

/** The git commit of `cwd` (short, `-dirty` with uncommitted changes), or `undefined` outside a git checkout. */
export async function gitRevision(shell: Shell, cwd?: string): Promise<string | undefined> {
  const options = cwd === undefined ? {} : { cwd };
  const head = await shell.run('git', ['rev-parse', '--short=12', 'HEAD'], options);
  if (head.exitCode !== 0) return undefined;
  const dirty = await shell.run('git', ['status', '--porcelain', '--untracked-files=no'], options);
  return `${head.stdout.trim()}${dirty.exitCode === 0 && dirty.stdout.trim() ? '-dirty' : ''}`;
}
