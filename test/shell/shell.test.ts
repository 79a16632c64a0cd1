import { describe, expect, it } from 'vitest';
import { createShell, type Shell } from '../../src/shell/index.js';
import { createFakeShell } from '../../src/testing/index.js';

const HOSTILE = [
  'plain',
  'a b',
  '',
  "it's",
  '"q"',
  '$HOME',
  '${X}',
  '$(touch /tmp/pwned)',
  '`id`',
  ';',
  '&&',
  '|',
  '*',
  '~',
  '\\',
  'new\nline',
  'tab\tx',
  'ünï',
  '-n',
  '--',
  '%h',
];

/** The contract every Shell honours; run against the real one and the fake (scripted like `node -e`). */
function contract(name: string, make: () => Shell) {
  describe(`Shell contract: ${name}`, () => {
    it('passes every argument through exactly, one argv entry each', async () => {
      const r = await make().run(process.execPath, [
        '-e',
        'process.stdout.write(JSON.stringify(process.argv.slice(1)))',
        ...HOSTILE,
      ]);
      expect(r.exitCode).toBe(0);
      expect(JSON.parse(r.stdout)).toEqual(HOSTILE);
    });

    it('returns a non-zero exit and stderr instead of throwing', async () => {
      const r = await make().run(process.execPath, ['-e', 'process.stderr.write("bad"); process.exit(3)']);
      expect(r).toMatchObject({ exitCode: 3, stderr: 'bad' });
    });

    it('feeds input and environment', async () => {
      const r = await make().run(
        process.execPath,
        ['-e', 'process.stdin.pipe(process.stdout); process.stdout.write(process.env.X_TEST ?? "")'],
        {
          input: 'in;$(x)',
          env: { X_TEST: '+env' },
        },
      );
      expect(r.stdout).toBe('+envin;$(x)');
    });
  });
}

contract('createShell (real processes)', () => createShell());
contract('createFakeShell (node emulated)', () => {
  const shell = createFakeShell();
  shell.on(({ args, options }) => {
    const [, script, ...rest] = args;
    if (script?.includes('argv')) return { stdout: JSON.stringify(rest) };
    if (script?.includes('exit(3)')) return { exitCode: 3, stderr: 'bad' };
    return { stdout: `${options.env?.X_TEST ?? ''}${options.input ?? ''}` };
  });
  return shell;
});

describe('createShell', () => {
  it('reports a missing program as exit 127-style failure, not a crash', async () => {
    const r = await createShell().run('/nonexistent/program', ['x']);
    expect(r.exitCode).not.toBe(0);
  });

  it('answers a program that cannot be started with exit 127 and the reason on stderr', async () => {
    const r = await createShell().run('/nonexistent/program', ['x']);
    expect(r).toEqual({
      exitCode: 127,
      signal: null,
      stdout: '',
      stderr: '/nonexistent/program: command not found\n',
    });
    const inMissingDir = await createShell().run(process.execPath, ['-e', '0'], { cwd: '/nonexistent/dir' });
    expect(inMissingDir).toMatchObject({
      exitCode: 127,
      stderr: `${process.execPath}: command not found, or no working directory /nonexistent/dir\n`,
    });
  });

  it('gives a command without input an empty standard input (it never waits for one)', async () => {
    const r = await createShell().run(process.execPath, ['-e', 'process.stdin.pipe(process.stdout)'], {
      timeoutMs: 10_000,
    });
    expect(r).toMatchObject({ exitCode: 0, stdout: '' });
  });

  it('ignores input a command does not read', async () => {
    const r = await createShell().run(process.execPath, ['-e', '0'], { input: 'x'.repeat(1 << 20) });
    expect(r).toMatchObject({ exitCode: 0, signal: null });
  });

  it('runs every command behind a prefix (e.g. nsenter into a test host)', async () => {
    const r = await createShell({ prefix: ['env', 'PREFIXED=1'] }).run(process.execPath, [
      '-e',
      'process.stdout.write(process.env.PREFIXED)',
    ]);
    expect(r.stdout).toBe('1');
  });

  it('kills a command at its timeout', async () => {
    const r = await createShell().run(process.execPath, ['-e', 'setTimeout(() => {}, 10000)'], {
      timeoutMs: 200,
    });
    expect(r).toMatchObject({ exitCode: null, signal: 'SIGTERM' });
  });
});

describe('createFakeShell', () => {
  it('records calls and answers unknown commands with 127', async () => {
    const shell = createFakeShell();
    const r = await shell.run('systemctl', ['daemon-reload']);
    expect(r.exitCode).toBe(127);
    expect(shell.calls).toEqual([{ command: 'systemctl', args: ['daemon-reload'], options: {} }]);
  });
});

describe('createShell environment', () => {
  it('never sources ~/.bashrc or BASH_ENV into commands', async () => {
    const { mkdtempSync, writeFileSync } = await import('node:fs');
    const { join } = await import('node:path');
    const { tmpdir } = await import('node:os');
    const home = mkdtempSync(join(tmpdir(), 'omni-home-'));
    writeFileSync(join(home, '.bashrc'), 'export FROM_BASHRC=yes\n');
    writeFileSync(join(home, 'env.sh'), 'export FROM_BASH_ENV=yes\n');
    const shell = createShell({
      env: { PATH: process.env.PATH, HOME: home, BASH_ENV: join(home, 'env.sh') },
    });
    const r = await shell.run(process.execPath, [
      '-e',
      'process.stdout.write(JSON.stringify([process.env.FROM_BASHRC, process.env.FROM_BASH_ENV]))',
    ]);
    expect(JSON.parse(r.stdout)).toEqual([null, null]);
  });
});
