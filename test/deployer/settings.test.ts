import { describe, expect, it } from 'vitest';
import { resolveSettings, type SettingsSources } from '../../src/deployer/settings.js';
import { DEFAULT_HOST_POLICY } from '../../src/policy/index.js';
import { formatDuration, parseDuration } from '../../src/runtime/duration.js';

const KEY = 'cache-1:2oVYmCfS6Vd0z2eA1+Kq5pFfD0x3cN8k9YrJ8w7T6Qs=';
const KEY2 = 'cache-2:9oVYmCfS6Vd0z2eA1+Kq5pFfD0x3cN8k9YrJ8w7T6Qs=';
const base = (over: Partial<SettingsSources> = {}): SettingsSources => ({
  flags: { manifest: 'file:///srv/manifest.json', 'trusted-public-key': [KEY] },
  env: {},
  config: undefined,
  hostname: 'biz',
  ...over,
});

describe('parseDuration', () => {
  it.each([
    ['500ms', 500],
    ['5s', 5000],
    ['1m30s', 90_000],
    ['2h', 7_200_000],
    ['5', 5000],
    ['0.5', 500],
    ['1.5s', 1500],
  ])('%s → %i ms', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
    expect(parseDuration(formatDuration(ms))).toBe(ms);
  });
  it.each(['', '-5s', '5 s', '5d', 's', '1m-2s', '1e3'])('refuses %j', (text) => {
    expect(parseDuration(text)).toBeUndefined();
  });
});

describe('resolveSettings', () => {
  it('applies defaults and takes the host from the machine', () => {
    const r = resolveSettings(base());
    expect(r.ok).toBe(true);
    if (r.ok) {
      expect(r.settings).toMatchObject({
        manifest: 'file:///srv/manifest.json',
        host: 'biz',
        stateDir: '/var/lib/biz-deployer',
        unitsDir: '/run/systemd/system',
        gcrootsDir: '/nix/var/nix/gcroots/biz',
        secretsDir: '/var/lib/biz-secrets',
        keep: 5,
        healthIntervalMs: 1000,
        healthTimeoutMs: 5000,
        deployTimeoutMs: 30_000,
        intervalMs: 300_000,
        trustedPublicKeys: [KEY],
        insecureAllowUnsigned: false,
      });
    }
  });

  it('takes flags over environment over config file', () => {
    const r = resolveSettings(
      base({
        flags: { manifest: 'file:///a.json', keep: '3', 'trusted-public-key': [] },
        env: {
          DEPLOYER_KEEP: '4',
          DEPLOYER_STATE_DIR: '/env/state',
          DEPLOYER_TRUSTED_PUBLIC_KEYS: `${KEY} ${KEY2}`,
        },
        config: { keep: 9, stateDir: '/cfg/state', unitsDir: '/cfg/units', deployTimeoutMs: '1m' },
      }),
    );
    expect(r.ok && r.settings).toMatchObject({
      keep: 3,
      stateDir: '/env/state',
      unitsDir: '/cfg/units',
      deployTimeoutMs: 60_000,
      trustedPublicKeys: [KEY, KEY2],
    });
  });

  it('finds the Caddy server by default and creates one on :443 when there is none to use', () => {
    const r = resolveSettings(base());
    expect(r.ok && r.settings).toMatchObject({ caddyServer: 'auto', caddyListen: [':443'] });
  });

  it.each([
    [{ flags: { 'caddy-listen': [':80', '[::]:80'] } }, [':80', '[::]:80']],
    [{ env: { DEPLOYER_CADDY_LISTEN: ':80, 0.0.0.0:8443' } }, [':80', '0.0.0.0:8443']],
    [{ config: { caddyListen: ['tcp/:8080'] } }, ['tcp/:8080']],
  ])('takes listen addresses from flag, environment or config file: %j', (over, listen) => {
    const sources = base();
    const r = resolveSettings({
      ...sources,
      ...over,
      flags: { ...sources.flags, ...((over as { flags?: object }).flags ?? {}) },
    });
    expect(r.ok && r.settings.caddyListen).toEqual(listen);
  });

  it.each([[['unix//run/x.sock']], [['443']], [['example.com']], [[]], ['']])(
    'refuses a listen address without a port: %j',
    (caddyListen) => {
      const r = resolveSettings(base({ config: { caddyListen } }));
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.issues.map((i) => i.path)).toEqual([expect.stringMatching(/caddy-?[lL]isten/)]);
    },
  );

  it('refuses to run without a trusted key unless told so explicitly', () => {
    const r = resolveSettings(base({ flags: { manifest: 'file:///a.json' } }));
    expect(r).toEqual({ ok: false, issues: [expect.objectContaining({ path: '--trusted-public-key' })] });
    expect(resolveSettings(base({ flags: { manifest: 'x', 'insecure-allow-unsigned': true } })).ok).toBe(
      true,
    );
  });

  it('reports every bad value at once, naming its source', () => {
    const r = resolveSettings(
      base({
        flags: { manifest: 'x', keep: 'lots', 'trusted-public-key': ['not-a-key'] },
        env: { DEPLOYER_STATE_DIR: '../etc', DEPLOYER_HOST: 'bad_host' },
        config: { deployTimeoutMs: '5 minutes', stateDir: '/ok', bogus: 1 },
        configName: '/etc/omni-deploy/deployer.json',
      }),
    );
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.issues.map((i) => i.path)).toEqual([
        '/etc/omni-deploy/deployer.json: bogus',
        '--trusted-public-key',
        'DEPLOYER_HOST',
        'DEPLOYER_STATE_DIR',
        '--keep',
        '/etc/omni-deploy/deployer.json: deployTimeoutMs',
      ]);
      expect(r.issues.find((i) => i.path === 'DEPLOYER_STATE_DIR')?.message).toBe(
        'expected an absolute path without "..", found "../etc"',
      );
    }
  });

  it('requires a manifest location and refuses control characters', () => {
    const r = resolveSettings(
      base({ flags: { 'trusted-public-key': [KEY], 'on-success': 'echo\nrm -rf /' } }),
    );
    expect(r.ok ? [] : r.issues.map((i) => i.path)).toEqual(['--manifest', '--on-success']);
  });

  it('refuses a config file that is not an object', () => {
    expect(resolveSettings(base({ config: [1] })).ok).toBe(false);
  });
});

