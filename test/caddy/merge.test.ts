import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { adaptCaddyConfig } from '../../src/caddy/adapt.js';
import { buildRoutes, createCaddyAdmin, reconcileRoutes } from '../../src/caddy/index.js';
import { mergeRoutes, readOwnRoutes } from '../../src/caddy/merge.js';
import { planRoutes } from '../../src/caddy/plan.js';
import { composeCaddyConfig } from '../../src/deployer/caddy-config.js';
import { type DeployerState, emptyState, type ServiceRecord } from '../../src/deployer/state.js';
import { createShell } from '../../src/shell/index.js';
import { createFakeShell } from '../../src/testing/index.js';
import { makeService } from '../builders.js';
import { requireCaddy, startCaddy } from './caddy-process.js';

const web = (name: string, domain: string, path: string, internalPort: number) =>
  makeService({ name, http: { domain, path, internalPort } });

/** Debian's stock Caddyfile as `caddy adapt` gives it: server srv0 on :80, one catch-all file server. */
const DEBIAN = {
  apps: {
    http: {
      servers: {
        srv0: {
          listen: [':80'],
          routes: [
            {
              handle: [
                { handler: 'vars', root: '/usr/share/caddy' },
                { handler: 'file_server', hide: ['/etc/caddy/Caddyfile'] },
              ],
            },
          ],
        },
      },
    },
  },
};

const dir = mkdtempSync(join(tmpdir(), 'omni-merge-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('mergeRoutes', () => {
  it('puts our routes into the config as the admin API would, leaving the input alone', () => {
    const desired = buildRoutes([web('web', 'a.test', '/', 8001), web('api', 'a.test', '/api', 8002)]);
    const input = structuredClone(DEBIAN);
    const { config, plan } = mergeRoutes(desired, input, { server: 'auto', listen: [':443'] });
    expect(input).toEqual(DEBIAN);
    expect(plan.server).toBe('srv0');
    const routes = (config as typeof DEBIAN).apps.http.servers.srv0.routes;
    expect(routes).toEqual([...desired.map((d) => d.route), DEBIAN.apps.http.servers.srv0.routes[0]]);
    // What a tick would find: in sync, nothing to send.
    expect(planRoutes(desired, config, { server: 'auto', listen: [':443'] }).operations).toEqual([]);
  });

  it('creates the server when the config has none to use (an empty Caddyfile)', () => {
    const desired = buildRoutes([web('web', 'a.test', '/', 8001)]);
    const { config } = mergeRoutes(desired, {}, { server: 'auto', listen: [':443'] });
    expect(config).toEqual({
      apps: { http: { servers: { omni: { listen: [':443'], routes: [desired[0]?.route] } } } },
    });
  });
});

describe('readOwnRoutes', () => {
  const routes = buildRoutes([web('web', 'a.test', '/', 8001), web('api', 'b.test', '/api', 8002)]);
  const config = (list: unknown[]) => ({ apps: { http: { servers: { srv1: { routes: list } } } } });

  it('reads back the services behind the routes of ours, in any server', () => {
    expect(readOwnRoutes(config([...routes.map((d) => d.route), { handle: [] }]))).toEqual([
      { name: 'api', http: { domain: 'b.test', path: '/api', internalPort: 8002 } },
      { name: 'web', http: { domain: 'a.test', path: '/', internalPort: 8001 } },
    ]);
  });

  it.each([
    ['another prefix', { ...routes[1]?.route, '@id': 'other:web' }],
    ['an edited matcher', { ...routes[1]?.route, match: [{ host: ['a.test'], method: ['GET'] }] }],
    [
      'an extra handler',
      { ...routes[1]?.route, handle: [...(routes[1]?.route.handle ?? []), { handler: 'x' }] },
    ],
    [
      'an upstream elsewhere than loopback',
      {
        ...routes[1]?.route,
        handle: [{ ...routes[1]?.route.handle[0], upstreams: [{ dial: '10.0.0.1:8001' }] }],
      },
    ],
    [
      'a privileged port',
      {
        ...routes[1]?.route,
        handle: [{ ...routes[1]?.route.handle[0], upstreams: [{ dial: '127.0.0.1:80' }] }],
      },
    ],
    ['a name that is no service name', { ...routes[1]?.route, '@id': 'omni-deploy:Web' }],
    ['not an object', 'omni-deploy:web'],
  ])('leaves out a route that buildRoutes would not make: %s', (_label, route) => {
    expect(readOwnRoutes(config([route]))).toEqual([]);
  });

  it('takes the first of duplicated ids, and reads nothing from configs of another shape', () => {
    const first = routes[1]?.route;
    const second = buildRoutes([web('web', 'a.test', '/', 9001)])[0]?.route;
    expect(readOwnRoutes(config([first, second]))).toHaveLength(1);
    for (const odd of [null, 'x', { apps: [] }, { apps: { http: { servers: { srv0: { routes: 'x' } } } } }])
      expect(readOwnRoutes(odd)).toEqual([]);
  });
});

