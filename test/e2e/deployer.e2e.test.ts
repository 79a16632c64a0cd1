/**
 * The deployer end to end in a really booted systemd host: real Nix (closures signed here, pulled there from
 * the bucket), real systemd, real Caddy, s3rver as the bucket, the `deployer` bin itself; manifests signed with
 * the same key, as push signs them. One story, in order: v1 live through Caddy; v2 replaces it; a v3 that exits
 * on start is rolled back while another service keeps serving; the archived v1 manifest put back as it was is
 * refused as a replay, and its services under a fresh generation bring v1 back; a service removed; Caddy
 * restarted; the deployer killed with SIGKILL mid-apply; a reboot-like loss of every runtime unit while S3 is
 * down.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BootedHost, bootHost, buildService, NIX_ENV, wrapper } from '../host/index.js';
import {
  AWS,
  CADDY_PORT,
  caddyConfig,
  E2E_HOST,
  getThroughCaddy,
  REPO,
  S3,
  startBucketAndCaddy,
  TSX,
} from './support.js';

const BUCKET = 'omni-e2e';
const MANIFEST = `s3://${BUCKET}/manifest.json?endpoint=${S3}&region=us-east-1`;

/** A tiny HTTP service: answers `<name> <version>` on / and 200 on /healthz; `crash` exits at once. */
function serviceFiles(name: string, version: string, crash = false) {
  const script = crash
    ? `console.error('${name} ${version}: refusing to start'); process.exit(1);\n`
    : `require('http').createServer((q, s) => s.end(q.url === '/healthz' ? 'ok' : '${name} ${version}\\n'))` +
      `.listen(Number(process.env.PORT), '127.0.0.1');\n`;
  return { [`bin/${name}`]: wrapper('/usr/bin/node', 'server.js'), 'server.js': script };
}

function service(name: string, storePath: string, port: number, path: string) {
  return {
    name,
    artifact: { type: 'nix-closure', storePath },
    hosts: ['biz'],
    exec: { command: name },
    env: { PORT: String(port) },
    http: { domain: 'example.com', path, internalPort: port, healthCheck: '/healthz' },
  };
}

let host: BootedHost;
let cacheDir: string;
const paths: Record<string, string> = {};
let publicKey = '';
let generation = 0;
const archives: string[] = [];

/** Runs a program inside the host and returns stdout, failing with its output otherwise. */
const sh = (command: string, ...args: string[]) => host.run(command, args);
const tsx = (script: string, args: string[], env: Record<string, string> = {}) =>
  host.exec('node', ['--import', TSX, join(REPO, script), ...args], {
    cwd: REPO,
    env: { ...AWS, ...NIX_ENV, ...env },
  });

async function publish(services: object[]): Promise<string> {
  generation += 1;
  const manifest = {
    version: 1,
    generation: `2025-01-15T12:00:${String(generation).padStart(2, '0')}Z`,
    services,
  };
  await host.writeFile('/root/next.json', JSON.stringify(manifest, null, 2));
  const r = await tsx('test/e2e/driver.ts', ['publish', MANIFEST, '/root/next.json', '/root/keys/sk']);
  if (r.exitCode !== 0) throw new Error(`publish failed: ${r.stderr}`);
  const { archived } = JSON.parse(r.stdout) as { archived?: string };
  if (archived) archives.push(archived);
  return manifest.generation;
}

/** One `deployer apply` with the host's config file; returns exit code and output. */
const apply = () => tsx('bin/deployer.ts', ['apply', '--config', '/etc/omni-deploy/deployer.json']);

const get = (path: string) => getThroughCaddy(host, path);

