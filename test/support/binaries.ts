import { spawnSync } from 'node:child_process';

/**
 * Fails (never skips) when a program the test needs is missing, naming the Debian package that provides it.
 * Call it from `beforeAll`, so every test of the file fails with this one clear message.
 */
export function requireBinary(command: string, debianPackage: string): void {
  const result = spawnSync(command, ['--version'], { encoding: 'utf8' });
  if (result.error || result.status !== 0) {
    throw new Error(
      `${command} is required by this test but is not runnable (${result.error?.message ?? result.stderr.trim()}); install the Debian package ${debianPackage}: apt-get install -y ${debianPackage}`,
    );
  }
}
