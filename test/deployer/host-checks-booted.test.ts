/**
 * HostChecks in a really booted systemd host (test/host): a listener's unit comes from its cgroup, and the
 * systemd behaviour the policy relies on is real: DynamicUser=yes runs as a static account of the given name
 * (root included), and a dynamic user named after the unit uses a static account of that name (uid 0 if that
 * account is an alias of root). checkHostFacts refuses both, and a port some other unit listens on.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHostChecks, gatherHostFacts, type HostChecks } from '../../src/deployer/host-checks.js';
import { checkHostFacts, DEFAULT_HOST_POLICY, hostFactsQuery } from '../../src/policy/index.js';
import { makeService } from '../builders.js';
import { type BootedHost, bootHost } from '../host/index.js';
import { CTX } from '../policy/support.js';

let host: BootedHost;
let checks: HostChecks;

beforeAll(async () => {
  host = await bootHost({
    hostname: 'biz',
    mask: ['postgresql.service', 'postgresql@15-main.service', 'caddy.service'],
  });
  checks = createHostChecks(host.shell);
}, 120_000);
afterAll(() => host?.stop());

/** Polls until `check` holds (a transient unit takes a moment to listen). */
async function until<T>(what: string, read: () => Promise<T>, check: (value: T) => boolean): Promise<T> {
  for (let i = 0; i < 200; i++) {
    const value = await read();
    if (check(value)) return value;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`timed out waiting until ${what}`);
}

describe('HostChecks in a booted host', () => {
  it('names the unit that listens on a port', async () => {
    await host.run('systemd-run', [
      '--unit=exporter-probe',
      '--property=DynamicUser=yes',
      '/usr/bin/node',
      '-e',
      "require('net').createServer().listen(19100, '127.0.0.1')",
    ]);
    const listeners = await until(
      'exporter-probe listens',
      () => checks.listeners(19100),
      (l) => l.length > 0,
    );
    expect(listeners).toEqual([
      expect.objectContaining({
        address: '127.0.0.1:19100',
        unit: 'exporter-probe.service',
        process: 'node',
      }),
    ]);

    // A service of ours whose internalPort is that port is refused; the unit itself would be its own.
    const web = makeService({ http: { domain: 'example.com', path: '/', internalPort: 19100 } });
    const facts = await gatherHostFacts(
      hostFactsQuery(web, DEFAULT_HOST_POLICY, 'deploy-web.service'),
      checks,
    );
    const refused = checkHostFacts(web, facts, DEFAULT_HOST_POLICY, {
      ...CTX,
      ownUnits: ['deploy-web.service'],
    });
    expect(refused).toEqual([
      {
        path: 'service.http.internalPort',
        rule: 'port.in-use',
        message: expect.stringContaining('unit exporter-probe.service (node'),
      },
    ]);
    const own = checkHostFacts(web, facts, DEFAULT_HOST_POLICY, {
      ...CTX,
      ownUnits: ['exporter-probe.service'],
    });
    expect(own).toEqual([]);
    await host.run('systemctl', ['stop', 'exporter-probe.service']);
  });

  it('DynamicUser=yes with User=root runs as root: the name rule applies under a dynamic user too', async () => {
    const out = await host.run('systemd-run', [
      '--wait',
      '--pipe',
      '--quiet',
      '--property=DynamicUser=yes',
      '--property=User=root',
      '/usr/bin/id',
      '-u',
    ]);
    expect(out.trim()).toBe('0');
  });

  it('an alias of root named like the unit makes the dynamic user root: refused at pre-flight', async () => {
    await host.run('useradd', ['--non-unique', '--uid', '0', '--gid', '0', '--no-create-home', 'deploy-dyn']);
    const out = await host.run('systemd-run', [
      '--wait',
      '--pipe',
      '--quiet',
      '--unit=deploy-dyn',
      '--property=DynamicUser=yes',
      '/usr/bin/id',
      '-u',
    ]);
    expect(out.trim()).toBe('0');

    const dyn = makeService({ name: 'dyn' });
    const facts = await gatherHostFacts(
      hostFactsQuery(dyn, DEFAULT_HOST_POLICY, 'deploy-dyn.service'),
      checks,
    );
    expect(facts.user).toMatchObject({ name: 'deploy-dyn', uid: 0, gid: 0 });
    const issues = checkHostFacts(dyn, facts, DEFAULT_HOST_POLICY, {
      ...CTX,
      ownUnits: ['deploy-dyn.service'],
    });
    expect(issues.map((i) => `${i.path} ${i.rule}`)).toEqual([
      'service.hardening.dynamicUser user.root',
      'service.hardening.dynamicUser group.root',
    ]);
  });

  it('resolves an account in a privileged group by id', async () => {
    await host.run('useradd', ['--no-create-home', '--groups', 'disk', 'pil-web']);
    const web = makeService({ exec: { command: 'web', user: 'pil-web' } });
    const facts = await gatherHostFacts(
      hostFactsQuery(web, DEFAULT_HOST_POLICY, 'deploy-web.service'),
      checks,
    );
    const issues = checkHostFacts(web, facts, DEFAULT_HOST_POLICY, {
      ...CTX,
      ownUnits: ['deploy-web.service'],
    });
    expect(issues).toEqual([
      {
        path: 'service.exec.user',
        rule: 'group.privileged',
        message: expect.stringMatching(
          /^account "pil-web" is in privileged group\(s\) disk \(\d+\) on this host$/,
        ),
      },
    ]);
  });
});
