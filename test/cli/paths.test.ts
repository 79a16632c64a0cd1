import { execFile, execFileSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CliIo } from '../../src/cli/io.js';
import { type PushCliDeps, runPush } from '../../src/cli/push.js';
import type { PushSettings } from '../../src/push/settings.js';
import { buildClosures, NIX_ENV, requireNix } from '../support/real-nix.js';

const ROOT = new URL('../..', import.meta.url).pathname;
/** Shaped like a Nix secret key (name:base64 of 64 bytes); never a real one. */
const SECRET = `cache-1:${Buffer.alloc(64, 7).toString('base64')}`;

/** The real-bin tests' scratch directory; the bins get `<dir>/tmp` as TMPDIR. */
let dir: string;

/** Runs a bin in `cwd` with `env` and optional standard input. */
function bin(
  name: 'push' | 'deployer',
  args: string[],
  cwd: string,
  env: Record<string, string> = {},
  input = '',
) {
  return new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    const child = execFile(
      process.execPath,
      ['--import', `file://${ROOT}node_modules/tsx/dist/loader.mjs`, join(ROOT, `bin/${name}.ts`), ...args],
      {
        cwd,
        env: {
          PATH: process.env.PATH ?? '/usr/bin:/bin',
          HOME: cwd,
          TMPDIR: join(dir, 'tmp'),
          ...NIX_ENV,
          ...env,
        },
      },
      (error, stdout, stderr) => resolve({ code: error ? (error.code as number) : 0, stdout, stderr }),
    );
    child.stdin?.end(input);
  });
}

/** push in-process with a context that records the settings it got and stops there. */
async function pushSettings(
  argv: string[],
  env: Record<string, string> = {},
  files: Record<string, string> = {},
) {
  const out = { stdout: '', stderr: '', settings: undefined as PushSettings | undefined };
  const io: CliIo = {
    stdout: (t) => {
      out.stdout += t;
    },
    stderr: (t) => {
      out.stderr += t;
    },
    readText: async (path) => {
      const text = files[path];
      if (text === undefined) throw Object.assign(new Error(path), { code: 'ENOENT' });
      return text;
    },
    hostname: () => 'dev',
    cwd: () => '/repo',
    env,
  };
  const stop = new Error('stop');
  const deps: PushCliDeps = {
    createContext: (settings) => {
      out.settings = settings;
      throw stop;
    },
  };
  const code = await runPush(argv, io, deps).catch((error) => {
    if (error !== stop) throw error;
    return undefined;
  });
  return { code, ...out };
}

describe('push --key-file and NIX_CACHE_KEY', () => {
  it('refuses the key itself on the command line, without showing it, before anything runs', async () => {
    const r = await pushSettings(['deploy', 'web', '--manifest', 'm', '--key-file', SECRET]);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      'push deploy: invalid settings:\n--key-file: takes a file, found what looks like the key itself (not shown): a key given on the command line is visible to every user in ps; put the key in a file, or in NIX_CACHE_KEY\nRun push deploy --help for usage.\n',
    );
    expect(r.stderr).not.toContain(SECRET.slice(8, 30));
    expect(r.settings).toBeUndefined();
  });

  it('refuses the key itself in the config file, naming the file and key', async () => {
    const r = await pushSettings(
      ['deploy', 'web', '--config', 'ci/push.json'],
      {},
      {
        '/repo/ci/push.json': JSON.stringify({ manifest: 'm', keyFile: SECRET }),
      },
    );
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(
      '/repo/ci/push.json: keyFile: takes a file, found what looks like the key itself (not shown): a config file is often committed and read by others; put the key in a file, or in NIX_CACHE_KEY',
    );
    expect(r.stderr).not.toContain(SECRET.slice(8, 30));
  });

  it.each([
    [['--key-file', './cache.sec'], {}, { type: 'file', path: '/repo/cache.sec' }],
    [['--key-file', '../keys/sk'], {}, { type: 'file', path: '/keys/sk' }],
    [['--key-file', '-'], {}, { type: 'stdin' }],
    [[], { NIX_CACHE_KEY: 'keys/sk' }, { type: 'file', path: '/repo/keys/sk' }],
    [[], { NIX_CACHE_KEY: `${SECRET}\n` }, { type: 'inline', text: SECRET }],
    [['--key-file', '/etc/sk'], { NIX_CACHE_KEY: SECRET }, { type: 'file', path: '/etc/sk' }],
  ])('%j with %j signs with %j', async (flags, env, keyFile) => {
    const r = await pushSettings(['deploy', 'web', '--manifest', 'm', ...flags], env);
    expect(r.stderr).toBe('');
    expect(r.settings?.keyFile).toEqual(keyFile);
  });

  it('resolves relative locations and directories against the working directory, config values against the file', async () => {
    const flags = await pushSettings([
      'deploy',
      'web',
      '--manifest',
      'bucket',
      '--cache',
      '../cache',
      '--spec-dir',
      'svc',
    ]);
    expect(flags.settings).toMatchObject({ manifest: '/repo/bucket', cache: '/cache', specDir: '/repo/svc' });
    const config = await pushSettings(
      ['deploy', 'web'],
      { PUSH_CONFIG: 'ci/push.json' },
      {
        '/repo/ci/push.json': JSON.stringify({
          manifest: 'bucket/manifest.json',
          cache: 's3://cache-bucket?region=x',
          keyFile: 'sk',
          specDir: '.',
        }),
      },
    );
    expect(config.settings).toMatchObject({
      manifest: '/repo/ci/bucket/manifest.json',
      cache: 's3://cache-bucket?region=x',
      keyFile: { type: 'file', path: '/repo/ci/sk' },
      specDir: '/repo/ci',
    });
    const defaults = await pushSettings(['deploy', 'web', '--manifest', 'file:///m']);
    expect(defaults.settings).toMatchObject({ manifest: 'file:///m', specDir: '/repo/deploy' });
  });

  it('refuses a relative file:// URL and an unknown location parameter as usage errors naming the flag', async () => {
    const r = await pushSettings(['init', '--manifest', 'file:m.json', '--cache', 's3://bucket?regoin=x']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--manifest: location "file:m.json": expected file:///absolute/path');
    expect(r.stderr).toContain('--cache: location "s3://bucket?...": unknown parameter "regoin"');
  });
});

