/**
 * push end to end in a booted host, with `deployer watch` running there: `push deploy` builds with real Nix
 * (through its build command), signs, uploads to s3rver, writes the manifest with compare-and-swap and waits
 * until the deployer has the new version live through Caddy; two pushes at once both land; `push rollback
 * --steps 1 --wait` brings the old version back.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BootedHost, bootHost, HTTP_SERVICE_NIX, NIX_ENV } from '../host/index.js';
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

const BUCKET = 'omni-push-e2e';
// The manifest lives in a directory store: it enforces compare-and-swap across processes (s3rver does not).
const MANIFEST = '/var/lib/e2e-push/manifest.json';

const spec = (name: string, port: number, path: string) => ({
  name,
  hosts: ['biz'],
  exec: { command: name },
  env: { PORT: String(port) },
  http: { domain: 'example.com', path, internalPort: port, healthCheck: '/healthz' },
});

let host: BootedHost;
let secretKey = '';

/** Runs `push` inside the host; VERSION feeds the build command. */
const push = (args: string[], version = '1') =>
  host.exec(
    'node',
    ['--import', TSX, join(REPO, 'bin/push.ts'), ...args, '--config', '/root/deploy/push.json'],
    {
      env: { ...AWS, ...NIX_ENV, VERSION: version },
    },
  );

const get = (path: string) => getThroughCaddy(host, path);

beforeAll(async () => {
  const keys = mkdtempSync('/var/tmp/omni-push-keys-');
  execFileSync(
    'nix-store',
    ['--generate-binary-cache-key', 'push-e2e-1', join(keys, 'sk'), join(keys, 'pk')],
    { env: { ...process.env, ...NIX_ENV } },
  );
  const [secret, pub] = ['sk', 'pk'].map((f) => readFileSync(join(keys, f), 'utf8').trim()) as [
    string,
    string,
  ];
  rmSync(keys, { recursive: true, force: true });
  secretKey = secret;
  host = await bootHost({
    hostname: 'biz',
    ...E2E_HOST,
    files: {
      '/root/svc.nix': HTTP_SERVICE_NIX,
      '/root/keys/sk': `${secret}\n`,
      '/root/deploy/web.json': JSON.stringify(spec('web', 8001, '/')),
      '/root/deploy/api.json': JSON.stringify(spec('api', 8002, '/api')),
      '/root/deploy/push.json': JSON.stringify({
        manifest: MANIFEST,
        cache: `s3://${BUCKET}?endpoint=${S3}&region=us-east-1`,
        keyFile: '/root/keys/sk',
        build:
          'nix-build --no-out-link /root/svc.nix --argstr prefix e2e-push --argstr name {target} --argstr version "$VERSION"',
        specDir: '/root/deploy',
        pollMs: '500ms',
        timeoutMs: '90s',
      }),
      '/etc/omni-deploy/deployer.json': JSON.stringify({
        manifest: MANIFEST,
        substituter: `${S3}/${BUCKET}`,
        trustedPublicKeys: [pub],
        caddyAdmin: 'localhost:2019',
        caddyServer: 'omni',
        healthSettleMs: '1s',
        healthIntervalMs: '250ms',
        deployTimeoutMs: '15s',
        intervalMs: '1s',
        logFormat: 'text',
      }),
      '/etc/e2e/caddy.json': caddyConfig(),
    },
  });
  await host.run('chmod', ['600', '/root/keys/sk']);
  await startBucketAndCaddy(host, BUCKET);
  const init = await push(['init']);
  expect(init.exitCode, init.stderr).toBe(0);
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
}, 240_000);

afterAll(async () => {
  await host?.stop();
});

describe('push in a booted host, with deployer watch running', { timeout: 180_000 }, () => {
  it('push deploy --wait returns once the deployer has the new version live through Caddy', async () => {
    const r = await push(['deploy', 'web', '--wait']);
    expect(r.exitCode, `${r.stdout}\n${r.stderr}\n${await host.journal('e2e-deployer.service')}`).toBe(0);
    expect(r.stdout).toMatch(/building web: nix-build/);
    expect(r.stdout).toMatch(/uploaded \d+ file\(s\)/);
    expect(r.stdout).toMatch(/biz: applied: live/);
    expect(await get('/')).toBe('web 1 200');
    expect(r.stdout + r.stderr).not.toContain(secretKey.split(':')[1]); // the key is never printed
  });

  it('two pushes of different services at the same moment both land', async () => {
    const [web, api] = await Promise.all([
      push(['deploy', 'web', '--wait'], '2'),
      push(['deploy', 'api', '--wait'], '1'),
    ]);
    expect(web.exitCode, web.stderr).toBe(0);
    expect(api.exitCode, api.stderr).toBe(0);
    const manifest = JSON.parse(JSON.parse(await host.readFile(MANIFEST)).payload); // signed: the manifest inside
    expect(manifest.services.map((s: { name: string }) => s.name).sort()).toEqual(['api', 'web']);
    expect(await get('/')).toBe('web 2 200');
    expect(await get('/api')).toBe('api 1 200');
  });

  it('push rollback --steps 1 --wait brings the previous version back', async () => {
    const v3 = await push(['deploy', 'web', '--wait'], '3');
    expect(v3.exitCode, v3.stderr).toBe(0);
    expect(await get('/')).toBe('web 3 200');
    const r = await push(['rollback', '--steps', '1', '--wait']);
    expect(r.exitCode, `${r.stdout}\n${r.stderr}`).toBe(0);
    expect(await get('/')).toBe('web 2 200');
    const history = await push(['history']);
    expect(history.stdout).toMatch(/^ARCHIVE/);
  });

  it('push status shows the host live', async () => {
    const r = await push(['status']);
    expect(r.stdout).toMatch(/^HOST +GENERATION +LAST TICK +OUTCOME +SERVICES\nbiz .* 2\/2 healthy/);
  });
});
