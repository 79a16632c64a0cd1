/**
 * The deployer against a bucket writer without the signing key and against a service that never finishes its
 * health answer, in a really booted host (real Nix, systemd, Caddy, s3rver, the `deployer` bin). The manifests
 * are signed (as push signs them), so what refuses below is the closure check itself, the second line behind
 * the manifest's signature (test/e2e/signed.e2e.test.ts shows the first):
 *
 * - the manifest names a store path the host already has (nix copy would skip it), and the bucket holds an
 *   unsigned narinfo for it, uploaded by hand: refused, nothing switched;
 * - v2's health endpoint sends one byte every 300 ms and never ends: the tick returns and v1 serves again.
 *
 * Only a generous watchdog bounds time: no assertion on how long anything took.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TickReport } from '../../src/deployer/index.js';
import { type BootedHost, bootHost, buildService, NIX_ENV, wrapper } from '../host/index.js';
import {
  AWS,
  caddyConfig,
  E2E_HOST,
  getThroughCaddy,
  REPO,
  S3,
  startBucketAndCaddy,
  TSX,
} from './support.js';

const BUCKET = 'omni-hostile';
const MANIFEST = `s3://${BUCKET}/manifest.json?endpoint=${S3}&region=us-east-1`;
const PORT = 8001;
/** Far beyond what a tick that ends takes (two 15 s health gates at most), short of vitest's step timeout. */
const WATCHDOG_MS = 150_000;

/** `web <version>` on /, `ok` on /healthz; `trickle`: /healthz sends 200, then a byte every 300 ms, forever. */
function serviceFiles(name: string, version: string, health: 'ok' | 'trickle') {
  const healthz =
    health === 'ok'
      ? `s.end('ok')`
      : `(s.writeHead(200, { 'content-type': 'text/plain' }), setInterval(() => s.write('.'), 300))`;
  const script =
    `require('http').createServer((q, s) => q.url === '/healthz' ? ${healthz} : s.end('${name} ${version}\\n'))` +
    `.listen(Number(process.env.PORT), '127.0.0.1');\n`;
  return { [`bin/${name}`]: wrapper('/usr/bin/node', 'server.js'), 'server.js': script };
}

function service(storePath: string, command: string) {
  return {
    name: 'web',
    artifact: { type: 'nix-closure', storePath },
    hosts: ['biz'],
    exec: { command },
    env: { PORT: String(PORT) },
    http: { domain: 'example.com', path: '/', internalPort: PORT, healthCheck: '/healthz' },
  };
}

let host: BootedHost;
let cacheDir: string;
let unsignedDir: string;
const paths: Record<string, string> = {};
let keyName = '';
let generation = 0;

const tsx = (script: string, args: string[], timeoutMs?: number) =>
  host.exec('node', ['--import', TSX, join(REPO, script), ...args], {
    cwd: REPO,
    env: { ...AWS, ...NIX_ENV },
    ...(timeoutMs === undefined ? {} : { timeoutMs }),
  });

async function publish(services: object[]): Promise<void> {
  generation += 1;
  const manifest = {
    version: 1,
    generation: `2025-01-15T12:00:${String(generation).padStart(2, '0')}Z`,
    services,
  };
  await host.writeFile('/root/next.json', JSON.stringify(manifest, null, 2));
  const r = await tsx('test/e2e/driver.ts', ['publish', MANIFEST, '/root/next.json', '/root/keys/sk']);
  if (r.exitCode !== 0) throw new Error(`publish failed: ${r.stderr}`);
}

/** One `deployer apply --json` under the watchdog: the exit code and the tick's report. */
async function apply(): Promise<{ exitCode: number | null; report: TickReport; stderr: string }> {
  const r = await tsx(
    'bin/deployer.ts',
    ['apply', '--config', '/etc/omni-deploy/deployer.json', '--json'],
    WATCHDOG_MS,
  );
  if (r.signal)
    throw new Error(`the tick did not return within the ${WATCHDOG_MS} ms watchdog:\n${r.stderr}`);
  return { exitCode: r.exitCode, report: JSON.parse(r.stdout) as TickReport, stderr: r.stderr };
}

const unitOf = () => host.readFile('/run/systemd/system/deploy-web.service');
const mainPid = () => host.run('systemctl', ['show', '-p', 'MainPID', '--value', 'deploy-web.service']);
const profileLink = () => host.run('readlink', ['/nix/var/nix/profiles/biz/web.d/profile']);