beforeAll(async () => {
  // Closures are built, signed and exported here; then deleted from this store, so the host must pull them.
  const build = (name: string, version: string, crash = false) =>
    buildService({ name: `e2e-${name}-${version}`, files: serviceFiles(name, version, crash) });
  for (const [key, name, version, crash] of [
    ['web1', 'web', '1', false],
    ['web2', 'web', '2', false],
    ['web3', 'web', '3', true],
    ['web4', 'web', '4', false],
    ['api1', 'api', '1', false],
  ] as const) {
    paths[key] = await build(name, version, crash);
  }
  cacheDir = mkdtempSync('/var/tmp/omni-e2e-cache-');
  const keys = mkdtempSync('/var/tmp/omni-e2e-keys-');
  const nix = (args: string[]) =>
    execFileSync(args[0] as string, args.slice(1), { env: { ...process.env, ...NIX_ENV }, encoding: 'utf8' });
  nix(['nix-store', '--generate-binary-cache-key', 'e2e-1', join(keys, 'sk'), join(keys, 'pk')]);
  publicKey = execFileSync('cat', [join(keys, 'pk')], { encoding: 'utf8' }).trim();
  const secretKey = execFileSync('cat', [join(keys, 'sk')], { encoding: 'utf8' }).trim();
  nix([
    'nix',
    '--extra-experimental-features',
    'nix-command',
    'store',
    'sign',
    '-r',
    '--key-file',
    join(keys, 'sk'),
    ...Object.values(paths),
  ]);
  nix([
    'nix',
    '--extra-experimental-features',
    'nix-command',
    'copy',
    '--to',
    `file://${cacheDir}`,
    ...Object.values(paths),
  ]);
  nix(['nix-store', '--delete', ...Object.values(paths)]);
  rmSync(keys, { recursive: true, force: true });

  host = await bootHost({
    hostname: 'biz',
    ...E2E_HOST,
    files: {
      '/etc/omni-deploy/deployer.json': JSON.stringify({
        manifest: MANIFEST,
        substituter: `${S3}/${BUCKET}`,
        trustedPublicKeys: [publicKey],
        caddyAdmin: 'localhost:2019',
        caddyServer: 'omni',
        healthSettleMs: '1s',
        healthIntervalMs: '250ms',
        deployTimeoutMs: '15s',
        logFormat: 'text',
      }),
      // Signs the manifests (driver publish), as push would.
      '/root/keys/sk': `${secretKey}\n`,
      '/etc/e2e/caddy.json': caddyConfig([
        {
          '@id': 'foreign',
          match: [{ host: ['other.example'] }],
          handle: [{ handler: 'static_response', body: 'foreign\n' }],
        },
      ]),
    },
  });
  await startBucketAndCaddy(host, BUCKET);
  const upload = await tsx('test/e2e/driver.ts', ['upload', S3, BUCKET, cacheDir, ...Object.values(paths)]);
  expect(upload.exitCode, upload.stderr).toBe(0);
}, 240_000);

afterAll(async () => {
  await host?.stop();
  if (cacheDir) rmSync(cacheDir, { recursive: true, force: true });
});