function record(
  route: { domain: string; path: string; internalPort: number },
  over: Partial<ServiceRecord> = {},
) {
  return {
    storePath: '/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-x',
    unitName: 'deploy-x.service',
    unitText: '',
    specHash: 'h',
    route,
    health: 'healthy' as const,
    since: '2025-01-01T00:00:00Z',
    ...over,
  };
}

function state(services: Record<string, ServiceRecord>): DeployerState {
  return { ...emptyState('biz'), services };
}

describe('composeCaddyConfig', () => {
  const settings = { caddyServer: 'auto', caddyListen: [':443'] };
  const routesIn = (config: unknown) =>
    (config as typeof DEBIAN).apps.http.servers.srv0.routes.map((r) => ({
      id: (r as { '@id'?: string })['@id'],
      dial: (r as { handle: { upstreams?: { dial: string }[] }[] }).handle[0]?.upstreams?.[0]?.dial,
    }));

  it('at a start (Caddy not running): the routes of the state, unhealthy services left out', () => {
    const composed = composeCaddyConfig(
      {
        host: DEBIAN,
        state: state({
          web: record({ domain: 'a.test', path: '/', internalPort: 8001 }),
          sick: record({ domain: 's.test', path: '/', internalPort: 8009 }, { health: 'unhealthy' }),
          worker: record(undefined as never, { route: undefined }),
        }),
        live: undefined,
      },
      settings,
    );
    expect(composed.warnings).toEqual([]);
    expect(composed.routes).toEqual([{ service: 'web', from: 'state' }]);
    expect(routesIn(composed.config)).toEqual([
      { id: 'omni-deploy:web', dial: '127.0.0.1:8001' },
      { id: undefined, dial: undefined },
    ]);
  });

  it('at a start during a blue/green switch: the route of the state dials the live instance (the candidate once traffic moved to it)', () => {
    const target = {
      storePath: '/nix/store/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-x',
      unitText: '',
      specHash: 'h2',
      route: { domain: 'a.test', path: '/', internalPort: 8001 },
    };
    const switching = (phase: 'candidate' | 'switched') =>
      record(
        { domain: 'a.test', path: '/', internalPort: 8001 },
        {
          switch: {
            phase,
            strategy: 'blue-green',
            candidate: { unitName: 'deploy-web@next.service', port: 18001 },
            target,
            startedAt: '2025-01-02T00:00:00Z',
          },
        },
      );
    const dial = (phase: 'candidate' | 'switched') =>
      routesIn(
        composeCaddyConfig(
          { host: DEBIAN, state: state({ web: switching(phase) }), live: undefined },
          settings,
        ).config,
      )[0]?.dial;
    expect(dial('candidate')).toBe('127.0.0.1:8001');
    expect(dial('switched')).toBe('127.0.0.1:18001');
  });

  it('at a reload: the routes Caddy serves win (a port being switched, a service not saved yet), the state adds what Caddy lacks', () => {
    const live = mergeRoutes(
      buildRoutes([web('web', 'a.test', '/', 9001), web('new', 'n.test', '/', 8005)]),
      DEBIAN,
      { server: 'auto', listen: [':443'] },
    ).config;
    const composed = composeCaddyConfig(
      {
        host: DEBIAN,
        state: state({
          web: record({ domain: 'a.test', path: '/', internalPort: 8001 }),
          api: record({ domain: 'a.test', path: '/api', internalPort: 8002 }),
          // The state still has a service whose domain and path Caddy now gives to another: Caddy's wins.
          old: record({ domain: 'n.test', path: '/', internalPort: 8003 }),
        }),
        live,
      },
      settings,
    );
    expect(composed.routes).toEqual([
      { service: 'web', from: 'caddy' },
      { service: 'new', from: 'caddy' },
      { service: 'api', from: 'state' },
    ]);
    expect(routesIn(composed.config)).toEqual([
      { id: 'omni-deploy:api', dial: '127.0.0.1:8002' },
      { id: 'omni-deploy:web', dial: '127.0.0.1:9001' },
      { id: 'omni-deploy:new', dial: '127.0.0.1:8005' },
      { id: undefined, dial: undefined },
    ]);
  });

  it('a named server moves the routes there at the next reload: created on the listen addresses beside the :80 site', () => {
    const live = mergeRoutes(buildRoutes([web('web', 'a.test', '/', 8001)]), DEBIAN, {
      server: 'srv0',
    }).config;
    const composed = composeCaddyConfig({ host: DEBIAN, state: undefined, live }, { caddyServer: 'omni' });
    const servers = (composed.config as typeof DEBIAN).apps.http.servers as Record<string, unknown>;
    expect(servers.srv0).toEqual(DEBIAN.apps.http.servers.srv0);
    expect(servers.omni).toEqual({
      listen: [':443'],
      routes: [buildRoutes([web('web', 'a.test', '/', 8001)])[0]?.route],
    });
  });

  it("a route whose domain the host's config serves is refused, with the rule, as a tick refuses it", () => {
    const host = {
      apps: {
        http: {
          servers: {
            srv0: {
              listen: [':443'],
              routes: [{ match: [{ host: ['a.test'] }], handle: [{ handler: 'static_response' }] }],
            },
          },
        },
      },
    };
    const composed = composeCaddyConfig(
      {
        host,
        state: state({
          web: record({ domain: 'a.test', path: '/', internalPort: 8001 }),
          api: record({ domain: 'b.test', path: '/', internalPort: 8002 }),
        }),
        live: undefined,
      },
      settings,
    );
    expect(composed.routes).toEqual([{ service: 'api', from: 'state' }]);
    expect(composed.warnings).toEqual([
      expect.stringMatching(/^web: route not given to Caddy \(rule route.foreign-host\): /),
    ]);
  });

  it("routes that cannot be placed give the host's config as it is, with a warning", () => {
    const host = { apps: { http: { servers: { srv0: { listen: [':80'], routes: 'not a list' } } } } };
    const composed = composeCaddyConfig(
      {
        host,
        state: state({ web: record({ domain: 'a.test', path: '/', internalPort: 8001 }) }),
        live: undefined,
      },
      settings,
    );
    expect(composed.config).toBe(host);
    expect(composed.routes).toEqual([]);
    expect(composed.warnings).toEqual([expect.stringContaining('the next tick adds them')]);
  });

  it('no state and nothing in Caddy: the host config unchanged', () => {
    const composed = composeCaddyConfig({ host: DEBIAN, state: undefined, live: DEBIAN }, settings);
    expect(composed.config).toEqual(DEBIAN);
    expect(composed.routes).toEqual([]);
  });
});

