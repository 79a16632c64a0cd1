/**
 * A fleet end to end: three booted hosts (test/host/fleet.ts), each with its own Caddy and `deployer watch`,
 * sharing one bucket on s3rver that they reach over veth pairs into the fleet's network (manifest, status and
 * binary cache all over S3; s3rver ignores conditional writes, so push writes under a lease, as `push init`
 * finds). push runs on this machine, inside the fleet's network. One fleet serves every test here: `push deploy
 * --wait` follows the three hosts; a good version rolls through the canary and waves; a broken one with
 * `--canary 1` is tried by one host only, halted and reverted.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { candidateUnitNameFor } from '../../src/systemd/index.js';
import { bootFleet, buildService, type Fleet, type FleetHost, NIX_ENV, wrapper } from '../host/index.js';
import { AWS, caddyConfig, E2E_HOST, getThroughCaddy, REPO, TSX } from './support.js';

const BUCKET = 'omni-fleet';
const HOSTS = ['h1', 'h2', 'h3'];
const PORT = 8001;

let fleet: Fleet;
let work = '';
let publicKey = '';
const paths: Record<string, string> = {};

/** The web service at `version`: answers `web <version>` (and `ok` on /healthz); `broken` exits at once. */
async function build(version: string): Promise<string> {
  if (version === 'broken')
    return buildService({
      name: 'fleet-web-broken',
      files: { 'bin/web': '#!/bin/sh\necho broken >&2\nexit 1\n' },
    });
  return buildService({
    name: `fleet-web-${version}`,
    files: {
      'bin/web': wrapper('/usr/bin/node', 'server.js'),
      'server.js': `require('http').createServer((q, s) => s.end(q.url === '/healthz' ? 'ok' : 'web ${version}\\n')).listen(Number(process.env.PORT), '127.0.0.1');\n`,
    },
  });
}

/** Runs `push` on this machine, inside the fleet's network. */
const push = (args: string[]) =>
  fleet.exec(
    'node',
    ['--import', TSX, join(REPO, 'bin/push.ts'), ...args, '--config', join(work, 'push.json')],
    {
      env: { ...process.env, ...AWS, ...NIX_ENV },
    },
  );

/** What each host's Caddy answers on `/`, e.g. `{ h1: 'web 2 200', ... }`. */
async function answers(): Promise<Record<string, string>> {
  const all = await Promise.all(fleet.hosts.map((h) => getThroughCaddy(h, '/')));
  return Object.fromEntries(fleet.hosts.map((h, i) => [h.hostname, all[i] as string]));
}

/**
 * True when `host` ever started the broken version: it writes "broken" to its journal as it exits, in the
 * service's unit or, as web sets its port variable (a blue/green update), in its candidate unit. (The hosts' Nix
 * stores are overlays of this machine's, where every version was built: a store path being there says nothing.)
 */
const triedBroken = async (host: FleetHost) =>
  (await Promise.all(['deploy-web.service', candidateUnitNameFor('web')].map((u) => host.journal(u)))).some(
    (journal) => journal.includes('broken'),
  );

const journals = async () =>
  (
    await Promise.all(
      fleet.hosts.map(
        async (h) => `--- ${h.hostname}\n${(await h.journal('e2e-deployer.service')).slice(-2500)}`,
      ),
    )
  ).join('\n');