/**
 * The bins for real, from a working directory other than the repository: push signs with real Nix into a
 * file:// cache and writes a manifest directory; deployer reads a config file whose paths are relative to it.
 */
describe('relative paths with the real bins', () => {
  let storePath: string;

  beforeAll(() => {
    requireNix();
    dir = mkdtempSync(join(tmpdir(), 'omni-cli-paths-'));
    for (const sub of ['work/deploy', 'other', 'etc', 'manifests', 'tmp'])
      mkdirSync(join(dir, sub), { recursive: true });
    execFileSync(
      'nix-store',
      ['--generate-binary-cache-key', 'cli-paths-1', join(dir, 'work/cache.sec'), join(dir, 'pk')],
      {
        env: { ...process.env, ...NIX_ENV },
      },
    );
    writeFileSync(
      join(dir, 'work/deploy/web.json'),
      JSON.stringify({ name: 'web', hosts: ['biz'], exec: { command: 'svc' } }),
    );
    [storePath] = buildClosures('cli-paths', ['1']) as [string];
  }, 120_000);

  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const narinfo = (cache: string) => {
    const hash = storePath.slice('/nix/store/'.length, '/nix/store/'.length + 32);
    return readFileSync(join(dir, cache, `${hash}.narinfo`), 'utf8');
  };
  /** The manifest push wrote: signed, so its payload is the manifest. */
  const manifest = (bucket: string) => {
    const signed = JSON.parse(readFileSync(join(dir, bucket, 'manifest.json'), 'utf8'));
    expect(signed.signature.keyName).toBe('cli-paths-1');
    return JSON.parse(signed.payload);
  };

  it('push deploy web --key-file ./cache.sec with relative --manifest and --cache', async () => {
    const r = await bin(
      'push',
      [
        'deploy',
        'web',
        '--key-file',
        './cache.sec',
        '--store-path',
        storePath,
        '--manifest',
        '../bucket-a',
        '--cache',
        '../cache-a',
        '--revision',
        'r1',
      ],
      join(dir, 'work'),
    );
    expect(r.stderr).not.toContain('error');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`uploaded `);
    expect(narinfo('cache-a')).toMatch(/\nSig: cli-paths-1:/);
    expect(manifest('bucket-a').services[0]).toMatchObject({
      name: 'web',
      artifact: { storePath },
      revision: 'r1',
    });
  }, 120_000);

  it('push deploy with the key in NIX_CACHE_KEY, and with --key-file - on standard input', async () => {
    const key = readFileSync(join(dir, 'work/cache.sec'), 'utf8').trim();
    const args = (n: string) => [
      'deploy',
      'web',
      '--store-path',
      storePath,
      '--manifest',
      `../bucket-${n}`,
      '--cache',
      `../cache-${n}`,
      '--revision',
      n,
    ];
    const env = await bin('push', args('b'), join(dir, 'work'), { NIX_CACHE_KEY: key });
    expect(env.code, env.stderr).toBe(0);
    expect(narinfo('cache-b')).toMatch(/\nSig: cli-paths-1:/);
    const stdin = await bin('push', [...args('c'), '--key-file', '-'], join(dir, 'work'), {}, `${key}\n`);
    expect(stdin.code, stdin.stderr).toBe(0);
    expect(narinfo('cache-c')).toMatch(/\nSig: cli-paths-1:/);
    for (const r of [env, stdin]) expect(`${r.stdout}${r.stderr}`).not.toContain(key.slice(12, 40));
    // The temporary key file is gone (the bins' TMPDIR is this test's own).
    expect(readdirSync(join(dir, 'tmp')).filter((f) => f.startsWith('omni-push-'))).toEqual([]);
  }, 120_000);

  it('a missing key file, or a file without a key, fails before the build and never shows the file', async () => {
    writeFileSync(join(dir, 'work/notakey'), 'hunter2-not-a-key\n');
    const built = join(dir, 'built');
    const args = (key: string) => [
      'deploy',
      'web',
      '--key-file',
      key,
      '--manifest',
      '../bucket-e',
      '--build',
      `touch ${built}; echo {target}`,
    ];
    const missing = await bin('push', args('./missing.sec'), join(dir, 'work'));
    expect(missing).toMatchObject({
      code: 2,
      stderr: `push: cannot read ${join(dir, 'work/missing.sec')}: ENOENT\n`,
    });
    const wrong = await bin('push', args('notakey'), join(dir, 'work'));
    expect(wrong).toMatchObject({
      code: 2,
      stderr: `push deploy: ${join(dir, 'work/notakey')} does not hold a Nix secret key (name:base64, as nix-store --generate-binary-cache-key writes it)\nRun push deploy --help for usage.\n`,
    });
    expect(existsSync(built)).toBe(false);
  });

  it('push --config ../work/push.json from another directory: paths in it are relative to it', async () => {
    writeFileSync(
      join(dir, 'work/push.json'),
      JSON.stringify({
        manifest: '../bucket-d',
        cache: '../cache-d',
        keyFile: 'cache.sec',
        specDir: 'deploy',
      }),
    );
    const r = await bin(
      'push',
      ['deploy', 'web', '--config', '../work/push.json', '--store-path', storePath, '--revision', 'd'],
      join(dir, 'other'),
    );
    expect(r.code, r.stderr).toBe(0);
    expect(manifest('bucket-d').services[0]).toMatchObject({ name: 'web', revision: 'd' });
  }, 120_000);

  it('deployer --config etc/deployer.json: the manifest and state directory in it are relative to etc/', async () => {
    writeFileSync(
      join(dir, 'manifests/manifest.json'),
      JSON.stringify({
        version: 1,
        generation: '2025-01-15T12:00:00Z',
        services: [
          {
            name: 'web',
            hosts: ['biz'],
            exec: { command: 'svc' },
            artifact: { type: 'nix-closure', storePath },
          },
        ],
      }),
    );
    writeFileSync(
      join(dir, 'etc/deployer.json'),
      JSON.stringify({ manifest: '../manifests/manifest.json', stateDir: 'state' }),
    );
    const plan = await bin(
      'deployer',
      ['plan', '--config', 'etc/deployer.json', '--host', 'biz', '--units-out', 'units'],
      dir,
    );
    expect(plan.code, plan.stderr).toBe(0);
    expect(plan.stdout).toContain('host biz, manifest generation 2025-01-15T12:00:00Z: 1 to install');
    expect(readdirSync(join(dir, 'units'))).toEqual(['deploy-web.service']);
    const status = await bin('deployer', ['status', '--config', 'etc/deployer.json'], dir);
    expect(status).toMatchObject({
      code: 1,
      stderr: `no deployer state in ${join(dir, 'etc/state')}: nothing deployed on this host yet\n`,
    });
    const env = await bin('deployer', ['status'], join(dir, 'etc'), { DEPLOYER_STATE_DIR: 'state' });
    expect(env.stderr).toBe(
      `no deployer state in ${join(dir, 'etc/state')}: nothing deployed on this host yet\n`,
    );
  }, 120_000);
});
