/**
 * Signed manifests end to end in a booted host (real Nix, systemd, Caddy, s3rver for the cache, the `push`
 * and `deployer` bins): `push deploy` writes a signed manifest and the deployer applies it; a manifest with one
 * byte changed, an unsigned one, one signed by another key and a replayed older one are each refused with
 * nothing changed and the reason in `deployer status`; `push rollback` after that still works and is applied;
 * then a key rotation: hosts trust old + new, push switches keys, hosts keep converging, the old key is dropped.
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

const BUCKET = 'omni-signed-e2e';
// The manifest in a directory store (compare-and-swap across processes); the cache in s3rver.
const MANIFEST = '/var/lib/e2e-signed/manifest.json';
const DEPLOYER_CONFIG = '/etc/omni-deploy/deployer.json';

interface Key {
  secret: string;
  public: string;
}

let host: BootedHost;
/** signed-e2e-1 (push's key at first), signed-e2e-2 (the one it rotates to), evil-1 (someone else's). */
const keys: Record<'one' | 'two' | 'evil', Key> = {
  one: { secret: '', public: '' },
  two: { secret: '', public: '' },
  evil: { secret: '', public: '' },
};
/** Archive ids push printed ("previous archived as ..."), by the version they hold. */
const archiveOf: Record<string, string> = {};

const deployerConfig = (trustedPublicKeys: string[]) =>
  JSON.stringify({
    manifest: MANIFEST,
    substituter: `${S3}/${BUCKET}`,
    trustedPublicKeys,
    caddyAdmin: 'localhost:2019',
    caddyServer: 'omni',
    healthSettleMs: '1s',
    healthIntervalMs: '250ms',
    deployTimeoutMs: '15s',
    logFormat: 'text',
  });

const node = (script: string, args: string[], env: Record<string, string> = {}) =>
  host.exec('node', ['--import', TSX, join(REPO, script), ...args], {
    cwd: REPO,
    env: { ...AWS, ...NIX_ENV, ...env },
  });
/** `push` inside the host; VERSION feeds the build command. */
const push = (args: string[], version = '1') =>
  node('bin/push.ts', [...args, '--config', '/root/deploy/push.json'], { VERSION: version });
const apply = () => node('bin/deployer.ts', ['apply', '--config', DEPLOYER_CONFIG]);
const statusText = async () => (await node('bin/deployer.ts', ['status'])).stdout;
const statusJson = async () => JSON.parse((await node('bin/deployer.ts', ['status', '--json'])).stdout);
const get = (path: string) => getThroughCaddy(host, path);
const mainPid = () => host.run('systemctl', ['show', '-p', 'MainPID', '--value', 'deploy-web.service']);
const explain = async (r: { stdout: string; stderr: string }) => `${r.stdout}\n${r.stderr}`;

/** `push deploy web` of `version`; remembers which archive now holds the manifest it replaced. */
async function deploy(version: string, previous: string | undefined, ...more: string[]) {
  const r = await push(['deploy', 'web', ...more], version);
  expect(r.exitCode, await explain(r)).toBe(0);
  const archived = /previous archived as (\S+)/.exec(r.stdout)?.[1];
  if (previous && archived) archiveOf[previous] = archived;
  return r;
}

/** The manifest in the bucket as a plain manifest: a signed one's payload, or the text itself. */
async function currentPayload(): Promise<Record<string, unknown> & { generation: string }> {
  const value = JSON.parse(await host.readFile(MANIFEST));
  return 'payload' in value ? JSON.parse(value.payload) : value;
}