describe('resolveSettings bounds', () => {
  it.each([
    [{ keep: '1' }, '--keep', 'the version a rollback returns to must stay'],
    [{ interval: '0' }, '--interval', 'expected at least 1000 ms'],
    [{ 'health-timeout': '0' }, '--health-timeout', 'would wait forever'],
    [{ 'health-settle': '40s' }, '--health-settle', 'every deploy would be rolled back'],
  ])('refuses %j', (flags, path, fragment) => {
    const r = resolveSettings(base({ flags: { ...base().flags, ...flags } }));
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.issues.find((i) => i.path === path)?.message).toContain(fragment);
  });

  it('reads the host policy from the config file: the defaults without one, every problem with its path', () => {
    const none = resolveSettings(base());
    expect(none.ok && none.settings.policy).toBe(DEFAULT_HOST_POLICY);
    const set = resolveSettings(
      base({ config: { keep: 3, policy: { users: ['pil-web'], ports: { min: 8000, max: 8999 } } } }),
    );
    expect(set.ok && set.settings.policy).toMatchObject({
      users: ['pil-web'],
      ports: { min: 8000, max: 8999 },
      wildcardDomains: false,
    });
    const bad = resolveSettings(
      base({
        configName: 'deployer.json',
        config: { kepp: 3, policy: { allowGroups: ['root'], wildcards: true } },
      }),
    );
    expect(bad.ok ? [] : bad.issues.map((i) => i.path)).toEqual([
      'deployer.json: kepp',
      'deployer.json: policy.wildcards',
    ]);
    expect(bad.ok ? '' : bad.issues[1]?.message).toMatch(/^unknown key "wildcards"; allowed keys: /);
    const root = resolveSettings(
      base({ configName: 'deployer.json', config: { policy: { allowGroups: ['root'] } } }),
    );
    expect(root.ok ? [] : root.issues).toEqual([
      { path: 'deployer.json: policy.allowGroups[0]', message: 'gid 0 (root) can never be allowed' },
    ]);
  });
});
