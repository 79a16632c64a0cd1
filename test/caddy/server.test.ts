import { describe, expect, it } from 'vitest';
import { buildRoutes, planRoutes, renderRoutePlan } from '../../src/caddy/index.js';
import { simulate } from '../../src/caddy/plan.js';
import { chooseCaddyServer, listenPortRange } from '../../src/caddy/server.js';
import { makeService } from '../builders.js';

const PREFIX = 'omni-deploy:';

describe('listenPortRange', () => {
  it.each([
    [':443', [443, 443]],
    ['0.0.0.0:443', [443, 443]],
    ['127.0.0.1:80', [80, 80]],
    ['[::]:443', [443, 443]],
    ['[::1]:8080', [8080, 8080]],
    ['localhost:2015', [2015, 2015]],
    ['tcp/:443', [443, 443]],
    ['tcp4/0.0.0.0:80', [80, 80]],
    ['udp/:443', [443, 443]],
    [':80-90', [80, 90]],
    ['example.com:8000-8443', [8000, 8443]],
  ])('%s covers %j', (address, range) => {
    expect(listenPortRange(address)).toEqual(range);
  });

  it.each([
    'unix//run/caddy.sock',
    'unixgram//x',
    'fd/3',
    ':0',
    ':70000',
    ':90-80',
    'localhost',
    '',
    '{env.PORT}',
    ':{env.PORT}',
    ':443 ',
    7,
    null,
  ])('%j covers no port', (address) => {
    expect(listenPortRange(address)).toBeUndefined();
  });
});

const server = (listen: string[], routes?: unknown[]) => ({ listen, ...(routes ? { routes } : {}) });
const config = (servers: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
  apps: { http: { ...extra, servers } },
});
const ourRoute = { '@id': `${PREFIX}web`, match: [{ host: ['a.test'] }] };
const catchAll = { handle: [{ handler: 'file_server' }] };

describe('chooseCaddyServer (auto)', () => {
  it.each([
    ['Debian stock Caddyfile: its :80 site', config({ srv0: server([':80'], [catchAll]) }), 'srv0', 'http'],
    [
      'a Caddyfile with an HTTPS site and a :80 site: the :443 one',
      config({ srv0: server([':443']), srv1: server([':80'], [catchAll]) }),
      'srv0',
      'https',
    ],
    [
      'the :443 server even when it comes second',
      config({ srv0: server([':80']), srv1: server(['[::]:443']) }),
      'srv1',
      'https',
    ],
    [
      'a port range that covers 443',
      config({ srv0: server([':80']), srv1: server(['tcp/0.0.0.0:400-500']) }),
      'srv1',
      'https',
    ],
    [
      'the server that holds our routes already, even on :80 beside a :443 one',
      config({ srv0: server([':443']), srv1: server([':80'], [catchAll, ourRoute]) }),
      'srv1',
      'ours',
    ],
    [
      'a server named omni, wherever it listens',
      config({ srv0: server([':443']), omni: server([':8080']) }),
      'omni',
      'omni',
    ],
    [
      "Caddy's own https_port and http_port",
      config({ srv0: server([':443']), srv1: server([':8443']) }, { https_port: 8443, http_port: 8080 }),
      'srv1',
      'https',
    ],
    ['no config at all: created', null, 'omni', 'create'],
    ['no http app: created', { apps: { tls: {} } }, 'omni', 'create'],
    ['only a server on another port: created', config({ srv0: server([':8080']) }), 'omni', 'create'],
    ['a unix-socket server: created', config({ srv0: server(['unix//run/x.sock']) }), 'omni', 'create'],
    [
      'servers that are not objects are no servers',
      config({ srv0: 'x', srv1: [':443'], srv2: null }),
      'omni',
      'create',
    ],
    ['servers that is not an object', { apps: { http: { servers: [1] } } }, 'omni', 'create'],
  ])('%s', (_label, live, name, reason) => {
    const choice = chooseCaddyServer(live, 'auto', PREFIX);
    expect(choice).toMatchObject({ name, reason });
    expect(choice.summary).toMatch(new RegExp(`^${name}\\b`));
  });

  it('a named server is used as given, whether or not it exists', () => {
    const live = config({ srv0: server([':443']) });
    expect(chooseCaddyServer(live, 'srv9', PREFIX)).toEqual({
      name: 'srv9',
      reason: 'named',
      summary: 'srv9',
    });
    expect(chooseCaddyServer(live, 'omni', PREFIX).name).toBe('omni');
  });

  it('routes of another prefix do not count as ours', () => {
    const live = config({ srv0: server([':443']), srv1: server([':80'], [{ '@id': 'other:web' }]) });
    expect(chooseCaddyServer(live, 'auto', PREFIX).name).toBe('srv0');
  });
});

describe('planRoutes with server auto', () => {
  const desired = buildRoutes([
    makeService({ name: 'web', http: { domain: 'a.test', path: '/', internalPort: 8001 } }),
  ]);

  it("on Debian's stock config, goes into srv0 ahead of its catch-all and says why", () => {
    const live = config({ srv0: server([':80'], [catchAll]) });
    const plan = planRoutes(desired, live, { server: 'auto', listen: [':443'] });
    expect(plan.server).toBe('srv0');
    expect(plan.discovered).toBe('srv0 (listens on :80)');
    const holder = { config: structuredClone(live) as unknown };
    for (const op of plan.operations) simulate(holder, op.request);
    expect((holder.config as ReturnType<typeof config>).apps.http.servers.srv0).toEqual(
      server([':80'], [desired[0]?.route, catchAll]),
    );
    expect(renderRoutePlan(plan)).toMatch(
      /^Caddy routes \(server srv0 \(listens on :80\), ids omni-deploy:\*\)/,
    );
  });

  it('creates server omni on the listen addresses when Caddy has none to use', () => {
    const plan = planRoutes(
      desired,
      { admin: { listen: 'localhost:2019' } },
      { server: 'auto', listen: [':443'] },
    );
    expect(plan.server).toBe('omni');
    expect(plan.operations.map((op) => op.kind)).toEqual(['create-server']);
    expect(plan.operations[0]?.request).toEqual({
      method: 'PUT',
      target: { path: ['apps', 'http', 'servers', 'omni'] },
      value: { listen: [':443'], routes: [desired[0]?.route] },
    });
  });

  it('without listen addresses a missing server is CADDY_NO_SERVER, as for a named one', () => {
    expect(() => planRoutes(desired, {}, { server: 'auto' })).toThrow(
      expect.objectContaining({ code: 'CADDY_NO_SERVER' }),
    );
  });

  it('finds the server holding our routes again on the next plan: in sync, no request', () => {
    const live = config({ srv0: server([':443']), srv1: server([':80'], [desired[0]?.route, catchAll]) });
    const plan = planRoutes(desired, live, { server: 'auto', listen: [':443'] });
    expect(plan).toMatchObject({ server: 'srv1', operations: [] });
  });

  it('a named server is not described as discovered', () => {
    const plan = planRoutes(desired, config({ srv0: server([':80'], [catchAll]) }), { server: 'srv0' });
    expect(plan.discovered).toBeUndefined();
  });
});