beforeAll(async () => {
  const dir = mkdtempSync('/var/tmp/omni-signed-keys-');
  for (const [id, name] of [
    ['one', 'signed-e2e-1'],
    ['two', 'signed-e2e-2'],
    ['evil', 'evil-1'],
  ] as const) {
    execFileSync(
      'nix-store',
      ['--generate-binary-cache-key', name, join(dir, `${id}.sk`), join(dir, `${id}.pk`)],
      {
        env: { ...process.env, ...NIX_ENV },
      },
    );
    keys[id] = {
      secret: readFileSync(join(dir, `${id}.sk`), 'utf8').trim(),
      public: readFileSync(join(dir, `${id}.pk`), 'utf8').trim(),
    };
  }
  rmSync(dir, { recursive: true, force: true });
  host = await bootHost({
    hostname: 'biz',
    ...E2E_HOST,
    files: {
      '/root/svc.nix': HTTP_SERVICE_NIX,
      '/root/keys/one.sk': `${keys.one.secret}\n`,
      '/root/keys/two.sk': `${keys.two.secret}\n`,
      '/root/keys/evil.sk': `${keys.evil.secret}\n`,
      '/root/deploy/web.json': JSON.stringify({
        name: 'web',
        hosts: ['biz'],
        exec: { command: 'web' },
        env: { PORT: '8001' },
        http: { domain: 'example.com', path: '/', internalPort: 8001, healthCheck: '/healthz' },
      }),
      '/root/deploy/push.json': JSON.stringify({
        manifest: MANIFEST,
        cache: `s3://${BUCKET}?endpoint=${S3}&region=us-east-1`,
        keyFile: '/root/keys/one.sk',
        build:
          'nix-build --no-out-link /root/svc.nix --argstr prefix e2e-signed --argstr name {target} --argstr version "$VERSION"',
        specDir: '/root/deploy',
      }),
      [DEPLOYER_CONFIG]: deployerConfig([keys.one.public]),
      '/etc/e2e/caddy.json': caddyConfig(),
    },
  });
  await host.run('chmod', ['600', '/root/keys/one.sk', '/root/keys/two.sk', '/root/keys/evil.sk']);
  await startBucketAndCaddy(host, BUCKET);
  const init = await push(['init']);
  expect(init.exitCode, await explain(init)).toBe(0);
}, 240_000);

afterAll(async () => {
  await host?.stop();
});

