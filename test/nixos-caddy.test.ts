/**
 * What the NixOS module does to Caddy, in a really booted systemd host with Debian's Caddy 2.6.2 run by the
 * command lines NixOS's caddy module uses (examples/nixos/eval/host.nix) and the module's own lines from the
 * evaluation snapshot: without the module's RuntimeDirectory Caddy does not start (the reported failure); with
 * it, Caddy's admin API listens on /run/caddy/admin.sock, and a start and a reload of Caddy each start a tick of
 * omni-deployer.service. And the pitfall of `resume` on a host whose Caddy ran before. The server name line
 * is left out of the Caddyfile: it needs Caddy 2.6.3.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BootedHost, bootHost } from './host/index.js';
import {
  type NixosUnit,
  readSnapshot,
  renderNixosUnit,
  renderSection,
  replaceStorePaths,
  type UnitValue,
} from './support/nixos-eval.js';

const { biz } = readSnapshot().hosts;
const TICKS = '/var/lib/omni-ticks';
const RECORDER = '/usr/local/libexec/omni-tick';
const AUTOSAVE = '/var/lib/caddy/.config/caddy/autosave.json';

let host: BootedHost;

/** Stub store paths → this host's programs; the deployer → a recorder of its runs. */
const onDebian = (text: string) =>
  replaceStorePaths(text, (name, program) => {
    if (program === undefined) return '/usr';
    return name.startsWith('omni-deploy-') ? RECORDER : `/usr/bin/${program}`;
  });

const dropIn = (serviceConfig: Record<string, UnitValue>) =>
  onDebian(`[Service]\n${renderSection(serviceConfig)}`);

const caddyConfig = biz.services.caddy?.serviceConfig ?? {};

beforeAll(async () => {
  host = await bootHost({ hostname: 'biz', mask: ['postgresql.service', 'postgresql@15-main.service'] });
  // NixOS's caddy module writes `{ globalConfig }` then extraConfig to /etc/caddy/caddy_config.
  const global = biz.caddy.globalConfig.replace(/servers :80 \{\n {2}name omni\n\}\n/, '');
  await host.writeFile('/etc/caddy/caddy_config', `{\n${global}}\n${biz.caddy.extraConfig}`);
  await host.writeFile(RECORDER, `#!/bin/sh\necho "$*" >> ${TICKS}\n`, 0o755);
  await host.writeFile(
    '/etc/omni-deploy/deployer.env',
    '# no S3 credentials: the deployer is a recorder here\n',
  );
  const unit = renderNixosUnit(biz.services['omni-deployer'] as NixosUnit, 'Service');
  await host.writeFile('/etc/systemd/system/omni-deployer.service', onDebian(unit));
}, 120_000);

afterAll(async () => {
  await host?.stop();
});

const ticks = async () => (await host.exec('cat', [TICKS])).stdout.split('\n').filter(Boolean).length;

async function waitForTicks(n: number): Promise<number> {
  for (let i = 0; i < 100 && (await ticks()) < n; i++) await new Promise((r) => setTimeout(r, 100));
  return ticks();
}

async function restartCaddy(serviceConfig: Record<string, UnitValue>) {
  await host.writeFile('/etc/systemd/system/caddy.service.d/overrides.conf', dropIn(serviceConfig));
  await host.run('systemctl', ['daemon-reload']);
  return host.exec('systemctl', ['restart', 'caddy.service']);
}

describe('the module on Caddy (Debian 2.6.2, NixOS command lines)', () => {
  it('a Caddy that ran before resumes its autosaved config (--resume), old admin address included, until it is removed', async () => {
    // The Caddy that booted (Debian's config, admin on localhost:2019) autosaved it, as any Caddy does.
    const r = await restartCaddy(caddyConfig);
    expect(r.exitCode, await host.journal('caddy.service')).toBe(0);
    expect((await host.exec('test', ['-S', '/run/caddy/admin.sock'])).exitCode).not.toBe(0);
    expect(await waitForTicks(1)).toBe(1); // the start's tick, which then cannot reach Caddy
    // NixOS's reload (`caddy reload --config`) dials the new config's admin address: nobody listens there.
    expect((await host.exec('systemctl', ['reload', 'caddy.service'])).exitCode).not.toBe(0);
    // The one-time step of docs/operations.md: remove the autosave, then start Caddy again.
    await host.run('systemctl', ['stop', 'caddy.service']);
    await host.run('rm', [AUTOSAVE]);
  });

  it('without RuntimeDirectory, Caddy cannot create its admin socket and does not start', async () => {
    const { RuntimeDirectory: _, RuntimeDirectoryMode: __, ...rest } = caddyConfig;
    const r = await restartCaddy(rest);
    expect(r.exitCode).not.toBe(0);
    expect(await host.journal('caddy.service')).toMatch(
      /listen unix \/run\/caddy\/admin\.sock: bind: no such file or directory/,
    );
  });

  it('with the module: /run/caddy (0750, caddy) holds the admin socket, and the start runs a tick', async () => {
    const before = await ticks();
    const r = await restartCaddy(caddyConfig);
    expect(r.exitCode, await host.journal('caddy.service')).toBe(0);
    expect((await host.run('stat', ['-c', '%a %U', '/run/caddy'])).trim()).toBe('750 caddy');
    // On a unix socket Caddy accepts only an empty Host header (as src/caddy/http-admin.ts sends it).
    const config = await host.run('curl', [
      '-sf',
      '-H',
      'Host;',
      '--unix-socket',
      '/run/caddy/admin.sock',
      'http://x/config/',
    ]);
    expect(JSON.parse(config)).toMatchObject({
      admin: { listen: 'unix//run/caddy/admin.sock' },
      apps: { http: { servers: { srv0: { listen: [':80'] } } } },
    });
    expect(await waitForTicks(before + 1), await host.journal('omni-deployer.service')).toBe(before + 1);
    expect((await host.readFile(TICKS)).split('\n').at(-2)).toBe(
      'apply --config /etc/omni-deploy/deployer.json',
    );
  });

  it('a reload of Caddy (NixOS: caddy reload, then the tick) runs another tick', async () => {
    const before = await ticks();
    await host.run('systemctl', ['reload', 'caddy.service']);
    expect(await waitForTicks(before + 1), await host.journal('caddy.service')).toBe(before + 1);
    expect((await host.run('systemctl', ['is-active', 'caddy.service'])).trim()).toBe('active');
  });
});
