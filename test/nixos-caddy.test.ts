/**
 * What the NixOS module does to Caddy, in a really booted systemd host with Debian's Caddy 2.6.2 and the
 * module's own lines for caddy.service from the evaluation snapshot (which replace NixOS's command lines), the
 * real deployer as its package, and the generated /etc/omni-deploy/deployer.json: without the module's
 * RuntimeDirectory Caddy does not start (the reported failure); with it, Caddy starts from the config
 * `deployer caddy-config` wrote (/run/caddy-omni/caddy.json, the caddy user's, 0600) with its admin API on
 * /run/caddy/admin.sock, even when an autosave of an earlier Caddy says otherwise (no `--resume`); a reload
 * after a Caddyfile change writes the config again and Caddy loads it. The routes across reloads and restarts
 * under load are test/e2e/caddy.e2e.test.ts's.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO, TSX } from './e2e/support.js';
import { type BootedHost, bootHost } from './host/index.js';
import { caddyDropInOnDebian, nixosCaddyfile, readSnapshot, type UnitValue } from './support/nixos-eval.js';

const { biz } = readSnapshot().hosts;
const AUTOSAVE = '/var/lib/caddy/.config/caddy/autosave.json';
const CADDY_CONFIG = '/etc/caddy/caddy_config';
const WRITTEN = '/run/caddy-omni/caddy.json';
/** The host's own site, as a NixOS host would give it (services.caddy.virtualHosts or extraConfig). */
const OWN_SITE = ':80 {\n\trespond "own site"\n}\n';

let host: BootedHost;

const caddyConfig = biz.services.caddy?.serviceConfig ?? {};

beforeAll(async () => {
  host = await bootHost({
    hostname: 'biz',
    mask: ['postgresql.service', 'postgresql@15-main.service', 'tmp.mount'],
    bindReadOnly: [REPO],
    files: { '/etc/omni-deploy/deployer.json': JSON.stringify(biz.deployerConfig) },
  });
  await host.writeFile(
    '/usr/local/bin/deployer',
    `#!/bin/sh\nexec /usr/bin/node --import ${TSX} ${REPO}/bin/deployer.ts "$@"\n`,
    0o755,
  );
  await host.writeFile(CADDY_CONFIG, nixosCaddyfile(biz.caddy, OWN_SITE));
}, 120_000);

afterAll(async () => {
  await host?.stop();
});

async function restartCaddy(serviceConfig: Record<string, UnitValue>) {
  await host.writeFile(
    '/etc/systemd/system/caddy.service.d/overrides.conf',
    caddyDropInOnDebian(serviceConfig),
  );
  await host.run('systemctl', ['daemon-reload']);
  return host.exec('systemctl', ['restart', 'caddy.service']);
}

/** Caddy's live config, through the admin socket (Caddy accepts only an empty Host header on a unix socket). */
async function liveConfig(): Promise<unknown> {
  const r = await host.run('curl', [
    '-sf',
    '-H',
    'Host;',
    '--unix-socket',
    '/run/caddy/admin.sock',
    'http://x/config/',
  ]);
  return JSON.parse(r);
}

describe('the module on Caddy (Debian 2.6.2, the module replacing NixOS command lines)', () => {
  it('without RuntimeDirectory caddy, Caddy cannot create its admin socket and does not start', async () => {
    // The Caddy that booted (Debian's config, admin on localhost:2019) has autosaved its config, as any does.
    expect((await host.exec('test', ['-f', AUTOSAVE])).exitCode).toBe(0);
    const runtime = caddyConfig.RuntimeDirectory as string[];
    expect(runtime).toEqual(['caddy', 'caddy-omni']);
    const r = await restartCaddy({ ...caddyConfig, RuntimeDirectory: runtime.filter((d) => d !== 'caddy') });
    expect(r.exitCode).not.toBe(0);
    expect(await host.journal('caddy.service')).toMatch(
      /listen unix \/run\/caddy\/admin\.sock: bind: no such file or directory/,
    );
  });

  it("with the module: Caddy starts from the config caddy-config wrote (the earlier Caddy's autosave ignored), admin API on /run/caddy/admin.sock", async () => {
    const r = await restartCaddy(caddyConfig);
    expect(r.exitCode, await host.journal('caddy.service')).toBe(0);
    expect((await host.run('stat', ['-c', '%a %U', '/run/caddy'])).trim()).toBe('750 caddy');
    expect((await host.run('stat', ['-c', '%a %U', WRITTEN])).trim()).toBe('600 caddy');
    // The deployer has deployed nothing here: the host's config as it is, written by the deployer, loaded.
    expect(await host.journal('caddy.service')).toContain(
      "caddy-config: no routes of the deployer: the host's config as it is; written to /run/caddy-omni/caddy.json",
    );
    const written = JSON.parse(await host.readFile(WRITTEN));
    expect(written).toMatchObject({
      admin: { listen: 'unix//run/caddy/admin.sock' },
      apps: { http: { servers: { srv0: { listen: [':80'] } } } },
    });
    expect(await liveConfig()).toEqual(written);
    expect((await host.exec('curl', ['-s', 'http://127.0.0.1/'])).stdout).toBe('own site');
  });

  it('a reload after a Caddyfile change (NixOS: a switch that changes it) writes the config again and Caddy loads it', async () => {
    await host.writeFile(
      CADDY_CONFIG,
      nixosCaddyfile(biz.caddy, `${OWN_SITE}:8082 {\n\trespond "third site"\n}\n`),
    );
    const r = await host.exec('systemctl', ['reload', 'caddy.service']);
    expect(r.exitCode, await host.journal('caddy.service')).toBe(0);
    expect((await host.exec('curl', ['-s', 'http://127.0.0.1:8082/'])).stdout).toBe('third site');
    expect(await liveConfig()).toEqual(JSON.parse(await host.readFile(WRITTEN)));
    expect((await host.run('systemctl', ['is-active', 'caddy.service'])).trim()).toBe('active');
  });
});