beforeAll(async () => {
  work = mkdtempSync('/var/tmp/omni-fleet-e2e-');
  execFileSync(
    'nix-store',
    ['--generate-binary-cache-key', 'fleet-e2e-1', join(work, 'sk'), join(work, 'pk')],
    {
      env: { ...process.env, ...NIX_ENV },
    },
  );
  publicKey = readFileSync(join(work, 'pk'), 'utf8').trim();
  const s3 = 'http://10.77.0.1:4569';
  const location = (key: string) => `s3://${BUCKET}/${key}?endpoint=${s3}&region=us-east-1`;
  writeFileSync(
    join(work, 'web.json'),
    JSON.stringify({
      name: 'web',
      hosts: HOSTS,
      exec: { command: 'web' },
      env: { PORT: String(PORT) },
      http: { domain: 'example.com', path: '/', internalPort: PORT, healthCheck: '/healthz' },
    }),
  );
  writeFileSync(
    join(work, 'push.json'),
    JSON.stringify({
      manifest: location('manifest.json'),
      cache: `s3://${BUCKET}?endpoint=${s3}&region=us-east-1`,
      keyFile: join(work, 'sk'),
      specDir: work,
      pollMs: '500ms',
      timeoutMs: '90s',
    }),
  );
  const [fleetBooted] = await Promise.all([
    bootFleet({
      hosts: HOSTS,
      bucket: BUCKET,
      ...E2E_HOST,
      files: () => ({
        '/etc/omni-deploy/deployer.json': JSON.stringify({
          manifest: location('manifest.json'),
          substituter: `${s3}/${BUCKET}`,
          trustedPublicKeys: [publicKey],
          caddyAdmin: 'localhost:2019',
          caddyServer: 'omni',
          healthSettleMs: '1s',
          healthIntervalMs: '250ms',
          deployTimeoutMs: '15s',
          intervalMs: '1s',
          logFormat: 'text',
        }),
        '/etc/e2e/caddy.json': caddyConfig(),
      }),
    }),
    ...['1', '2', 'broken'].map(async (v) => {
      paths[v] = await build(v);
    }),
  ]);
  fleet = fleetBooted;
  const init = await push(['init']);
  expect(init.exitCode, `${init.stdout}\n${init.stderr}`).toBe(0);
  expect(init.stdout).toMatch(/write mode: lease/);
  await Promise.all(
    fleet.hosts.map(async (host) => {
      await host.run('systemd-run', [
        '--unit=e2e-caddy',
        '--',
        '/usr/bin/caddy',
        'run',
        '--config',
        '/etc/e2e/caddy.json',
      ]);
      await host.run('systemd-run', [
        '--unit=e2e-deployer',
        ...Object.entries({ ...AWS, ...NIX_ENV }).map(([k, v]) => `--setenv=${k}=${v}`),
        '--',
        '/usr/bin/node',
        '--import',
        TSX,
        join(REPO, 'bin/deployer.ts'),
        'watch',
        '--config',
        '/etc/omni-deploy/deployer.json',
      ]);
    }),
  );
}, 300_000);

