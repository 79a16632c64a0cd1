import { describe, expect, it } from 'vitest';
import { convertOption, type OptionSpec, resolveOptions } from '../src/options.js';

const spec = (over: Partial<OptionSpec> & Pick<OptionSpec, 'key' | 'kind'>): OptionSpec => ({
  flag: over.key,
  env: `X_${over.key.toUpperCase()}`,
  description: 'a setting',
  ...over,
});
const SPECS = [
  spec({ key: 'dir', kind: 'path', default: 'data' }),
  spec({ key: 'where', kind: 'location' }),
  spec({ key: 'count', kind: 'count', default: 2 }),
];
const resolve = (sources: Partial<Parameters<typeof resolveOptions>[1]>) =>
  resolveOptions(SPECS, { flags: {}, env: {}, config: undefined, ...sources });

describe('resolveOptions: relative paths', () => {
  it.each([
    ['a flag, against the working directory', { flags: { dir: 'state' } }, '/work/state'],
    ['the environment, against the working directory', { env: { X_DIR: '../state' } }, '/state'],
    ['the config file, against its directory', { config: { dir: 'state' } }, '/etc/app/state'],
    ['a relative default, against the working directory', {}, '/work/data'],
    ['an absolute path, as it is', { config: { dir: '/srv/state' } }, '/srv/state'],
  ])('%s', (_name, sources, dir) => {
    const r = resolve({ cwd: '/work', configDir: '/etc/app', ...sources });
    expect(r.ok && r.values.dir).toBe(dir);
  });

  it('refuses relative paths without a directory to resolve them against (library callers)', () => {
    expect(resolve({ flags: { dir: 'state' } })).toEqual({
      ok: false,
      issues: [{ path: '--dir', message: 'expected an absolute path without "..", found "state"' }],
    });
  });

  it('refuses what does not resolve to plain segments, naming the source and the resolved path', () => {
    const r = resolve({ cwd: '/work', configDir: '/etc/app', config: { dir: 'my state' } });
    expect(r.ok ? [] : r.issues).toEqual([
      {
        path: 'config: dir',
        message:
          'expected a path of letters, digits and . _ + - (relative to the config file\'s directory), found "my state" (/etc/app/my state)',
      },
    ]);
    expect(resolve({ cwd: '/work', flags: { dir: '/a/../b' } }).ok).toBe(false);
  });

  it('resolves locations that are paths, keeps URLs and - as they are, and checks URLs now', () => {
    const at = (where: string) => resolve({ cwd: '/work', configDir: '/etc/app', flags: { where } });
    expect(at('m.json')).toMatchObject({ values: { where: '/work/m.json' } });
    expect(at('-')).toMatchObject({ values: { where: '-' } });
    expect(at('s3://bucket/m.json?region=eu-west-1')).toMatchObject({
      values: { where: 's3://bucket/m.json?region=eu-west-1' },
    });
    expect(resolve({ cwd: '/work', configDir: '/etc/app', config: { where: 'm.json' } })).toMatchObject({
      values: { where: '/etc/app/m.json' },
    });
    expect(at('file:relative')).toMatchObject({ ok: false });
    expect(at('http://example.com/m.json')).toMatchObject({ ok: false });
  });
});

describe('resolveOptions: a command reads only its settings', () => {
  it('the others take their defaults, ignoring flags, environment and config values, but config keys are checked', () => {
    const r = resolve({
      read: ['dir'],
      cwd: '/w',
      env: { X_COUNT: 'lots' },
      config: { count: 9, dir: '/d' },
    });
    expect(r).toEqual({ ok: true, values: { dir: '/d', where: undefined, count: 2 } });
    expect(resolve({ read: ['dir'], config: { typo: 1 } }).ok).toBe(false);
  });
});

describe('convertOption: key-file', () => {
  const KEY = `k-1:${Buffer.alloc(64, 1).toString('base64')}`;
  const at = (from: 'flag' | 'env' | 'config') => ({
    from,
    where: from,
    base: '/work',
    baseName: 'the working directory',
    env: 'NIX_CACHE_KEY',
  });
  it.each([
    ['flag', 'sk', { ok: true, value: { type: 'file', path: '/work/sk' } }],
    ['flag', '-', { ok: true, value: { type: 'stdin' } }],
    ['env', KEY, { ok: true, value: { type: 'inline', text: KEY } }],
    ['env', '/keys/sk', { ok: true, value: { type: 'file', path: '/keys/sk' } }],
  ] as const)('from a %s, %j', (from, raw, result) => {
    expect(convertOption('key-file', raw, at(from))).toEqual(result);
  });

  it.each(['flag', 'config'] as const)('refuses the key itself from a %s, without echoing it', (from) => {
    const r = convertOption('key-file', KEY, at(from));
    expect(r.ok).toBe(false);
    expect(!r.ok && r.message).toMatch(
      /^takes a file, found what looks like the key itself \(not shown\): .+; put the key in a file, or in NIX_CACHE_KEY$/,
    );
    expect(JSON.stringify(r)).not.toContain(KEY.slice(4));
  });
});
