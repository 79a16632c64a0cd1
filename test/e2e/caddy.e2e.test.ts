/**
 * The deployer beside Caddy as Debian's package installs it, in a really booted host (caddy.service enabled by
 * apt, the stock /etc/caddy/Caddyfile: one `:80` site, server srv0, admin API on localhost:2019), with only the
 * deployer's required settings. One story, in order:
 *
 * 1. the service answers through Caddy with no Caddy setting at all (routes in srv0, ahead of its catch-all);
 * 2. with the caddy.service drop-in of examples/caddy/ (verified with systemd-analyze verify), a Caddyfile
 *    change + `systemctl reload caddy` and a `systemctl restart caddy` under load: 0 failed requests to the
 *    deployed site across the reload, and across the restart none once the host's own site answers again;
 * 3. HTTPS: a Caddyfile with `local_certs` and a site on :443, reloaded: the deployed service answers over TLS
 *    for its manifest domain (a certificate of Caddy's local CA), HTTP redirects to it, the host's site still
 *    answers; no tick was needed for any of it;
 * 4. the NixOS module's lines for caddy.service (from its evaluation snapshot) on the same unit, with Caddy's
 *    config where NixOS puts it (admin API on a unix socket): reload and restart under load lose nothing either.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BootedHost } from '../host/index.js';
import { caddyDropInOnDebian, nixosCaddyfile, readSnapshot } from '../support/nixos-eval.js';
import {
  bootCaddyHost,
  CADDYFILE,
  countBetween,
  DOMAIN,
  DROP_IN,
  DROP_IN_TEXT,
  deployerApply,
  failedAfterRecovery,
  getSite,
  OWN,
  prepareWeb,
  startLoad,
  WEB,
  type WebClosure,
  waitActive,
} from './caddy-host.js';

/** Where NixOS's caddy module puts Caddy's config, and the module's lines for caddy.service here. */
const NIXOS_CADDYFILE = '/etc/caddy/caddy_config';
const NIXOS_DROP_IN = '/etc/systemd/system/caddy.service.d/overrides.conf';
const { biz } = readSnapshot().hosts;

const CA_ROOT = '/var/lib/caddy/.local/share/caddy/pki/authorities/local/root.crt';

let host: BootedHost;
let web: WebClosure;
let stockCaddyfile = '';

beforeAll(async () => {
  web = await prepareWeb();
  host = await bootCaddyHost(web);
  stockCaddyfile = await host.readFile(CADDYFILE);
}, 300_000);

afterAll(async () => {
  await host?.stop();
  web?.remove();
}, 60_000);

const caddyConfig = async () =>
  JSON.parse(await host.run('curl', ['-sf', 'http://localhost:2019/config/'])) as {
    apps: { http: { servers: Record<string, { listen: string[]; routes: { '@id'?: string }[] }> } };
  };

describe('Caddy as Debian installs it, and the deployer with its required settings only', () => {
  it('serves the deployed service through the stock Caddyfile, ahead of its :80 catch-all', async () => {
    // The package as apt leaves it: its Caddyfile unchanged (the conffile's md5), its unit enabled and running.
    const conffile = await host.run('dpkg-query', ['-W', '-f=${Conffiles}', 'caddy']);
    const md5 = (await host.run('md5sum', [CADDYFILE])).split(' ')[0] as string;
    expect(conffile).toContain(`${CADDYFILE} ${md5}`);
    expect((await host.run('systemctl', ['is-enabled', 'caddy.service'])).trim()).toBe('enabled');

    const r = await deployerApply(host);
    expect(r.exitCode, `${r.stdout}\n${r.stderr}`).toBe(0);
    expect(r.stderr).toContain('routes in server srv0 (listens on :80)');
    expect(await getSite(host, DOMAIN)).toBe('web 1 200');
    expect(await getSite(host, 'localhost')).toMatch(/Caddy.* 200$/);
    const srv0 = (await caddyConfig()).apps.http.servers.srv0;
    expect(srv0?.listen).toEqual([':80']);
    expect(srv0?.routes.map((route) => route['@id'])).toEqual(['omni-deploy:web', undefined]);
  }, 120_000);
});