describe('the deployer in a booted host (real Nix, systemd, Caddy, s3rver)', { timeout: 180_000 }, () => {
  it('deploys v1 of a service: pulled with a signature check, started hardened, answering through Caddy', async () => {
    expect((await host.exec('test', ['-e', paths.web1 as string])).exitCode).toBe(1); // not in the host's store yet
    await publish([
      service('web', paths.web1 as string, 8001, '/'),
      service('api', paths.api1 as string, 8002, '/api'),
    ]);
    const r = await apply();
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toContain('tick applied: 2 installed');
    expect(await get('/')).toBe('web 1 200');
    expect(await get('/api/x')).toBe('api 1 200');
    expect(
      (await host.exec('curl', ['-s', '-H', 'Host: other.example', `http://127.0.0.1:${CADDY_PORT}/`]))
        .stdout,
    ).toBe('foreign\n');
    expect(await sh('systemctl', 'show', '-p', 'DynamicUser', '--value', 'deploy-web.service')).toBe('yes\n');
    const again = await apply();
    expect(again.stdout).toBe('tick unchanged\n');
  });

  it('v2 replaces v1 with one restart of that service only', async () => {
    const apiPid = await sh('systemctl', 'show', '-p', 'MainPID', '--value', 'deploy-api.service');
    await publish([
      service('web', paths.web2 as string, 8001, '/'),
      service('api', paths.api1 as string, 8002, '/api'),
    ]);
    const r = await apply();
    expect(r.exitCode, r.stderr).toBe(0);
    expect(await get('/')).toBe('web 2 200');
    expect(await sh('systemctl', 'show', '-p', 'MainPID', '--value', 'deploy-api.service')).toBe(apiPid);
  });

  it('a v3 that exits on start is rolled back to v2 automatically while api keeps serving', async () => {
    const apiPid = await sh('systemctl', 'show', '-p', 'MainPID', '--value', 'deploy-api.service');
    await publish([
      service('web', paths.web3 as string, 8001, '/'),
      service('api', paths.api1 as string, 8002, '/api'),
    ]);
    const r = await apply();
    expect(r.exitCode).toBe(1);
    expect(r.stdout).toMatch(/tick partial: 1 rolled-back/);
    expect(await get('/')).toBe('web 2 200');
    expect(await get('/api')).toBe('api 1 200');
    expect(await sh('systemctl', 'show', '-p', 'MainPID', '--value', 'deploy-api.service')).toBe(apiPid);
    expect(await host.readFile('/run/systemd/system/deploy-web.service')).toContain(paths.web2);
    // Not retried on the next tick: the manifest did not change.
    const again = await apply();
    expect(again.stderr).not.toContain('restarted');
    expect(await get('/')).toBe('web 2 200');
    const status = JSON.parse(
      await sh('node', '--import', TSX, join(REPO, 'bin/deployer.ts'), 'status', '--json'),
    );
    expect(status.failures).toEqual([expect.objectContaining({ service: 'web', storePath: paths.web3 })]);
  });

  it('the archived v1 manifest put back as it was is refused as a replay; its services under a new generation bring v1 back', async () => {
    // archives[0] holds the v1 manifest (archived when v2 was published), validly signed, of an older generation.
    const r = await tsx('test/e2e/driver.ts', ['restore', MANIFEST, archives[0] as string]);
    expect(r.exitCode, r.stderr).toBe(0);
    const refused = await apply();
    expect(refused.exitCode).toBe(1);
    expect(refused.stdout).toMatch(
      /tick invalid-manifest\nmanifest .* refused: stale or replayed manifest: generation 2025-01-15T12:00:01Z is older than/,
    );
    expect(await get('/')).toBe('web 2 200');
    // What push rollback writes: the archived services, a later generation, signed anew.
    await publish([
      service('web', paths.web1 as string, 8001, '/'),
      service('api', paths.api1 as string, 8002, '/api'),
    ]);
    const applied = await apply();
    expect(applied.exitCode, applied.stderr).toBe(0);
    expect(await get('/')).toBe('web 1 200');
  });

  it('removing a service stops its unit and removes its route', async () => {
    await publish([service('web', paths.web1 as string, 8001, '/')]);
    const r = await apply();
    expect(r.exitCode, r.stderr).toBe(0);
    expect((await host.exec('systemctl', ['is-active', 'deploy-api.service'])).stdout.trim()).not.toBe(
      'active',
    );
    expect(await get('/api')).toBe('web 1 200'); // the catch-all `/` of web now answers /api
    expect((await host.exec('test', ['-e', '/run/systemd/system/deploy-api.service'])).exitCode).toBe(1);
  });

  it('after Caddy restarts with its original config, the next tick puts our routes back', async () => {
    await sh('systemctl', 'restart', 'e2e-caddy.service');
    for (
      let i = 0;
      (await host.exec('curl', ['-s', 'http://localhost:2019/config/'])).exitCode !== 0 && i < 50;
      i++
    ) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(await get('/')).toBe('200'); // Caddy's empty answer: our route is gone
    const r = await apply();
    expect(r.exitCode, r.stderr).toBe(0);
    expect(await get('/')).toBe('web 1 200');
  });

  it('a deployer killed with SIGKILL in the middle of an apply is finished by the next tick', async () => {
    await publish([service('web', paths.web4 as string, 8001, '/')]);
    await sh(
      'systemd-run',
      '--unit=e2e-tick',
      `--working-directory=${REPO}`,
      ...Object.entries({ ...AWS, ...NIX_ENV }).map(([k, v]) => `--setenv=${k}=${v}`),
      '--',
      '/usr/bin/node',
      '--import',
      'tsx',
      join(REPO, 'bin/deployer.ts'),
      'apply',
      '--config',
      '/etc/omni-deploy/deployer.json',
    );
    // Kill it once the new unit is written (it is then restarting or in the health gate, which takes at least
    // the 1 s settle): one shell loop inside the host reacts within milliseconds even on a loaded machine,
    // and the test goes on only once systemd has recorded the death.
    const unit = '/run/systemd/system/deploy-web.service';
    await sh(
      'timeout',
      '30',
      'sh',
      '-c',
      `until grep -qF '${paths.web4}' ${unit} 2>/dev/null; do sleep 0.01; done; ` +
        'systemctl kill --signal=SIGKILL e2e-tick.service; ' +
        'while systemctl is-active -q e2e-tick.service; do sleep 0.05; done',
    ).catch(async (error) => {
      throw new Error(
        `the tick never got to writing the unit: ${error}\n${await host.journal('e2e-tick.service')}`,
      );
    });
    // It really died mid-apply (not after finishing).
    expect(await sh('systemctl', 'show', '-p', 'Result', '--value', 'e2e-tick.service')).toBe('signal\n');
    const r = await apply();
    expect(r.exitCode, r.stderr).toBe(0);
    expect(await get('/')).toBe('web 4 200');
    expect((await apply()).stdout).toBe('tick unchanged\n');
  });

  it('after a reboot-like loss of every runtime unit, with S3 down, the services come back from local state', async () => {
    await sh('systemctl', 'stop', 'deploy-web.service', 'e2e-s3rver.service');
    await sh('rm', '-f', '/run/systemd/system/deploy-web.service');
    await sh('systemctl', 'daemon-reload');
    expect(await get('/')).toBe('502'); // the route is there, the service is not
    const r = await apply();
    expect(r.exitCode).toBe(1); // the manifest could not be read...
    expect(r.stdout).toContain('cannot read the manifest');
    expect(r.stderr).toContain('restored from local state');
    expect(await get('/')).toBe('web 4 200'); // ...but the last known-good set serves
  });
});