describe('adaptCaddyConfig', () => {
  it("adapts a Caddyfile with Caddy's own adapter, {$ENV} placeholders filled from the environment", async () => {
    requireCaddy();
    const file = join(dir, 'Caddyfile');
    writeFileSync(file, ':80 {\n\trespond "{$GREETING}"\n}\n');
    const shell = createShell({ env: { ...process.env, GREETING: 'hello there' } });
    const { config } = await adaptCaddyConfig(shell, { file });
    expect(JSON.stringify(config)).toContain('"body":"hello there"');
  });

  it('reads a .json file as it is, without caddy', async () => {
    const file = join(dir, 'caddy.json');
    writeFileSync(file, JSON.stringify(DEBIAN));
    const shell = createFakeShell();
    expect((await adaptCaddyConfig(shell, { file })).config).toEqual(DEBIAN);
    expect(shell.calls).toEqual([]);
  });

  it.each([
    [
      'a Caddyfile Caddy refuses',
      ':80 {\n\tno_such_directive\n}\n',
      {},
      /caddy adapt --config .* failed: .*no_such_directive/s,
    ],
    ['a missing file', undefined, {}, /failed: .*no such file/is],
    ['an adapter name that is no name', '', { adapter: 'x; rm' }, /invalid Caddy config adapter/],
    ['a program that is not there', '', { caddy: '/nonexistent/caddy' }, /\/nonexistent\/caddy not found/],
  ])('refuses %s with CADDY_ADAPT', async (_label, text, options, message) => {
    requireCaddy();
    const file = join(dir, `bad-${Math.random()}`);
    if (text !== undefined) writeFileSync(file, text);
    await expect(adaptCaddyConfig(createShell(), { file, ...options })).rejects.toMatchObject({
      code: 'CADDY_ADAPT',
      message: expect.stringMatching(message),
    });
  });

  it('a .json file that is not JSON is CADDY_ADAPT', async () => {
    const file = join(dir, 'broken.json');
    writeFileSync(file, '{"apps":');
    await expect(adaptCaddyConfig(createFakeShell(), { file })).rejects.toMatchObject({
      code: 'CADDY_ADAPT',
    });
  });
});

describe('a config composed for Caddy, loaded by a real Caddy', () => {
  it('serves our routes from its own config, and the next reconcile has nothing to do', async () => {
    requireCaddy();
    const caddy = await startCaddy({ caddyfile: (port) => `:${port} {\n\trespond "host site"\n}\n` });
    try {
      const desired = buildRoutes([web('web', 'a.test', '/', 8001)]);
      const merged = mergeRoutes(desired, caddy.initialConfig, { server: 'srv0' });
      // Caddy's own `caddy reload` does this /load with the composed config.
      await caddy.load(merged.config);
      const admin = createCaddyAdmin({ address: caddy.adminAddress });
      const r = await reconcileRoutes(admin, desired, { server: 'auto' });
      expect({ mutations: r.mutations, server: r.plan.server }).toEqual({ mutations: 0, server: 'srv0' });
      const live = JSON.parse(await caddy.rawGet('/config/'));
      expect(readOwnRoutes(live)).toEqual([
        { name: 'web', http: { domain: 'a.test', path: '/', internalPort: 8001 } },
      ]);
    } finally {
      await caddy.stop();
    }
  });
});