describe('signed manifests in a booted host', { timeout: 300_000 }, () => {
  it('push deploy writes a signed manifest; the deployer verifies and applies it', async () => {
    for (const [version, previous] of [
      ['1', undefined],
      ['2', '1'],
      ['3', '2'],
    ] as const) {
      await deploy(version, previous);
      const r = await apply();
      expect(r.exitCode, await explain(r)).toBe(0);
      expect(await get('/')).toBe(`web ${version} 200`);
    }
    const signed = JSON.parse(await host.readFile(MANIFEST));
    expect(signed).toMatchObject({
      format: 'omni-deploy-signed-manifest',
      signature: { keyName: 'signed-e2e-1' },
    });
    const check = (key: string) =>
      node('bin/deployer.ts', ['validate', MANIFEST, '--trusted-public-key', key]);
    const ok = await check(keys.one.public);
    expect(ok.exitCode, await explain(ok)).toBe(0);
    expect(ok.stdout).toContain('signed by signed-e2e-1, verified');
    const other = await check(keys.two.public);
    expect(other.exitCode).toBe(1);
    expect(other.stderr).toContain('signature: manifest signature by key "signed-e2e-1" is not trusted here');
  });

  it.each<[string, () => Promise<void>, string, RegExp]>([
    [
      'the signed manifest with one byte changed',
      async () => {
        const text = await host.readFile(MANIFEST);
        await host.writeFile(MANIFEST, text.replace('8001', '8009')); // the first: env PORT inside the payload
      },
      'bad signature',
      /manifest signature by key "signed-e2e-1" does not verify: the manifest was changed after it was signed/,
    ],
    [
      'an unsigned manifest',
      async () => {
        const plain = { ...(await currentPayload()), generation: new Date().toISOString() };
        await host.writeFile(MANIFEST, `${JSON.stringify(plain, null, 2)}\n`);
      },
      'unsigned',
      /manifest is not signed: expected a signed manifest/,
    ],
    [
      'a manifest signed by another key',
      async () => {
        const plain = { ...(await currentPayload()), generation: new Date().toISOString() };
        await host.writeFile('/root/next.json', `${JSON.stringify(plain, null, 2)}\n`);
        const r = await node('test/e2e/driver.ts', [
          'publish',
          MANIFEST,
          '/root/next.json',
          '/root/keys/evil.sk',
        ]);
        expect(r.exitCode, await explain(r)).toBe(0);
      },
      'untrusted key',
      /manifest signature by key "evil-1" is not trusted here \(trusted: "signed-e2e-1"\)/,
    ],
    [
      'a replayed older manifest (the archived v1, validly signed)',
      async () => {
        const r = await node('test/e2e/driver.ts', ['restore', MANIFEST, archiveOf['1'] as string]);
        expect(r.exitCode, await explain(r)).toBe(0);
      },
      'stale',
      /stale or replayed manifest: generation \S+ is older than \S+, the last generation this host applied; nothing changed/,
    ],
  ])(
    'refuses %s: nothing changed, the reason in deployer status',
    async (_label, attack, reason, message) => {
      const pid = await mainPid();
      const before = await statusJson();
      await attack();
      const r = await apply();
      expect(r.exitCode, await explain(r)).toBe(1);
      expect(r.stdout).toMatch(/^tick invalid-manifest\n/);
      expect(r.stdout).toMatch(message);
      // Nothing changed: the same process serves v3, the state's services are as they were.
      expect(await get('/')).toBe('web 3 200');
      expect(await mainPid()).toBe(pid);
      const after = await statusJson();
      expect(after.services).toEqual(before.services);
      expect(after.generation).toBe(before.generation);
      expect(after.rejected.reason).toBe(reason.replace(' ', '_'));
      const text = await statusText();
      expect(text).toMatch(message);
      expect(text).toMatch(
        new RegExp(`\\nmanifest "[0-9a-f]+" refused .* \\(${reason}\\): nothing of it applied\\n`),
      );
    },
  );

  it('push deploy does not build on the put-back manifest: MANIFEST_STALE, exit 1, nothing written', async () => {
    const before = await host.readFile(MANIFEST);
    const r = await push(['deploy', 'web'], '9');
    expect(r.exitCode, await explain(r)).toBe(1);
    expect(r.stderr).toMatch(
      /the current manifest at \S+ was put back \(stale or replayed\): its generation \S+ is older than/,
    );
    expect(await host.readFile(MANIFEST)).toBe(before);
  });

  it('push rollback after that still works, and is applied', async () => {
    const r = await push(['rollback', '--to', archiveOf['2'] as string]);
    expect(r.exitCode, await explain(r)).toBe(0);
    expect(r.stdout).toContain(`restored the services of ${archiveOf['2']}`);
    const applied = await apply();
    expect(applied.exitCode, await explain(applied)).toBe(0);
    expect(await get('/')).toBe('web 2 200');
    expect(await statusText()).not.toContain('refused');
    const history = await push(['history']);
    expect(history.stdout.split('\n')[1]).toMatch(
      new RegExp(`^current +\\S+ \\(rollback to ${archiveOf['2']}\\) +-$`),
    );
  });

  it('key rotation: hosts trust old + new, push switches keys, hosts keep converging; the old key dropped', async () => {
    // 1. Hosts trust both keys: the manifest signed by the old one still is the current one.
    await host.writeFile(DEPLOYER_CONFIG, deployerConfig([keys.one.public, keys.two.public]));
    const both = await apply();
    expect(both.exitCode, await explain(both)).toBe(0);
    expect(both.stdout).toBe('tick unchanged\n');

    // 2. push switches to the new key, trusting the old one for the manifest it builds on.
    const switched = await deploy(
      '4',
      undefined,
      '--key-file',
      '/root/keys/two.sk',
      '--trusted-public-key',
      keys.one.public,
    );
    expect(switched.stdout).toContain('signed by signed-e2e-2');
    const four = await apply();
    expect(four.exitCode, await explain(four)).toBe(0);
    expect(await get('/')).toBe('web 4 200');

    // 3. The old key dropped from the hosts: they keep converging on what the new key signs.
    await host.writeFile(DEPLOYER_CONFIG, deployerConfig([keys.two.public]));
    expect((await apply()).stdout).toBe('tick unchanged\n');
    await deploy('5', undefined, '--key-file', '/root/keys/two.sk');
    const five = await apply();
    expect(five.exitCode, await explain(five)).toBe(0);
    expect(await get('/')).toBe('web 5 200');

    // ...and refuse what the old key signs from now on.
    const plain = { ...(await currentPayload()), generation: new Date().toISOString() };
    await host.writeFile('/root/next.json', `${JSON.stringify(plain, null, 2)}\n`);
    const old = await node('test/e2e/driver.ts', [
      'publish',
      MANIFEST,
      '/root/next.json',
      '/root/keys/one.sk',
    ]);
    expect(old.exitCode, await explain(old)).toBe(0);
    const refused = await apply();
    expect(refused.exitCode).toBe(1);
    expect(refused.stdout).toContain(
      'manifest signature by key "signed-e2e-1" is not trusted here (trusted: "signed-e2e-2")',
    );
    expect(await get('/')).toBe('web 5 200');
  });
});
