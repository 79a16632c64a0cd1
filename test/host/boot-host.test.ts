import { spawn } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BootedHost, bootHost, MISSING_NSPAWN } from './index.js';

const MASK = ['postgresql.service', 'postgresql@15-main.service', 'caddy.service'];
// A private base directory: these tests count and delete host directories, and must not see other runs'.
const baseDir = mkdtempSync('/var/tmp/omni-host-test-');
afterAll(() => rmSync(baseDir, { recursive: true, force: true }));

const isAlive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function until(what: string, check: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe('bootHost', () => {
  let host: BootedHost;
  beforeAll(async () => {
    host = await bootHost({
      hostname: 'biz-test',
      mask: MASK,
      baseDir,
      files: { '/etc/omni-preboot': 'before boot\n' },
    });
  }, 90_000);
  afterAll(() => host?.stop());

  it('boots systemd as PID 1 under the requested host name', async () => {
    expect((await host.run('hostname')).trim()).toBe('biz-test');
    expect((await host.run('cat', ['/proc/1/comm'])).trim()).toBe('systemd');
    expect(['running\n', 'degraded\n']).toContain(await host.run('systemctl', ['is-system-running']));
    expect(
      (
        await host.run('systemctl', ['is-enabled', 'postgresql.service']).catch((e: Error) => e.message)
      ).trim(),
    ).toMatch(/masked/);
    expect(await host.readFile('/etc/omni-preboot')).toBe('before boot\n');
  });

  it('has its own network (only loopback) and its own files', async () => {
    expect((await host.run('ls', ['/sys/class/net'])).trim()).toBe('lo');
    await host.writeFile('/etc/omni-only-inside', 'x');
    expect(await host.readFile('/etc/omni-only-inside')).toBe('x');
    expect(existsSync('/etc/omni-only-inside')).toBe(false);
  });

  it('passes every argument exactly and reports exit codes', async () => {
    const args = ['a b', '', '$HOME', "'q'", '"dq"', ';', '\\', 'ünï', '%n', '--'];
    const out = await host.run('/usr/bin/node', [
      '-e',
      'process.stdout.write(JSON.stringify(process.argv.slice(1)))',
      ...args,
    ]);
    expect(JSON.parse(out)).toEqual(args);
    expect(await host.exec('sh', ['-c', 'echo oops >&2; exit 7'])).toMatchObject({
      exitCode: 7,
      stderr: 'oops\n',
    });
    await expect(host.run('false')).rejects.toThrow(/in test host biz-test: false exited 1/);
  });

  it('writes files with a mode, resolving symlinks as the container sees them', async () => {
    await host.writeFile('/var/run/omni/secret.env', 'A=1\n', 0o600);
    expect(await host.readFile('/run/omni/secret.env')).toBe('A=1\n');
    expect((await host.run('stat', ['-c', '%a %U', '/run/omni/secret.env'])).trim()).toBe('600 root');
    expect(existsSync('/run/omni/secret.env')).toBe(false);
    // root is this machine's way in, e.g. for an adapter's rootDir.
    expect(readFileSync(`${host.root}/run/omni/secret.env`, 'utf8')).toBe('A=1\n');
  });
});

describe('bootHost teardown', () => {
  it('stop() ends the container and its processes and deletes its directory; twice is fine', async () => {
    const host = await bootHost({ mask: MASK, baseDir });
    const dirs = readdirSync(baseDir).filter((d) => d.startsWith('omni-host.'));
    expect(dirs).toHaveLength(1);
    await host.stop();
    await host.stop();
    expect(isAlive(host.pid)).toBe(false);
    expect(readdirSync(baseDir).filter((d) => d.startsWith('omni-host.'))).toEqual([]);
    expect(readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(baseDir);
  }, 60_000);

  it('shuts the container down when the test process dies without stopping it; the next boot clears the leftovers', async () => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', new URL('fixtures/boot-and-hang.ts', import.meta.url).pathname, baseDir],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    const line = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        if (out.includes('\n')) resolve(out);
      });
      child.once('exit', (code) => reject(new Error(`boot-and-hang exited ${code}`)));
    });
    const { pid } = JSON.parse(line) as { pid: number };
    expect(isAlive(pid)).toBe(true);
    child.kill('SIGKILL');
    await until('the orphaned container is gone', () => !isAlive(pid));
    expect(readdirSync(baseDir).filter((d) => d.startsWith('omni-host.'))).toHaveLength(1);
    const next = await bootHost({ mask: MASK, baseDir });
    expect(readdirSync(baseDir).filter((d) => d.startsWith('omni-host.'))).toHaveLength(1);
    await next.stop();
  }, 90_000);

  it('leaves a directory alone whose owner is alive or unknown', async () => {
    const mine = join(baseDir, 'omni-host.alive');
    const unknown = join(baseDir, 'omni-host.unknown');
    mkdirSync(mine);
    mkdirSync(unknown);
    writeFileSync(join(mine, 'owner.pid'), String(process.pid));
    const host = await bootHost({ mask: MASK, baseDir });
    await host.stop();
    expect(existsSync(mine) && existsSync(unknown)).toBe(true);
    rmSync(mine, { recursive: true });
    rmSync(unknown, { recursive: true });
  }, 60_000);

  it('fails with the Debian package to install when systemd-nspawn is missing', async () => {
    await expect(bootHost({ nspawn: '/nonexistent/systemd-nspawn', baseDir })).rejects.toThrow(
      MISSING_NSPAWN,
    );
    expect(MISSING_NSPAWN).toContain('systemd-container');
  });

  it('reports a container that does not boot, with its console, and cleans up', async () => {
    const before = readdirSync(baseDir);
    await expect(bootHost({ nspawn: '/bin/false', baseDir })).rejects.toThrow(
      /systemd-nspawn exited during boot/,
    );
    expect(readdirSync(baseDir)).toEqual(before);
  });
});
