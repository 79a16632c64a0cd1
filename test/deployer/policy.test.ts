/**
 * The host policy inside a tick (fakes): what the manifest asks for that the host does not give is refused
 * before anything of that service is touched; the rest of the manifest proceeds; refusals are reported in the
 * tick, the state, the host status and the metrics, and retried every tick.
 */
import { describe, expect, it } from 'vitest';
import { renderMetrics } from '../../src/deployer/metrics.js';
import type { HostStatus } from '../../src/deployer/status.js';
import type { PortListener } from '../../src/policy/index.js';
import { parseHostPolicy } from '../../src/policy/index.js';
import { storePath } from '../builders.js';
import { createWorld, FOREIGN_ROUTE, http } from './world.js';

const listener = (unit: string | undefined, pid: number): PortListener => ({
  address: '127.0.0.1:9100',
  pid,
  process: 'node_exporter',
  ...(unit === undefined ? {} : { unit }),
});

/** A good service, and one evil service per attack of the issue. */
async function goodAndEvil(world: Awaited<ReturnType<typeof createWorld>>) {
  return world.manifestOf([
    { name: 'web', version: '1.0', overrides: http(8000) },
    { name: 'rooted', version: '1.0', overrides: { exec: { command: 'rooted', user: 'root' } } },
    { name: 'secrets', version: '1.0', overrides: { hardening: { stateDirectory: ['biz-secrets'] } } },
    {
      name: 'shell',
      version: '1.0',
      overrides: { systemd: { wants: ['debug-shell.service'] } },
    },
    {
      name: 'evil',
      version: '1.0',
      overrides: { envFile: '/var/lib/biz-secrets/payments.env' },
    },
    {
      name: 'exporter',
      version: '1.0',
      overrides: { http: { domain: 'metrics.example.com', path: '/', internalPort: 9100 } },
    },
  ]);
}

