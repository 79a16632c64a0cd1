/**
 * The NixOS module (examples/nixos/deployer.nix) through what runs without NixOS or nixpkgs: it parses; its
 * evaluation under nixpkgs' module system (examples/nixos/eval, recorded in snapshot.json by
 * scripts/eval-nixos-module.sh) is current; the deployer accepts the config it generates; systemd-analyze
 * verifies the units it generates; Caddy's start line writes the NixOS Caddyfile with the deployer's routes.
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
import { emptyState } from '../src/deployer/state.js';
import { requireCaddy } from './caddy/caddy-process.js';
import { requireBinary } from './support/binaries.js';
import {
  type NixosSnapshot,
  type NixosUnit,
  readSnapshot,
  renderNixosUnit,
  renderSection,
  replaceStorePaths,
  SYSTEM_BIN,
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
        caddyServer: 'auto',
        caddyListen: [':443'],
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

  it("gives Caddy its admin socket directory, tcp_migrate_req, and a start and reload from its config with the deployer's routes", () => {
    const caddy = biz.services.caddy?.serviceConfig ?? {};
    const write = expect.stringMatching(
      /^\+\/run\/current-system\/sw\/bin\/deployer caddy-config --config \/etc\/omni-deploy\/deployer\.json --caddy-bin \/nix\/store\/\w{32}-caddy-2\.10\.2\/bin\/caddy --adapter caddyfile \/etc\/caddy\/caddy_config --out \/run\/caddy-omni\/caddy\.json$/,
    );
    const caddyBin = expect.stringMatching(/^\/nix\/store\/\w{32}-caddy-2\.10\.2\/bin\/caddy /);
    expect(caddy).toEqual({
      RuntimeDirectory: ['caddy', 'caddy-omni'],
      RuntimeDirectoryMode: '0750',
      ExecStartPre: [write],
      // NixOS's own command lines (eval/host.nix stands in for its caddy module) replaced: Caddy loads the
      // written config, from the start and at every reload.
      ExecStart: ['', caddyBin],
      ExecReload: ['', write, caddyBin],
    });
    expect(caddy.ExecStart).toEqual([
      '',
      expect.stringMatching(/ run --config \/run\/caddy-omni\/caddy\.json$/),
    ]);
    expect((caddy.ExecReload as string[])[2]).toMatch(
      / reload --config \/run\/caddy-omni\/caddy\.json --force$/,
    );
    // The deployer by the system profile's path: a new deployer package leaves caddy.service's text alone
    // (no Caddy restart at the switch). The package is in the system profile for that, and for use by hand.
    expect(biz.systemPackages).toEqual([expect.stringMatching(/^\/nix\/store\/\w{32}-omni-deploy-0\.1\.0$/)]);
    expect(biz.sysctl).toEqual({ 'net.ipv4.tcp_migrate_req': 1 });
    expect(biz.caddy).toMatchObject({ enable: true, resume: false, adapter: 'caddyfile' });
    // Only the admin socket: the deployer finds or creates its server (caddyServer auto, caddyListen).
    expect(biz.caddy.globalConfig).toBe('admin unix//run/caddy/admin.sock\n');
    expect(biz.caddy.extraConfig).toBe('');
    // A JSON config (services.caddy.settings: NixOS's adapter is null) is adapted as JSON.
    expect(snapshot.variants.jsonCaddyConfig).toEqual([
      expect.stringContaining(' --adapter json /etc/caddy/caddy_config '),
    ]);
    // resume would start Caddy from its autosave instead of the written config: refused at evaluation.
    expect(snapshot.variants.resume).toBe('refused');
    // NixOS restarts Caddy instead of reloading it (enableReload = false): no reload lines at all.
    expect(snapshot.variants.withoutReload).toEqual(['']);
    // Without Caddy: no Caddy settings at all (the host's own command lines are all there is).
    expect(withoutCaddy.services.caddy?.serviceConfig).toEqual({
      ExecStart: ['', expect.stringContaining('caddy run --config /etc/caddy/caddy_config')],
      ExecReload: ['', expect.stringContaining('caddy reload --config /etc/caddy/caddy_config')],
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
    // The system profile's deployer is the package's, as NixOS links it.
    const profile = `${SYSTEM_BIN}deployer`;
    const [packagePath = ''] = biz.systemPackages;
    write(
      'caddy.service.d/overrides.conf',
      `[Service]\n${renderSection(serviceConfig)}`.replaceAll(profile, `${packagePath}/bin/deployer`),
    );
    const files = ['omni-deployer.service', 'omni-deployer.timer', 'caddy.service'].map((f) =>
      join(units, f),
    );
    const r = spawnSync('systemd-analyze', ['verify', '--man=no', ...files], { encoding: 'utf8' });
    expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 0, stderr: '' });
    // The drop-in really was read: the same check fails when the programs it names do not exist.
    rmSync(store, { recursive: true });
    const broken = spawnSync('systemd-analyze', ['verify', '--man=no', join(units, 'caddy.service')], {
      encoding: 'utf8',
    });
    expect(broken.stderr).toMatch(/deployer is not executable/);
  });

  it("Caddy's start line writes the NixOS Caddyfile with the deployer's routes: a server omni on :443 (Caddy 2.6.2, the real deployer)", () => {
    // NixOS's caddy module writes `{ globalConfig }` then extraConfig to /etc/caddy/caddy_config.
    const run = join(dir, 'run-caddy-omni');
    const state = join(dir, 'caddy-state');
    mkdirSync(run);
    mkdirSync(state);
    writeFileSync(join(dir, 'caddy_config'), `{\n${biz.caddy.globalConfig}}\n${biz.caddy.extraConfig}`);
    writeFileSync(join(state, 'state.json'), JSON.stringify(stateWithWeb()));
    writeFileSync(
      join(dir, 'caddy-deployer.json'),
      JSON.stringify({ ...biz.deployerConfig, stateDir: state }),
    );
    const [line = ''] = (biz.services.caddy?.serviceConfig?.ExecStartPre ?? []) as string[];
    // `+` is systemd's (as root); the store paths and the host's paths point at this machine's and the
    // test's.
    const argv = replaceStorePaths(line.slice(1), (_, program) => `/usr/bin/${program}`)
      .replace(`${SYSTEM_BIN}deployer`, 'DEPLOYER')
      .replace('/etc/omni-deploy/deployer.json', join(dir, 'caddy-deployer.json'))
      .replace('/etc/caddy/caddy_config', join(dir, 'caddy_config'))
      .replace('/run/caddy-omni/', `${run}/`)
      .split(' ');
    expect(argv[0]).toBe('DEPLOYER');
    const r = spawnSync(
      process.execPath,
      ['--import', 'tsx', join(root, 'bin/deployer.ts'), ...argv.slice(1)],
      {
        encoding: 'utf8',
        cwd: root,
      },
    );
    expect(r.status, r.stderr).toBe(0);
    // Caddy is not running (a start): the routes come from the state.
    expect(r.stderr).toContain('1 route(s) of the deployer in server omni');
    const config = JSON.parse(readFileSync(join(run, 'caddy.json'), 'utf8'));
    expect(config.admin).toEqual({ listen: 'unix//run/caddy/admin.sock' });
    expect(config.apps.http.servers.omni).toMatchObject({
      listen: [':443'],
      routes: [{ '@id': 'omni-deploy:web', match: [{ host: ['web.test'] }] }],
    });
  });
});

/** A deployer state with one healthy service routed on web.test. */
function stateWithWeb() {
  const state = emptyState('biz');
  state.services.web = {
    storePath: '/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-web',
    unitName: 'deploy-web.service',
    unitText: '',
    specHash: 'h',
    route: { domain: 'web.test', path: '/', internalPort: 8001 },
    health: 'healthy',
    since: '2025-01-01T00:00:00Z',
  };
  return state;
}

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