afterAll(async () => {
  await fleet?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('a fleet of booted hosts sharing one bucket', { timeout: 240_000 }, () => {
  it('each host has its own network and Caddy, reaches s3rver over the fleet network, and sees the shared directory', async () => {
    for (const host of fleet.hosts) {
      expect((await host.run('ls', ['/sys/class/net'])).split('\n').filter(Boolean).sort()).toEqual([
        'fleet0',
        'lo',
      ]);
      expect(
        await host.run('curl', [
          '-s',
          '-o',
          '/dev/null',
          '-w',
          '%{http_code}',
          `${fleet.s3}/${BUCKET}/manifest.json`,
        ]),
      ).toBe('200');
    }
    writeFileSync(join(fleet.shared, 'hello'), 'from this machine\n');
    await (fleet.hosts[0] as FleetHost).writeFile(join(fleet.shared, 'from-h1'), 'h1\n');
    for (const host of fleet.hosts)
      expect(await host.readFile(join(fleet.shared, 'hello'))).toBe('from this machine\n');
    expect(readFileSync(join(fleet.shared, 'from-h1'), 'utf8')).toBe('h1\n');
    // Caddy on :8080 in every host at once: each has its own loopback.
    expect(Object.values(await answers())).toEqual(['200', '200', '200']);
  });

  it('push deploy --wait follows all three hosts until each serves the new version', async () => {
    const r = await push([
      'deploy',
      'web',
      '--store-path',
      paths['1'] as string,
      '--revision',
      'r1',
      '--wait',
    ]);
    expect(r.exitCode, `${r.stdout}\n${r.stderr}\n${await journals()}`).toBe(0);
    expect(r.stdout).toMatch(/^waiting for h1, h2, h3 \(up to 90s\)$/m);
    for (const host of HOSTS)
      expect(r.stdout).toMatch(new RegExp(`^ {2}${host}: applied: live \\(generation \\S+\\)$`, 'm'));
    expect(await answers()).toEqual({ h1: 'web 1 200', h2: 'web 1 200', h3: 'web 1 200' });
  });

  it('a good version rolls through the canary and then waves of one, each healthy before the next', async () => {
    const r = await push([
      'deploy',
      'web',
      '--store-path',
      paths['2'] as string,
      '--revision',
      'r2',
      '--canary',
      '1',
      '--max-parallel',
      '1',
      '--min-healthy-time',
      '2s',
      '--healthy-deadline',
      '90s',
    ]);
    expect(r.exitCode, `${r.stdout}\n${r.stderr}\n${await journals()}`).toBe(0);
    expect(r.stderr).toMatch(/rollout of web to fleet-web-2 in 3 wave\(s\): h1 \| h2 \| h3/);
    expect(r.stderr).toMatch(/wave 2 of 3: h2 → fleet-web-2 \(h1 healthy for 2s\)/);
    expect(r.stderr).toMatch(/wave 3 of 3: h3 → fleet-web-2 \(h2 healthy for 2s\)/);
    expect(r.stdout).toMatch(/rollout of web: 3 of 3 hosts on fleet-web-2 \(r2\), done/);
    expect(r.stdout).toMatch(
      /\nh1 +1 +new +healthy +web fleet-web-2 healthy\nh2 +2 +new +healthy +.*\nh3 +3 +new +healthy/,
    );
    expect(await answers()).toEqual({ h1: 'web 2 200', h2: 'web 2 200', h3: 'web 2 200' });
    // Every wave was its own manifest: history shows the hosts switched growing one by one.
    const history = (await push(['history'])).stdout;
    for (const n of [1, 2])
      expect(history).toMatch(
        new RegExp(`rollout of web → fleet-web-2: ${n} of 3 hosts, in progress; a wave`),
      );
    expect(history).toMatch(/^current .*\(rollout of web → fleet-web-2: 3 of 3 hosts, done\)/m);
  });

  it('a broken version with --canary 1 is tried by one host only, halted and reverted; status and history say so', async () => {
    const broken = paths.broken as string;
    const r = await push([
      'deploy',
      'web',
      '--store-path',
      broken,
      '--revision',
      'r3',
      '--canary',
      '1',
      '--min-healthy-time',
      '2s',
    ]);
    expect(r.exitCode, `${r.stdout}\n${r.stderr}\n${await journals()}`).toBe(1);
    expect(r.stdout).toMatch(
      /rollout of web: 0 of 3 hosts on fleet-web-broken \(r3\), reverted \(wave 1 of 2, started \S+\): halted: h1: tried fleet-web-broken and rolled back/,
    );
    expect(r.stdout).toMatch(
      /\nh1 +1 +previous +reverted +failed: .*; then put back: web fleet-web-2 healthy\nh2 +2 +previous +not switched +kept the previous version\nh3 +2 +previous +not switched/,
    );
    expect(await answers()).toEqual({ h1: 'web 2 200', h2: 'web 2 200', h3: 'web 2 200' });
    const [h1, h2, h3] = fleet.hosts as [FleetHost, FleetHost, FleetHost];
    expect([await triedBroken(h1), await triedBroken(h2), await triedBroken(h3)]).toEqual([
      true,
      false,
      false,
    ]);
    const status = await push(['status']);
    expect(status.stdout.split('\n')[0]).toMatch(
      /^rollout of web: 0 of 3 hosts on fleet-web-broken \(r3\), reverted/,
    );
    expect(status.stdout).toMatch(/\nh1 .* 1\/1 healthy/);
    expect((await push(['history'])).stdout).toMatch(
      /^current .*\(rollout of web → fleet-web-broken: 0 of 3 hosts, reverted\)/m,
    );
  });
});
