/**
 * `deployer caddy-config` in-process against real files and the real `caddy adapt`: what caddy.service's
 * drop-in runs at every start and reload of Caddy.
 */
import { chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runDeployer } from '../../src/cli/deployer.js';
import type { CliIo } from '../../src/cli/io.js';
import { emptyState } from '../../src/deployer/state.js';
import { requireCaddy } from '../caddy/caddy-process.js';

const dir = mkdtempSync(join(tmpdir(), 'omni-caddy-config-'));
const stateDir = join(dir, 'state');
const caddyfile = join(dir, 'Caddyfile');
/** Debian's stock Caddyfile (as apt installs it), minus comments. */
const STOCK = ':80 {\n\troot * /usr/share/caddy\n\tfile_server\n}\n';
/** Nothing listens here: Caddy "not running", as at a start. */
const NO_CADDY = '127.0.0.1:1';

beforeAll(() => {
  requireCaddy();
  mkdirSync(stateDir);
  writeFileSync(caddyfile, STOCK);
  writeFileSync(join(dir, 'empty.json'), '{}');
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
  writeFileSync(join(stateDir, 'state.json'), JSON.stringify(state));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function cli(argv: string[], env: Record<string, string> = {}) {
  let stdout = '';
  let stderr = '';
  const io: CliIo = {
    stdout: (t) => {
      stdout += t;
    },
    stderr: (t) => {
      stderr += t;
    },
    readText: (path) => readFile(path, 'utf8'),
    hostname: () => 'biz',
    cwd: () => dir,
    env: { DEPLOYER_CONFIG: join(dir, 'empty.json'), ...env },
  };
  const code = await runDeployer(['caddy-config', ...argv], io);
  return { code, stdout, stderr };
}

const base = ['Caddyfile', '--state-dir', stateDir, '--caddy-admin', NO_CADDY];
type Config = {
  apps: { http: { servers: Record<string, { listen: string[]; routes: { '@id'?: string }[] }> } };
};
const ids = (config: Config, server = 'srv0') =>
  config.apps.http.servers[server]?.routes.map((r) => r['@id']);

describe('deployer caddy-config', () => {
  it("prints the stock Caddyfile's config with the state's route ahead of its catch-all", async () => {
    const r = await cli(base);
    expect(r.code, r.stderr).toBe(0);
    expect(ids(JSON.parse(r.stdout))).toEqual(['omni-deploy:web', undefined]);
    expect(r.stderr).toContain('caddy-config: Caddy did not answer (');
    expect(r.stderr).toContain(
      'caddy-config: 1 route(s) of the deployer in server srv0 (listens on :80): web (from the state)\n',
    );
  });

  it('writes --out atomically, mode 0600, owned by the owner of its directory', async () => {
    const out = join(dir, 'run');
    mkdirSync(out);
    chownSync(out, 65534, 65534);
    const r = await cli([...base, '--out', join(out, 'caddy.json')]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('');
    const info = statSync(join(out, 'caddy.json'));
    expect({ uid: info.uid, gid: info.gid, mode: info.mode & 0o777 }).toEqual({
      uid: 65534,
      gid: 65534,
      mode: 0o600,
    });
    expect(ids(JSON.parse(readFileSync(join(out, 'caddy.json'), 'utf8')))).toEqual([
      'omni-deploy:web',
      undefined,
    ]);
    expect(r.stderr).toContain(`; written to ${join(out, 'caddy.json')}\n`);
  });

  it("refuses an --out whose directory is missing, naming caddy.service's RuntimeDirectory", async () => {
    const r = await cli([...base, '--out', join(dir, 'missing/caddy.json')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/missing or unusable \(ENOENT\); make it caddy\.service's RuntimeDirectory/);
  });

  it("with settings it cannot read, still writes the host's config, without routes and with a warning", async () => {
    writeFileSync(join(dir, 'bad.json'), JSON.stringify({ caddyServr: 'x' }));
    const r = await cli(['Caddyfile'], { DEPLOYER_CONFIG: join(dir, 'bad.json') });
    expect(r.code).toBe(0);
    expect(ids(JSON.parse(r.stdout))).toEqual([undefined]);
    expect(r.stderr).toMatch(/^caddy-config: warning: invalid settings:\n.*caddyServr: unknown setting/s);
  });

  it('with routes off, the host config as it is', async () => {
    const r = await cli(['Caddyfile', '--state-dir', stateDir, '--caddy-admin', 'off']);
    expect(r.code).toBe(0);
    expect(ids(JSON.parse(r.stdout))).toEqual([undefined]);
    expect(r.stderr).toContain('routes are off');
  });

  it('leaves out a state of another host, with a warning', async () => {
    const r = await cli([...base, '--host', 'other']);
    expect(r.code).toBe(0);
    expect(ids(JSON.parse(r.stdout))).toEqual([undefined]);
    expect(r.stderr).toContain('the state belongs to host "biz", not "other"');
  });

  it('creates its own server on --caddy-listen when the Caddyfile has none', async () => {
    writeFileSync(join(dir, 'Empty'), '{\n\temail ops@example.com\n}\n');
    const r = await cli([
      'Empty',
      '--state-dir',
      stateDir,
      '--caddy-admin',
      NO_CADDY,
      '--caddy-listen',
      ':8443',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const config = JSON.parse(r.stdout);
    expect(config.apps.http.servers.omni.listen).toEqual([':8443']);
    expect(ids(config, 'omni')).toEqual(['omni-deploy:web']);
  });

  it("exits 1 with Caddy's message when the Caddyfile does not adapt (Caddy would refuse it too)", async () => {
    writeFileSync(join(dir, 'Broken'), ':80 {\n\tno_such_directive\n}\n');
    const r = await cli(['Broken', ...base.slice(1)]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(
      /^deployer: caddy adapt --config \S+Broken --adapter caddyfile failed: .*no_such_directive/s,
    );
  });
});
