/**
 * The host policy against the attacks of a bucket writer, in a really booted host (real Nix, systemd, Caddy,
 * s3rver, the `deployer` bin). One manifest holds a good service and one evil service per attack:
 *
 * - `rooted` runs as root (and would append to /etc/passwd);
 * - `secrets` asks for the state directory `biz-secrets` (systemd would hand it the secrets);
 * - `shell` wants `debug-shell.service` (a root shell on tty9);
 * - `thief` loads another service's env file, `/var/lib/biz-secrets/payments.env`;
 * - `exporter` points a public domain at port 9100, where another program (a node_exporter) listens;
 * - `takeover` asks for `admin.example.com`, which a route of someone else's in Caddy serves.
 *
 * The good one serves; each evil one is refused with its rule (in the tick report, `deployer status`, the
 * metrics); no unit of theirs exists or ever ran; the protected files keep owner, mode and content; the foreign
 * program and route keep answering. `deployer validate --config` refuses the same manifest before upload (the
 * rules that need no host).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TickReport } from '../../src/deployer/index.js';
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

const BUCKET = 'omni-policy';
const MANIFEST = `s3://${BUCKET}/manifest.json?endpoint=${S3}&region=us-east-1`;
const CONFIG = '/etc/omni-deploy/deployer.json';
const SECRET = '/var/lib/biz-secrets/payments.env';
const PROTECTED = ['/etc/passwd', '/etc/shadow', '/etc/group', SECRET];
const EVIL = ['rooted', 'secrets', 'shell', 'thief', 'exporter', 'takeover'] as const;

/** `web 1` on /, `ok` on /healthz, on $PORT. */
const webFiles = () => ({
  'bin/web': wrapper('/usr/bin/node', 'server.js'),
  'server.js':
    "require('http').createServer((q, s) => s.end(q.url === '/healthz' ? 'ok' : 'web 1\\n')).listen(Number(process.env.PORT), '127.0.0.1');\n",
});

/** What an evil service would do if it ever ran: mark that it ran, take what it was after, and stay. */
const evilFiles = (name: string) => ({
  [`bin/${name}`]: [
    '#!/bin/sh',
    `echo ran > /run/evil-${name} 2>/dev/null`,
    `echo "${name}:x:0:0::/root:/bin/sh" >> /etc/passwd 2>/dev/null`,
    `cat ${SECRET} > /tmp/stolen-${name} 2>/dev/null`,
    'exec sleep infinity',
    '',
  ].join('\n'),
});

let host: BootedHost;
let cacheDir: string;
const paths: Record<string, string> = {};
let report: TickReport;
let exitCode: number | null;
let before: string;

const tsx = (script: string, args: string[]) =>
  host.exec('node', ['--import', TSX, join(REPO, script), ...args], {
    cwd: REPO,
    env: { ...AWS, ...NIX_ENV },
  });

/** Owner, group, mode and content hash of each protected file. */
const fingerprint = () =>
  host.run('sh', [
    '-c',
    'for f in "$@"; do stat -c "%n %u %g %a" "$f"; sha256sum "$f"; done',
    'sh',
    ...PROTECTED,
  ]);

function manifest() {
  const svc = (name: string, extra: object = {}) => ({
    name,
    artifact: { type: 'nix-closure', storePath: paths[name] },
    hosts: ['biz'],
    exec: { command: name },
    ...extra,
  });
  return {
    version: 1,
    generation: '2025-01-15T12:00:00Z',
    services: [
      svc('web', {
        env: { PORT: '8001' },
        http: { domain: 'example.com', path: '/', internalPort: 8001, healthCheck: '/healthz' },
      }),
      svc('rooted', { exec: { command: 'rooted', user: 'root' } }),
      svc('secrets', { hardening: { stateDirectory: ['biz-secrets'] } }),
      svc('shell', { systemd: { wants: ['debug-shell.service'] } }),
      svc('thief', { envFile: SECRET }),
      svc('exporter', { http: { domain: 'metrics.example.com', path: '/', internalPort: 9100 } }),
      svc('takeover', { http: { domain: 'admin.example.com', path: '/', internalPort: 8002 } }),
    ],
  };
}

/** GET through Caddy with a Host header: body and status on one line. */
async function getHost(name: string): Promise<string> {
  const r = await host.exec('curl', [
    '-s',
    '-o',
    '-',
    '-w',
    ' %{http_code}',
    '-H',
    `Host: ${name}`,
    `http://127.0.0.1:${CADDY_PORT}/`,
  ]);
  return r.stdout.replace(/\s+/g, ' ').trim();
}

