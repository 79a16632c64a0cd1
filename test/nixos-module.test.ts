/**
 * The NixOS module (examples/nixos/deployer.nix) through what runs without NixOS or nixpkgs: it parses; its
 * evaluation under nixpkgs' module system (examples/nixos/eval, recorded in snapshot.json by
 * scripts/eval-nixos-module.sh) is current; the deployer accepts the config it generates; systemd-analyze
 * verifies the units it generates; Caddy adapts the Caddyfile lines it adds.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveSettings } from '../src/deployer/settings.js';
import { requireCaddy } from './caddy/caddy-process.js';
import { requireBinary } from './support/binaries.js';
import {
  type NixosSnapshot,
  type NixosUnit,
  readSnapshot,
  renderNixosUnit,
  renderSection,
  replaceStorePaths,
} from './support/nixos-eval.js';

const root = new URL('../', import.meta.url).pathname;
const nixos = join(root, 'examples/nixos');
const REFRESH = 'run scripts/eval-nixos-module.sh <nixpkgs.lib checkout> (docs/operations.md, NixOS)';
const NIX_ENV = {
  ...process.env,
  NIX_CONFIG: 'experimental-features = nix-command\nbuild-users-group =\nsubstituters =',
};

const snapshot = readSnapshot();
const { biz, 'without-caddy': withoutCaddy } = snapshot.hosts;
const dir = mkdtempSync(join(tmpdir(), 'omni-nixos-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

beforeAll(() => {
  requireBinary('nix-instantiate', 'nix-bin');
  requireBinary('systemd-analyze', 'systemd');
  requireCaddy();
});

const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

describe('the NixOS module', () => {
  it('parses, with its package expression and its evaluation (nix-instantiate --parse)', () => {
    for (const file of ['deployer.nix', 'package.nix', ...Object.keys(snapshot.sources)])
      expect(() =>
        execFileSync('nix-instantiate', ['--parse', join(nixos, file)], { stdio: 'pipe' }),
      ).not.toThrow();
  });

  it('has a current evaluation snapshot: made from these very files, and re-made equal when NIXPKGS_LIB names a nixpkgs lib', () => {
    expect(Object.keys(snapshot.sources).sort()).toEqual(
      ['deployer.nix', 'eval/default.nix', 'eval/host.nix', 'eval/stubs.nix', 'package.nix'].sort(),
    );
    for (const [file, hash] of Object.entries(snapshot.sources))
      expect(sha256(join(nixos, file)), `${file} changed since the snapshot; ${REFRESH}`).toBe(hash);
    expect(snapshot.lib.rev, 'the nixpkgs.lib revision the snapshot was made with').toMatch(/^[0-9a-f]{40}$/);
    // Without nixpkgs' lib (CI) the hashes above are the check; with it, the evaluation itself is repeated.
    const lib = process.env.NIXPKGS_LIB;
    if (lib) {
      const libDir = existsSync(join(lib, 'lib/default.nix')) ? join(lib, 'lib') : lib;
      const out = execFileSync(
        'nix-instantiate',
        [
          '--eval',
          '--strict',
          '--json',
          '--read-write-mode',
          join(nixos, 'eval'),
          '--arg',
          'lib',
          `import ${libDir}`,
          '--argstr',
          'libRev',
          snapshot.lib.rev,
        ],
        { encoding: 'utf8', env: NIX_ENV },
      );
      const fresh = JSON.parse(out) as NixosSnapshot;
      expect(fresh.lib.version, `NIXPKGS_LIB is another nixpkgs.lib than the snapshot's; ${REFRESH}`).toBe(
        snapshot.lib.version,
      );
      expect(fresh, `the snapshot is stale; ${REFRESH}`).toEqual(snapshot);
    }
  });

  it('names the nixpkgs.lib revision of its evaluation in docs/operations.md', () => {
    const docs = readFileSync(join(root, 'docs/operations.md'), 'utf8');
    expect(docs.includes(snapshot.lib.rev), `docs/operations.md should name ${snapshot.lib.rev}`).toBe(true);
  });

  it('checks package.nix as far as lib alone goes: its sources and arguments', () => {
    expect(snapshot.package).toEqual({
      pname: 'omni-deploy',
      mainProgram: 'deployer',
      npmBuildScript: 'build',
      npmDepsHash: 'sha256-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=',
      versionFromPackageJson: true,
    });
  });
});

describe('what the module generates', () => {
  it.each([
    ['biz', biz],
    ['without-caddy', withoutCaddy],
  ] as const)(
    '%s: the deployer accepts its config file (every setting resolved, no unknown key)',
    (_, host) => {
      const r = resolveSettings({
        flags: {},
        env: {},
        config: host.deployerConfig,
        configName: '/etc/omni-deploy/deployer.json',
        hostname: 'nixos',
      });
      expect(r.ok ? [] : r.issues).toEqual([]);
      if (!r.ok) return;
      expect(r.settings).toMatchObject({
        host: 'biz',
        stateDir: '/var/lib/biz-deployer',
        secretsDir: '/var/lib/biz-secrets',
        unitsDir: '/run/systemd/system',
        caddyServer: 'omni',
        deployTimeoutMs: 30_000,
        keep: 5,
      });
      expect(r.settings.caddyAdmin).toBe(host === biz ? 'unix//run/caddy/admin.sock' : 'off');
      // extraSettings passes the host policy through (eval/host.nix).
      expect(r.settings.policy).toMatchObject({
        users: ['pil-web', 'pil-worker'],
        allowedUnits: ['postgresql.service'],
      });
    },
  );

  it('the real deployer reads that config file (deployer plan --config)', () => {
    const config = join(dir, 'deployer.json');
    writeFileSync(config, JSON.stringify(biz.deployerConfig));
    const state = join(dir, 'state');
    const r = spawnSync(
      process.execPath,
      [
        '--import',
        'tsx',
        join(root, 'bin/deployer.ts'),
        'plan',
        '--config',
        config,
        '--manifest',
        join(root, 'examples/manifest.json'),
        '--state-dir',
        state,
        // The example manifest is not signed (by the config's example key or any other): not the point here.
        '--insecure-allow-unsigned-manifest',
      ],
      { encoding: 'utf8', cwd: root },
    );
    expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 0, stderr: '' });
    expect(r.stdout).toContain('deploy-podcastitlater-web.service');
  });

  it('runs omni-deployer.service from omni-deployer.timer, reading /etc/omni-deploy/deployer.json', () => {
    const service = biz.services['omni-deployer'];
    expect(service?.serviceConfig).toMatchObject({
      Type: 'oneshot',
      ExecStart: expect.stringMatching(
        /^\/nix\/store\/\w{32}-omni-deploy-0\.1\.0\/bin\/deployer apply --config \/etc\/omni-deploy\/deployer\.json$/,
      ),
      EnvironmentFile: '/etc/omni-deploy/deployer.env',
    });
    expect(service?.after).toContain('caddy.service');
    expect(withoutCaddy.services['omni-deployer']?.after).not.toContain('caddy.service');
    expect(Object.keys(biz.timers)).toEqual(['omni-deployer']);
    expect(biz.tmpfiles).toContain('d /var/lib/biz-secrets 0700 root root -');
  });

  it('gives Caddy its admin socket directory, tcp_migrate_req, a tick after it starts or reloads, and a named server', () => {
    const caddy = biz.services.caddy?.serviceConfig ?? {};
    const tick = expect.stringMatching(
      /^\+\/nix\/store\/\w{32}-systemd-[^/]+\/bin\/systemctl start --no-block omni-deployer\.service$/,
    );
    expect(caddy).toEqual({
      RuntimeDirectory: 'caddy',
      RuntimeDirectoryMode: '0750',
      ExecStartPost: [tick],
      // NixOS's own command lines (eval/host.nix stands in for its caddy module) first, then the tick.
      ExecStart: ['', expect.stringContaining('caddy run')],
      ExecReload: ['', expect.stringContaining('caddy reload'), tick],
    });
    expect(biz.sysctl).toEqual({ 'net.ipv4.tcp_migrate_req': 1 });
    expect(biz.caddy).toMatchObject({ enable: true, resume: true });
    expect(biz.caddy.globalConfig).toBe('admin unix//run/caddy/admin.sock\nservers :80 {\n  name omni\n}\n');
    expect(biz.caddy.extraConfig).toBe(':80 {\n}\n');
    // Without Caddy: no Caddy settings at all (the host's own command lines are all there is).
    expect(withoutCaddy.services.caddy?.serviceConfig).toEqual({
      ExecStart: ['', expect.stringContaining('caddy run')],
      ExecReload: ['', expect.stringContaining('caddy reload')],
    });
    expect(withoutCaddy.sysctl).toEqual({});
    expect(withoutCaddy.caddy.enable).toBe(false);
  });

  it('passes systemd-analyze verify: omni-deployer.service, omni-deployer.timer, and its drop-in on a real caddy.service', () => {
    const units = join(dir, 'units');
    mkdirSync(join(units, 'caddy.service.d'), { recursive: true });
    const store = join(dir, 'store');
    const write = (name: string, text: string) =>
      writeFileSync(join(units, name), replaceStorePaths(text, stubStore(store)));
    write('omni-deployer.service', renderNixosUnit(biz.services['omni-deployer'] as NixosUnit, 'Service'));
    write('omni-deployer.timer', renderNixosUnit(biz.timers['omni-deployer'] as NixosUnit, 'Timer'));
    // NixOS puts the module's lines in an override of the caddy package's own unit; Debian's unit stands in.
    const packaged = ['/lib/systemd/system/caddy.service', '/usr/lib/systemd/system/caddy.service'].find(
      existsSync,
    );
    if (!packaged) throw new Error('caddy.service not found: install the Debian package caddy');
    writeFileSync(join(units, 'caddy.service'), readFileSync(packaged, 'utf8'));
    const { serviceConfig = {} } = biz.services.caddy as NixosUnit;
    write('caddy.service.d/overrides.conf', `[Service]\n${renderSection(serviceConfig)}`);
    const files = ['omni-deployer.service', 'omni-deployer.timer', 'caddy.service'].map((f) =>
      join(units, f),
    );
    const r = spawnSync('systemd-analyze', ['verify', '--man=no', ...files], { encoding: 'utf8' });
    expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 0, stderr: '' });
    // The drop-in really was read: the same check fails when the tick's program does not exist.
    rmSync(store, { recursive: true });
    const broken = spawnSync('systemd-analyze', ['verify', '--man=no', join(units, 'caddy.service')], {
      encoding: 'utf8',
    });
    expect(broken.stderr).toMatch(/systemctl is not executable/);
  });

  it("Caddy adapts the Caddyfile it adds (Debian's 2.6.2 without the server name, which needs 2.6.3): the admin socket and a server on the listen address", () => {
    // NixOS's caddy module writes `{ globalConfig }` then extraConfig; `servers <listen> { name }` arrived in
    // Caddy 2.6.3 (caddyserver/caddy#5323), so it is left out for this older Caddy.
    const global = biz.caddy.globalConfig.replace(/servers :80 \{\n {2}name omni\n\}\n/, '');
    expect(global).toBe('admin unix//run/caddy/admin.sock\n');
    const file = join(dir, 'Caddyfile');
    writeFileSync(file, `{\n${global}}\n${biz.caddy.extraConfig}`);
    const out = execFileSync('caddy', ['adapt', '--config', file, '--adapter', 'caddyfile'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    expect(JSON.parse(out)).toEqual({
      admin: { listen: 'unix//run/caddy/admin.sock' },
      apps: { http: { servers: { srv0: { listen: [':80'] } } } },
    });
  });
});

/**
 * Stands in for the stub packages' store paths: `/nix/store/<hash>-<name>/bin/<program>` becomes
 * `<dir>/<name>/bin/<program>`, a link to this machine's program of that name (the deployer: node), so
 * systemd-analyze finds every command it checks.
 */
function stubStore(dir: string) {
  return (name: string, program?: string): string => {
    const local = join(dir, name);
    mkdirSync(join(local, 'bin'), { recursive: true });
    if (program === undefined) return local;
    const path = join(local, 'bin', program);
    const found = ['/usr/bin', '/usr/sbin', '/bin'].map((d) => join(d, program)).find(existsSync);
    if (!existsSync(path)) symlinkSync(found ?? process.execPath, path);
    return path;
  };
}