describe('with the caddy.service drop-in', () => {
  it('passes systemd-analyze verify as installed', async () => {
    await host.writeFile(DROP_IN, DROP_IN_TEXT);
    const r = await host.exec('systemd-analyze', ['verify', 'caddy.service']);
    expect({ status: r.exitCode, stderr: r.stderr }).toEqual({ status: 0, stderr: '' });
    await host.run('systemctl', ['daemon-reload']);
    expect(await host.run('systemctl', ['show', '-p', 'ExecStart', '--value', 'caddy.service'])).toContain(
      '/run/caddy-omni/caddy.json',
    );
  });

  it('a Caddyfile change + reload, then a restart, under load: no deployed request lost to either', async () => {
    await host.run('systemctl', ['restart', 'caddy.service']);
    await waitActive(host, 'caddy.service');
    expect(await getSite(host, DOMAIN)).toBe('web 1 200');
    // The config Caddy runs from is Caddy's alone to read.
    expect(await host.run('stat', ['-c', '%U %a', '/run/caddy-omni/caddy.json'])).toBe('caddy 600\n');

    const load = await startLoad(host, [OWN, WEB]);
    const reloadStart = Date.now();
    await host.writeFile(CADDYFILE, `${stockCaddyfile}\n:8081 {\n\trespond "second site"\n}\n`);
    await host.run('systemctl', ['reload', 'caddy.service']);
    await new Promise((r) => setTimeout(r, 1500));
    const restartStart = Date.now();
    const reloadEnd = restartStart;
    await host.run('systemctl', ['restart', 'caddy.service']);
    await waitActive(host, 'caddy.service');
    await new Promise((r) => setTimeout(r, 2000));
    const restartEnd = Date.now();
    const report = await load.stop();

    // The reload took effect (the new site answers) and the deployed site never missed a request.
    expect((await host.exec('curl', ['-s', 'http://127.0.0.1:8081/'])).stdout).toBe('second site');
    const reload = countBetween(report, WEB.name, reloadStart, reloadEnd);
    expect(reload.ok).toBeGreaterThan(20);
    expect({ failed: reload.failed, errors: report.errors[WEB.name] }).toMatchObject({ failed: 0 });
    expect(countBetween(report, OWN.name, reloadStart, reloadEnd).failed).toBe(0);
    // A restart closes the listener for every site; the deployed one is back the moment the host's own is.
    expect(
      failedAfterRecovery(report, WEB.name, OWN.name, restartStart, restartEnd),
      `${JSON.stringify(report.errors[WEB.name]?.slice(-5))}\n${await host.journal('caddy.service')}`,
    ).toBe(0);
    expect(countBetween(report, WEB.name, restartStart, restartEnd).ok).toBeGreaterThan(10);
  }, 120_000);

  it('HTTPS with local_certs and a site on :443: the deployed service over TLS for its domain, with the redirect', async () => {
    await host.writeFile(
      CADDYFILE,
      '{\n\tlocal_certs\n\tskip_install_trust\n}\n\nhost.test {\n\trespond "host site"\n}\n',
    );
    await host.run('systemctl', ['reload', 'caddy.service']);
    // No tick since: the reload itself put the route into the new config, in the :443 server.
    const srv0 = (await caddyConfig()).apps.http.servers.srv0;
    expect(srv0?.listen).toEqual([':443']);
    expect(srv0?.routes.map((route) => route['@id'])).toEqual(['omni-deploy:web', undefined]);

    const https = (name: string) =>
      host.exec('curl', [
        '-s',
        '--cacert',
        CA_ROOT,
        '--resolve',
        `${name}:443:127.0.0.1`,
        '-w',
        ' %{http_code} %{ssl_verify_result}',
        `https://${name}/`,
      ]);
    // Caddy gets the certificate from its local CA on the first handshake: allow it a few tries.
    let r = await https(DOMAIN);
    for (let i = 0; i < 50 && r.exitCode !== 0; i++) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      r = await https(DOMAIN);
    }
    expect(r.stdout.replace(/\s+/g, ' ')).toBe('web 1 200 0');
    const issuer = await host.run('sh', [
      '-c',
      `openssl s_client -connect 127.0.0.1:443 -servername ${DOMAIN} </dev/null 2>/dev/null | openssl x509 -noout -issuer -subject -ext subjectAltName`,
    ]);
    expect(issuer).toMatch(/issuer=CN = Caddy Local Authority - ECC Intermediate/);
    expect(issuer).toContain(`DNS:${DOMAIN}`);
    expect((await https('host.test')).stdout).toBe('host site 200 0');

    const redirect = await host.exec('curl', [
      '-s',
      '-o',
      '/dev/null',
      '-w',
      '%{http_code} %{redirect_url}',
      '-H',
      `Host: ${DOMAIN}`,
      'http://127.0.0.1/',
    ]);
    expect(redirect.stdout).toBe(`308 https://${DOMAIN}/`);
    // And the next tick has nothing to do.
    const tick = await deployerApply(host, '--json');
    expect(tick.exitCode, tick.stderr).toBe(0);
    expect(JSON.parse(tick.stdout).routes).toMatchObject({ requests: 1, mutations: 0, refused: [] });
  }, 120_000);

  it("the NixOS module's lines for caddy.service (admin API on a unix socket, Caddy's start and reload through caddy-config): reload and restart under load lose nothing either", async () => {
    // The module's own lines from its evaluation (they replace NixOS's command lines, so the drop-in goes),
    // Caddy's config where NixOS puts it (the module's global options, the host's own site), and the
    // deployer's caddyAdmin from the module's config file.
    await host.run('rm', [DROP_IN]);
    await host.writeFile(NIXOS_DROP_IN, caddyDropInOnDebian(biz.services.caddy?.serviceConfig ?? {}));
    await host.writeFile(NIXOS_CADDYFILE, nixosCaddyfile(biz.caddy, stockCaddyfile));
    const config = JSON.parse(await host.readFile('/etc/omni-deploy/deployer.json'));
    await host.writeFile(
      '/etc/omni-deploy/deployer.json',
      JSON.stringify({ ...config, caddyAdmin: biz.deployerConfig.caddyAdmin }),
    );
    await host.run('systemctl', ['daemon-reload']);
    await host.run('systemctl', ['restart', 'caddy.service']);
    await waitActive(host, 'caddy.service');
    expect(await getSite(host, DOMAIN)).toBe('web 1 200');

    const servedBefore = (await host.journal('caddy.service')).split('(as Caddy serves it)').length;
    const load = await startLoad(host, [OWN, WEB]);
    const reloadStart = Date.now();
    await host.writeFile(
      NIXOS_CADDYFILE,
      nixosCaddyfile(biz.caddy, `${stockCaddyfile}\n:8082 {\n\trespond "third site"\n}\n`),
    );
    await host.run('systemctl', ['reload', 'caddy.service']);
    await new Promise((r) => setTimeout(r, 1500));
    const restartStart = Date.now();
    await host.run('systemctl', ['restart', 'caddy.service']);
    await waitActive(host, 'caddy.service');
    await new Promise((r) => setTimeout(r, 2000));
    const restartEnd = Date.now();
    const report = await load.stop();

    expect((await host.exec('curl', ['-s', 'http://127.0.0.1:8082/'])).stdout).toBe('third site');
    // The reload read the routes from Caddy, through the socket.
    expect((await host.journal('caddy.service')).split('(as Caddy serves it)').length).toBe(servedBefore + 1);
    const reload = countBetween(report, WEB.name, reloadStart, restartStart);
    expect(reload.ok).toBeGreaterThan(20);
    expect({ failed: reload.failed, errors: report.errors[WEB.name] }).toMatchObject({ failed: 0 });
    expect(failedAfterRecovery(report, WEB.name, OWN.name, restartStart, restartEnd)).toBe(0);
    const tick = await deployerApply(host, '--json');
    expect(tick.exitCode, tick.stderr).toBe(0);
    expect(JSON.parse(tick.stdout).routes).toMatchObject({ requests: 1, mutations: 0 });
  }, 120_000);
});
