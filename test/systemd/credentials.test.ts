/**
 * Secrets as systemd credentials, through a really booted systemd: a service whose manifest names a credential
 * reads it from $CREDENTIALS_DIRECTORY (systemd copies the root-only file there for that unit alone), while a
 * second service of the deployer cannot read the source file, nor the first unit's copy, and has no credential
 * directory of its own.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertManifest, type Service } from '../../src/manifest/index.js';
import { createSystemd, renderUnit, type Systemd } from '../../src/systemd/index.js';
import { makeManifest, makeService } from '../builders.js';
import { type BootedHost, bootHost, buildService, wrapper } from '../host/index.js';
import { waitForStatus } from './contract.js';

const SECRET = 'correct horse battery staple';
const SOURCE = '/var/lib/biz-secrets/reader/token';

let host: BootedHost;
let systemd: Systemd;
let closure = '';

beforeAll(async () => {
  closure = await buildService({
    name: 'read-files-1.0',
    files: {
      'bin/read-files': wrapper('/usr/bin/node', 'lib/read-files.js'),
      'lib/read-files.js': readFileSync(new URL('programs/read-files.js', import.meta.url), 'utf8'),
    },
  });
  host = await bootHost({
    hostname: 'biz',
    mask: ['postgresql.service', 'postgresql@15-main.service', 'caddy.service'],
  });
  systemd = createSystemd({ shell: host.shell, rootDir: host.root });
}, 180_000);

afterAll(async () => {
  await host?.stop();
});

interface Out {
  credentials: string | null;
  reads: Record<string, string>;
  env: Record<string, string>;
}

/** Validates, renders, installs and starts one service; waits for its state, then for its report. */
async function run(service: Service, done: (status: { activeState: string }) => boolean): Promise<Out> {
  const [validated] = assertManifest(makeManifest([service])).services as [Service];
  const unit = renderUnit(validated);
  await systemd.installUnit(unit);
  await systemd.daemonReload();
  await systemd.start(unit.name);
  const status = await waitForStatus(systemd, unit.name, done);
  // An active service may not have written its report yet: it is written once, atomically.
  const file = `/var/lib/${service.name}/out.json`;
  let out = '';
  for (let i = 0; i < 100 && !out; i++) {
    out = await host.readFile(file).catch(() => '');
    if (!out) await new Promise((resolve) => setTimeout(resolve, 100));
  }
  expect(out, `${JSON.stringify(status)}\n${await host.journal(unit.name)}`).not.toBe('');
  return JSON.parse(out) as Out;
}

const reader = (args: string[]) =>
  makeService({
    name: 'reader',
    artifact: { type: 'nix-closure', storePath: closure },
    exec: { command: 'read-files', args },
    credentials: { token: SOURCE },
    systemd: { restart: 'no' },
    hardening: { stateDirectory: ['reader'] },
  });

describe('credentials through a real systemd', () => {
  it('the service reads its credential from $CREDENTIALS_DIRECTORY; the file itself stays closed to it', async () => {
    await host.run('install', ['-d', '-m', '0700', '/var/lib/biz-secrets', '/var/lib/biz-secrets/reader']);
    await host.writeFile(SOURCE, SECRET, 0o600);
    const out = await run(reader(['cred:token', SOURCE, '--stay']), (s) => s.activeState === 'active');
    expect(out.credentials).toBe('/run/credentials/deploy-reader.service');
    expect(out.reads).toEqual({ 'cred:token': SECRET, [SOURCE]: 'error: EACCES' });
    // Not in the environment, so no child process inherits it.
    expect(JSON.stringify(out.env)).not.toContain(SECRET);
  });

  it("another service cannot read the source file, nor the first unit's copy, and has no credentials", async () => {
    expect((await systemd.status('deploy-reader.service')).activeState).toBe('active');
    const copy = '/run/credentials/deploy-reader.service/token';
    const other = makeService({
      name: 'other',
      artifact: { type: 'nix-closure', storePath: closure },
      exec: { command: 'read-files', args: [SOURCE, copy, 'cred:token'] },
      systemd: { restart: 'no' },
      hardening: { stateDirectory: ['other'] },
    });
    const out = await run(other, (s) => s.activeState !== 'active' && s.activeState !== 'activating');
    expect(out.credentials).toBeNull();
    expect(out.reads).toEqual({
      [SOURCE]: 'error: EACCES',
      [copy]: 'error: EACCES',
      'cred:token': 'error: ENOENT',
    });
    // The copy is really there for its own unit: only the permissions keep the other one out.
    expect(await host.readFile(copy)).toBe(SECRET);
    await systemd.stop('deploy-reader.service');
  });
});