beforeAll(async () => {
  paths.web1 = await buildService({ name: 'e2e-hostile-web-1', files: serviceFiles('web', '1', 'ok') });
  paths.web2 = await buildService({ name: 'e2e-hostile-web-2', files: serviceFiles('web', '2', 'trickle') });
  // Stands for anything the host has that nobody signed (its bash, its python): built here, so it is in the
  // host's store too, and never signed.
  paths.local = await buildService({ name: 'e2e-hostile-local-1', files: serviceFiles('owned', '1', 'ok') });

  cacheDir = mkdtempSync('/var/tmp/omni-hostile-cache-');
  unsignedDir = mkdtempSync('/var/tmp/omni-hostile-unsigned-');
  const keys = mkdtempSync('/var/tmp/omni-hostile-keys-');
  const run = (args: string[]) =>
    execFileSync(args[0] as string, args.slice(1), { env: { ...process.env, ...NIX_ENV }, encoding: 'utf8' });
  run(['nix-store', '--generate-binary-cache-key', 'hostile-e2e-1', join(keys, 'sk'), join(keys, 'pk')]);
  const publicKey = readFileSync(join(keys, 'pk'), 'utf8').trim();
  const secretKey = readFileSync(join(keys, 'sk'), 'utf8').trim();
  keyName = publicKey.slice(0, publicKey.indexOf(':'));
  const nix = ['nix', '--extra-experimental-features', 'nix-command'];
  const released = [paths.web1, paths.web2];
  run([...nix, 'store', 'sign', '-r', '--key-file', join(keys, 'sk'), ...released]);
  run([...nix, 'copy', '--to', `file://${cacheDir}`, ...released]);
  run([...nix, 'copy', '--to', `file://${unsignedDir}?compression=none`, paths.local]);
  // The released versions must come from the bucket; the unsigned one stays, as the host's own things do.
  run(['nix-store', '--delete', ...released]);
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
        healthTimeoutMs: '2s',
        deployTimeoutMs: '15s',
        logFormat: 'text',
      }),
      '/etc/e2e/caddy.json': caddyConfig(),
      // Signs the manifests (driver publish), as push would; closures were signed above.
      '/root/keys/sk': `${secretKey}\n`,
    },
  });
  await startBucketAndCaddy(host, BUCKET);
  const upload = await tsx('test/e2e/driver.ts', ['upload', S3, BUCKET, cacheDir, ...released]);
  expect(upload.exitCode, upload.stderr).toBe(0);
}, 240_000);

afterAll(async () => {
  await host?.stop();
  for (const dir of [cacheDir, unsignedDir]) if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('the deployer against hostile input in a booted host', { timeout: 180_000 }, () => {
  it('deploys v1 into the service’s own profile directory', async () => {
    await publish([service(paths.web1 as string, 'web')]);
    const { exitCode, report } = await apply();
    expect(exitCode, JSON.stringify(report)).toBe(0);
    expect(report.results).toEqual([expect.objectContaining({ name: 'web', outcome: 'installed' })]);
    expect(await getThroughCaddy(host, '/')).toBe('web 1 200');
    expect(await profileLink()).toBe('profile-1-link\n');
  });

  it('refuses a path the host already has when the bucket holds an unsigned narinfo for it; nothing switched', async () => {
    expect((await host.exec('test', ['-e', paths.local as string])).exitCode).toBe(0); // already in the store
    // Someone with write access to the bucket, without the key: a plain HTTP PUT of each file of the export.
    for (const file of readdirSync(unsignedDir).filter((f) => f.endsWith('.narinfo'))) {
      await host.run('curl', [
        '-sf',
        '-X',
        'PUT',
        '--data-binary',
        `@${unsignedDir}/${file}`,
        `${S3}/${BUCKET}/${file}`,
      ]);
    }
    for (const file of readdirSync(join(unsignedDir, 'nar'))) {
      await host.run('curl', [
        '-sf',
        '-X',
        'PUT',
        '--data-binary',
        `@${unsignedDir}/nar/${file}`,
        `${S3}/${BUCKET}/nar/${file}`,
      ]);
    }
    const pid = await mainPid();
    const unit = await unitOf();
    await publish([service(paths.local as string, 'owned')]);

    const { exitCode, report } = await apply();
    expect(exitCode).toBe(1);
    expect(report.outcome).toBe('failed');
    expect(report.message).toMatch(/^pull failed, nothing changed: signature check failed: /);
    expect(report.message).toContain(paths.local);
    expect(report.message).toContain(`(${keyName})`);
    expect(await unitOf()).toBe(unit);
    expect(await mainPid()).toBe(pid);
    expect(await profileLink()).toBe('profile-1-link\n');
    expect(await host.exec('test', ['-e', '/nix/var/nix/profiles/biz/web.d/profile-2-link'])).toMatchObject({
      exitCode: 1,
    });
    expect(await getThroughCaddy(host, '/')).toBe('web 1 200');
  });

  it('rolls back a v2 whose health endpoint trickles forever: the tick returns and v1 serves', async () => {
    await publish([service(paths.web2 as string, 'web')]);
    const { exitCode, report } = await apply();
    expect(exitCode).toBe(1);
    expect(report.outcome).toBe('partial');
    expect(report.results).toEqual([
      expect.objectContaining({
        name: 'web',
        outcome: 'rolled-back',
        reason: expect.stringMatching(
          /^not healthy within 15s: active, health check failed \(response not complete within 2000ms, status 200\)$/,
        ),
      }),
    ]);
    expect(await unitOf()).toContain(paths.web1);
    expect(await getThroughCaddy(host, '/')).toBe('web 1 200');
    const status = JSON.parse(
      await host.run('node', ['--import', TSX, join(REPO, 'bin/deployer.ts'), 'status', '--json']),
    );
    expect(status.failures).toEqual([expect.objectContaining({ service: 'web', storePath: paths.web2 })]);
  });
});