describe('the host policy in a tick', () => {
  it('refuses each attack with its rule and field; nothing of them is pulled, written, started or routed; the good service is deployed', async () => {
    const world = await createWorld();
    world.checks.ports.set(9100, [listener('prometheus-node-exporter.service', 301)]);
    const manifest = await goodAndEvil(world);
    await world.publish(manifest);
    const report = await world.tick();

    expect(report.outcome).toBe('partial');
    const outcome = Object.fromEntries(report.results.map((r) => [r.name, r.outcome]));
    expect(outcome).toEqual({
      web: 'installed',
      rooted: 'refused',
      secrets: 'refused',
      shell: 'refused',
      evil: 'refused',
      exporter: 'refused',
    });
    const rules = Object.fromEntries(
      report.results
        .filter((r) => r.outcome === 'refused')
        .map((r) => [r.name, r.refusals?.map((x) => `${x.path} ${x.rule}`)]),
    );
    expect(rules).toEqual({
      rooted: ['services[1].exec.user user.root'],
      secrets: ['services[2].hardening.stateDirectory[0] state-directory.other-service'],
      shell: ['services[3].systemd.wants[0] dependency.unit'],
      evil: ['services[4].envFile env-file.not-own'],
      exporter: ['services[5].http.internalPort port.in-use'],
    });
    expect(report.results.find((r) => r.name === 'exporter')?.reason).toMatch(
      /^pre-flight: policy: services\[5\]\.http\.internalPort: port 9100 is taken on this host by unit prometheus-node-exporter\.service \(node_exporter 301\) on 127\.0\.0\.1:9100; .* \(rule port\.in-use\)$/,
    );
    expect(report.results.find((r) => r.name === 'rooted')?.reason).toBe(
      'policy: services[1].exec.user: "root" runs the service as uid 0 (rule user.root)',
    );

    // Nothing of the evil ones: no unit, no start, no closure pulled (the manifest-level refusals), no route.
    expect([...world.systemd.files.keys()]).toEqual(['deploy-web.service']);
    expect(
      world.systemdChanges().filter((c) => !c.endsWith('deploy-web.service') && c !== 'daemon-reload'),
    ).toEqual([]);
    for (const name of ['rooted', 'secrets', 'shell', 'evil'])
      expect(world.nix.store.has(storePath(`${name}-1.0`))).toBe(false);
    expect(world.routes()).toEqual({ 'omni-deploy:web': '127.0.0.1:8000', 'someone-else': 'foreign' });

    // Reported: events, state, status, metrics; the manifest is not settled (retried next tick).
    expect(
      world.events.filter((e) => e.type === 'service.refused').map((e) => [e.service, e.data?.refusals]),
    ).toContainEqual(['shell', [expect.objectContaining({ rule: 'dependency.unit' })]]);
    const state = world.state.current;
    expect(state?.manifest).toBeUndefined();
    expect(state?.refused?.map((r) => [r.service, r.scope, r.rule, r.path])).toEqual([
      ['rooted', 'service', 'user.root', 'services[1].exec.user'],
      ['secrets', 'service', 'state-directory.other-service', 'services[2].hardening.stateDirectory[0]'],
      ['shell', 'service', 'dependency.unit', 'services[3].systemd.wants[0]'],
      ['evil', 'service', 'env-file.not-own', 'services[4].envFile'],
      ['exporter', 'service', 'port.in-use', 'services[5].http.internalPort'],
    ]);
    const status = (await world.manifests.readStatus('biz'))?.status as HostStatus | undefined;
    expect(status?.refused).toEqual(state?.refused);
    expect(status?.refused?.[0]).toMatchObject({
      service: 'rooted',
      storePath: storePath('rooted-1.0'),
      since: new Date(world.clock.now()).toISOString(),
    });
    const metrics = renderMetrics(state as never, 'x');
    expect(metrics).toContain(
      'omni_deployer_service_refused{host="biz",service="evil",rule="env-file.not-own"} 1',
    );
    expect(metrics).toContain(
      'omni_deployer_service_refused{host="biz",service="exporter",rule="port.in-use"} 1',
    );
  });

  it('retries a refused service every tick: the same refusal changes nothing; a freed port lets it in', async () => {
    const world = await createWorld();
    world.checks.ports.set(9100, [listener('prometheus-node-exporter.service', 301)]);
    await world.publish(
      await world.manifestOf([
        { name: 'web', version: '1.0', overrides: http(8000) },
        {
          name: 'exporter',
          version: '1.0',
          overrides: { http: { domain: 'metrics.example.com', path: '/', internalPort: 9100 } },
        },
      ]),
    );
    const first = await world.tick();
    expect(first.results.find((r) => r.name === 'exporter')?.outcome).toBe('refused');
    const since = world.state.current?.refused?.[0]?.since;
    const saves = world.state.saves.length;
    const published = world.manifests.objects.requests.filter((r) => r.method === 'PUT').length;

    await world.clock.sleep(60_000);
    const again = await world.tick();
    expect(again.outcome).toBe('partial');
    expect(again.message).toBe(first.message);
    expect(world.state.current?.refused?.[0]?.since).toBe(since);
    expect(world.state.saves.length).toBe(saves);
    expect(world.manifests.objects.requests.filter((r) => r.method === 'PUT').length).toBe(published);

    world.checks.ports.delete(9100);
    const freed = await world.tick();
    expect(freed.outcome).toBe('applied');
    expect(freed.results.find((r) => r.name === 'exporter')?.outcome).toBe('installed');
    expect(world.state.current?.refused).toBeUndefined();
    expect(world.state.current?.manifest).toBeDefined();
    expect(((await world.manifests.readStatus('biz'))?.status as HostStatus | undefined)?.refused).toEqual(
      [],
    );
  });

  it('a running service whose new version is refused keeps running as it is', async () => {
    const world = await createWorld();
    await world.publish(await world.manifestOf([{ name: 'web', version: '1.0', overrides: http(8000) }]));
    await world.tick();
    const unit = world.systemd.files.get('deploy-web.service');
    world.systemd.calls.length = 0;
    await world.publish(
      await world.manifestOf([
        {
          name: 'web',
          version: '2.0',
          overrides: { ...http(8000), hardening: { dynamicUser: false } },
        },
      ]),
    );
    const report = await world.tick();
    expect(report.results).toEqual([
      expect.objectContaining({
        name: 'web',
        action: 'update',
        outcome: 'refused',
        refusals: [expect.objectContaining({ rule: 'user.root', path: 'services[0].hardening.dynamicUser' })],
      }),
    ]);
    expect(world.systemdChanges()).toEqual([]);
    expect(world.systemd.files.get('deploy-web.service')).toBe(unit);
    expect(world.state.current?.services.web?.storePath).toBe(storePath('web-1.0'));
    expect(world.routes()['omni-deploy:web']).toBe('127.0.0.1:8000');
  });

  it('two services swapping ports do not refuse each other; a unit of ours the manifest does not move holds its port', async () => {
    const world = await createWorld();
    await world.publish(
      await world.manifestOf([
        { name: 'web', version: '1.0', overrides: http(8000) },
        { name: 'api', version: '1.0', overrides: http(8001, '/api') },
      ]),
    );
    await world.tick();
    world.checks.ports.set(8000, [{ address: '127.0.0.1:8000', pid: 10, unit: 'deploy-web.service' }]);
    world.checks.ports.set(8001, [{ address: '127.0.0.1:8001', pid: 11, unit: 'deploy-api.service' }]);
    await world.publish(
      await world.manifestOf([
        { name: 'web', version: '1.0', overrides: http(8001) },
        { name: 'api', version: '1.0', overrides: http(8000, '/api') },
      ]),
    );
    const swapped = await world.tick();
    expect(swapped.results.map((r) => [r.name, r.outcome]).sort()).toEqual([
      ['api', 'updated'],
      ['web', 'updated'],
    ]);

    // A unit of ours that the manifest does not move off a port (here one it does not know) holds it.
    world.checks.ports.set(8002, [{ address: '127.0.0.1:8002', pid: 12, unit: 'deploy-cron.service' }]);
    await world.publish(
      await world.manifestOf([
        { name: 'web', version: '1.0', overrides: http(8001) },
        { name: 'api', version: '1.0', overrides: http(8000, '/api') },
        {
          name: 'blog',
          version: '1.0',
          overrides: { http: { domain: 'blog.example.com', path: '/', internalPort: 8002 } },
        },
      ]),
    );
    expect((await world.tick()).results.find((r) => r.name === 'blog')).toMatchObject({
      outcome: 'refused',
      refusals: [expect.objectContaining({ rule: 'port.in-use' })],
    });
  });

  it('pre-flight judges the numeric ids: an account with uid 0 under another name is root', async () => {
    const world = await createWorld();
    world.checks.accounts.set('toor', { uid: 0, gid: 0 });
    world.checks.users.add('toor');
    await world.publish(
      await world.manifestOf([
        { name: 'web', version: '1.0', overrides: { exec: { command: 'web', user: 'toor' } } },
        { name: 'api', version: '1.0' },
      ]),
    );
    const report = await world.tick();
    expect(report.results.find((r) => r.name === 'web')).toMatchObject({
      outcome: 'refused',
      refusals: [
        {
          path: 'services[0].exec.user',
          rule: 'user.root',
          message: 'account "toor" has uid 0 on this host',
        },
        {
          path: 'services[0].exec.user',
          rule: 'group.root',
          message: 'account "toor" is in group id 0 on this host',
        },
      ],
    });
    expect(world.systemd.files.has('deploy-web.service')).toBe(false);
    expect(report.results.find((r) => r.name === 'api')?.outcome).toBe('installed');
  });

  it("applies the host's policy from its settings (an allowlist of users)", async () => {
    const parsed = parseHostPolicy({ users: ['pil-web'] });
    if (!parsed.ok) throw new Error('policy');
    const world = await createWorld({ settings: { policy: parsed.policy }, users: ['pil-web', 'postgres'] });
    await world.publish(
      await world.manifestOf([
        { name: 'web', version: '1.0', overrides: { exec: { command: 'web', user: 'pil-web' } } },
        { name: 'db', version: '1.0', overrides: { exec: { command: 'db', user: 'postgres' } } },
      ]),
    );
    const report = await world.tick();
    expect(report.results.map((r) => [r.name, r.outcome, r.refusals?.[0]?.rule]).sort()).toEqual([
      ['db', 'refused', 'user.not-allowed'],
      ['web', 'installed', undefined],
    ]);
  });

  it('refuses at pre-flight a service whose domain a foreign route names; the foreign route is untouched', async () => {
    const admin = {
      '@id': 'admin-site',
      match: [{ host: ['admin.example.com'] }],
      handle: [{ handler: 'static_response', body: 'admin' }],
    };
    const world = await createWorld({
      caddyConfig: {
        apps: { http: { servers: { omni: { listen: [':80'], routes: [admin, FOREIGN_ROUTE] } } } },
      },
    });
    await world.publish(
      await world.manifestOf([
        { name: 'web', version: '1.0', overrides: http(8000) },
        {
          name: 'takeover',
          version: '1.0',
          overrides: { http: { domain: 'ADMIN.example.com', path: '/', internalPort: 8002 } },
        },
      ]),
    );
    const report = await world.tick();
    expect(report.results.find((r) => r.name === 'takeover')).toMatchObject({
      outcome: 'refused',
      refusals: [{ path: 'services[1].http.domain', rule: 'route.foreign-host' }],
    });
    expect(world.systemd.files.has('deploy-takeover.service')).toBe(false);
    expect(world.routes()).toEqual({
      'omni-deploy:web': '127.0.0.1:8000',
      'admin-site': 'foreign',
      'someone-else': 'foreign',
    });
  });

  it('a route whose domain a foreign route names later is taken out of Caddy and reported; it returns when that route goes', async () => {
    const world = await createWorld();
    await world.publish(await world.manifestOf([{ name: 'web', version: '1.0', overrides: http(8000) }]));
    await world.tick();
    const site = { match: [{ host: ['example.com'] }], handle: [{ handler: 'file_server' }] };
    const config = world.caddy.currentConfig() as {
      apps: { http: { servers: { omni: { routes: unknown[] } } } };
    };
    const withSite = structuredClone(config);
    withSite.apps.http.servers.omni.routes.push(site);
    world.caddy.setConfig(withSite);

    const report = await world.tick();
    expect(report.outcome).toBe('partial');
    expect(report.message).toMatch(/^web: route refused \(example\.com is served by a route of someone else/);
    expect(report.routes?.refused).toEqual([
      expect.objectContaining({ service: 'web', domain: 'example.com' }),
    ]);
    expect(world.routes()).toEqual({ 'someone-else': 'foreign', undefined: 'foreign' });
    expect(world.state.current?.refused).toEqual([
      expect.objectContaining({
        service: 'web',
        scope: 'route',
        rule: 'route.foreign-host',
        path: 'http.domain',
      }),
    ]);
    expect(world.events.map((e) => e.type)).toContain('routes.refused');
    expect(world.state.current?.services.web?.health).toBe('healthy');
    // The same refusal again writes nothing: one Caddy read, no state save, no mutation. (The tick right after
    // the removal still records the foreign route's new index, one lower.)
    await world.tick();
    const saves = world.state.saves.length;
    const mutations = world.caddy.mutations;
    expect((await world.tick()).outcome).toBe('partial');
    expect(world.state.saves.length).toBe(saves);
    expect(world.caddy.mutations).toBe(mutations);

    const without = structuredClone(world.caddy.currentConfig()) as typeof config;
    without.apps.http.servers.omni.routes = without.apps.http.servers.omni.routes.filter(
      (r) => JSON.stringify(r) !== JSON.stringify(site),
    );
    world.caddy.setConfig(without);
    expect((await world.tick()).outcome).toBe('unchanged');
    expect(world.routes()).toEqual({ 'omni-deploy:web': '127.0.0.1:8000', 'someone-else': 'foreign' });
    expect(world.state.current?.refused).toBeUndefined();
  });
});