beforeAll(async () => {
  paths.web = await buildService({ name: 'e2e-policy-web-1', files: webFiles() });
  for (const name of EVIL)
    paths[name] = await buildService({ name: `e2e-policy-${name}-1`, files: evilFiles(name) });

  // Every closure is signed and in the bucket: a refusal is the policy's, never a missing or unsigned closure.
  cacheDir = mkdtempSync('/var/tmp/omni-policy-cache-');
  const keys = mkdtempSync('/var/tmp/omni-policy-keys-');
  const run = (args: string[]) =>
    execFileSync(args[0] as string, args.slice(1), { env: { ...process.env, ...NIX_ENV }, encoding: 'utf8' });
  run(['nix-store', '--generate-binary-cache-key', 'policy-e2e-1', join(keys, 'sk'), join(keys, 'pk')]);
  const publicKey = readFileSync(join(keys, 'pk'), 'utf8').trim();
  const secretKey = readFileSync(join(keys, 'sk'), 'utf8').trim();
  const all = Object.values(paths);
  const nix = ['nix', '--extra-experimental-features', 'nix-command'];
  run([...nix, 'store', 'sign', '-r', '--key-file', join(keys, 'sk'), ...all]);
  run([...nix, 'copy', '--to', `file://${cacheDir}`, ...all]);
  run(['nix-store', '--delete', ...all]);
  rmSync(keys, { recursive: true, force: true });

  host = await bootHost({
    hostname: 'biz',
    ...E2E_HOST,
    files: {
      [CONFIG]: JSON.stringify({
        manifest: MANIFEST,
        substituter: `${S3}/${BUCKET}`,
        trustedPublicKeys: [publicKey],
        caddyAdmin: 'localhost:2019',
        caddyServer: 'omni',
        metricsFile: '/run/deployer.prom',
        healthSettleMs: '1s',
        healthIntervalMs: '250ms',
        healthTimeoutMs: '2s',
        deployTimeoutMs: '15s',
        logFormat: 'text',
      }),
      // Signs the manifest (driver publish), as push would: a refusal is the policy's, never the signature's.
      '/root/keys/sk': `${secretKey}\n`,
      '/etc/e2e/caddy.json': caddyConfig([
        {
          '@id': 'admin-site',
          match: [{ host: ['admin.example.com'] }],
          handle: [{ handler: 'static_response', body: 'admin site\n' }],
        },
      ]),
    },
  });
  await host.writeFile(SECRET, 'PAYMENTS_KEY=do-not-leak\n', 0o600);
  // Another program of the host on 9100, as node_exporter listens there.
  await host.run('systemd-run', [
    '--unit=node-exporter',
    '--property=DynamicUser=yes',
    '/usr/bin/node',
    '-e',
    "require('http').createServer((q, s) => s.end('node_exporter metrics\\n')).listen(9100, '127.0.0.1')",
  ]);
  await startBucketAndCaddy(host, BUCKET);
  for (let i = 0; (await host.exec('curl', ['-sf', 'http://127.0.0.1:9100/'])).exitCode !== 0; i++) {
    if (i > 100)
      throw new Error(`node-exporter did not start:\n${await host.journal('node-exporter.service')}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const upload = await tsx('test/e2e/driver.ts', ['upload', S3, BUCKET, cacheDir, ...all]);
  expect(upload.exitCode, upload.stderr).toBe(0);

  before = await fingerprint();
  await host.writeFile('/root/next.json', JSON.stringify(manifest(), null, 2));
  const published = await tsx('test/e2e/driver.ts', [
    'publish',
    MANIFEST,
    '/root/next.json',
    '/root/keys/sk',
  ]);
  expect(published.exitCode, published.stderr).toBe(0);
  const r = await tsx('bin/deployer.ts', ['apply', '--config', CONFIG, '--json']);
  exitCode = r.exitCode;
  report = JSON.parse(r.stdout) as TickReport;
}, 300_000);

afterAll(async () => {
  await host?.stop();
  if (cacheDir) rmSync(cacheDir, { recursive: true, force: true });
});

describe('the host policy against a hostile manifest in a booted host', { timeout: 120_000 }, () => {
  it('deploys the good service and refuses each evil one with its rule: the tick is partial, exit 1', async () => {
    expect(exitCode, JSON.stringify(report)).toBe(1);
    expect(report.outcome).toBe('partial');
    const rules = Object.fromEntries(
      report.results.map((r) => [
        r.name,
        r.outcome === 'refused' ? r.refusals?.map((x) => x.rule) : r.outcome,
      ]),
    );
    expect(rules).toEqual({
      web: 'installed',
      rooted: ['user.root'],
      secrets: ['state-directory.other-service'],
      shell: ['dependency.unit'],
      thief: ['env-file.not-own'],
      exporter: ['port.in-use'],
      takeover: ['route.foreign-host'],
    });
    expect(report.results.find((r) => r.name === 'exporter')?.reason).toContain(
      'port 9100 is taken on this host by unit node-exporter.service (node ',
    );
    expect(await getThroughCaddy(host, '/')).toBe('web 1 200');
  });

  it('no unit of the evil ones exists or ever ran, and nothing of theirs was installed', async () => {
    expect(
      (await host.run('ls', ['/run/systemd/system'])).split('\n').filter((f) => f.startsWith('deploy-')),
    ).toEqual(['deploy-web.service']);
    const units = await host.run('systemctl', ['list-units', '--all', '--plain', '--no-legend', 'deploy-*']);
    expect(
      units
        .split('\n')
        .filter(Boolean)
        .map((l) => l.split(/\s+/)[0]),
    ).toEqual(['deploy-web.service']);
    for (const name of EVIL) {
      const show = (property: string) =>
        host.run('systemctl', ['show', '-p', property, '--value', `deploy-${name}.service`]);
      expect(await show('LoadState'), name).toBe('not-found\n');
      expect(await show('InvocationID'), name).toBe('\n');
      expect(await show('ExecMainStartTimestampMonotonic'), name).toBe('0\n');
      expect((await host.exec('test', ['-e', `/run/evil-${name}`])).exitCode, name).toBe(1);
      expect((await host.exec('test', ['-e', `/tmp/stolen-${name}`])).exitCode, name).toBe(1);
      expect((await host.exec('test', ['-e', `/nix/var/nix/profiles/biz/${name}.d`])).exitCode, name).toBe(1);
    }
    expect((await host.exec('systemctl', ['is-active', 'debug-shell.service'])).stdout.trim()).toBe(
      'inactive',
    );
    // Refused before planning: their closures were not even pulled (pre-flight refusals come after the pull).
    for (const name of ['rooted', 'secrets', 'shell', 'thief'])
      expect((await host.exec('test', ['-e', paths[name] as string])).exitCode, name).toBe(1);
  });

  it('the protected files keep owner, mode and content; the foreign program and route keep answering', async () => {
    expect(await fingerprint()).toBe(before);
    expect(await host.run('stat', ['-c', '%U %a', SECRET])).toBe('root 600\n');
    expect(await host.run('curl', ['-s', 'http://127.0.0.1:9100/'])).toBe('node_exporter metrics\n');
    expect(await getHost('admin.example.com')).toBe('admin site 200');
    expect(await getHost('metrics.example.com')).not.toContain('node_exporter');
  });

  it('deployer status and the metrics name each refused service and its rule', async () => {
    const deployer = (args: string[]) =>
      host.run('node', ['--import', TSX, join(REPO, 'bin/deployer.ts'), ...args, '--config', CONFIG]);
    const status = JSON.parse(await deployer(['status', '--json']));
    expect(status.refused.map((r: { service: string; rule: string }) => `${r.service} ${r.rule}`)).toEqual([
      'rooted user.root',
      'secrets state-directory.other-service',
      'shell dependency.unit',
      'thief env-file.not-own',
      'exporter port.in-use',
      'takeover route.foreign-host',
    ]);
    const text = await deployer(['status']);
    expect(text).toContain(
      '\n  rooted: user.root at services[1].exec.user: "root" runs the service as uid 0',
    );
    const metrics = await host.readFile('/run/deployer.prom');
    for (const [service, rule] of [
      ['rooted', 'user.root'],
      ['thief', 'env-file.not-own'],
      ['exporter', 'port.in-use'],
    ])
      expect(metrics).toContain(
        `omni_deployer_service_refused{host="biz",service="${service}",rule="${rule}"} 1`,
      );
  });

  it('deployer validate --config refuses the manifest before upload, naming field and rule (what needs no host)', async () => {
    const r = await host.exec('node', [
      '--import',
      TSX,
      join(REPO, 'bin/deployer.ts'),
      'validate',
      '--config',
      CONFIG,
      '/root/next.json',
    ]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(
      /^\/root\/next\.json: refused by the host policy, 4 problem\(s\) \(service\(s\) rooted, secrets, shell, thief; /,
    );
    expect(r.stderr).toContain(
      'services[4].envFile: "/var/lib/biz-secrets/payments.env" is not this service\'s',
    );
  });

  it('the next tick refuses them again and changes nothing', async () => {
    const r = await tsx('bin/deployer.ts', ['apply', '--config', CONFIG, '--json']);
    expect(r.exitCode).toBe(1);
    const again = JSON.parse(r.stdout) as TickReport;
    expect(again.results.filter((x) => x.outcome === 'refused').map((x) => x.name)).toEqual([...EVIL]);
    expect(again.results.find((x) => x.name === 'web')?.outcome).toBe('unchanged');
    expect(await fingerprint()).toBe(before);
    expect(await getThroughCaddy(host, '/')).toBe('web 1 200');
  });
});
