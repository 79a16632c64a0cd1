/**
 * Routes of someone else's: a domain a foreign route names is refused for us and that route keeps answering; a
 * foreign catch-all (Debian's stock `:80` site) or wildcard is a fallback our exact hosts go ahead of; a wildcard
 * of ours goes after the foreign sites it covers. The planner on its own (tables and a property), then a real
 * Caddy started from a Caddyfile, through `reconcileRoutes` and through a deployer tick.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildRoutes,
  createCaddyAdmin,
  type DesiredRoute,
  planRoutes,
  type RoutePlan,
  reconcileRoutes,
  renderRoutePlan,
} from '../../src/caddy/index.js';
import { simulate } from '../../src/caddy/plan.js';
import { checkDomainAgainstForeign, findOrderViolations, foreignRoutes } from '../../src/policy/index.js';
import { makeService } from '../builders.js';
import { createWorld, http } from '../deployer/world.js';
import { type CaddyProcess, startCaddy } from './caddy-process.js';
import { get, startUpstream, type Upstream } from './upstream.js';

const web = (name: string, domain: string, path: string, internalPort: number) =>
  makeService({ name, http: { domain, path, internalPort } });

const site = (host: string, body = host) => ({
  match: [{ host: [host] }],
  handle: [{ handler: 'static_response', body }],
  terminal: true,
});
const CATCH_ALL = { handle: [{ handler: 'file_server' }], terminal: true };

function config(routes: unknown[]) {
  return { apps: { http: { servers: { srv0: { listen: [':80'], routes: structuredClone(routes) } } } } };
}

function applied(before: unknown, plan: RoutePlan): unknown[] {
  const holder = { config: structuredClone(before) };
  for (const op of plan.operations) simulate(holder, op.request);
  return (holder.config as ReturnType<typeof config>).apps.http.servers.srv0.routes;
}

const idOf = (route: unknown) => (route as { '@id'?: string })['@id'];
const isOurs = (route: unknown) => idOf(route)?.startsWith('omni-deploy:') === true;
const layout = (routes: unknown[]) =>
  routes.map((r) => idOf(r) ?? (r as { match?: { host?: string[] }[] }).match?.[0]?.host?.[0] ?? '*');

describe('planRoutes next to routes of someone else', () => {
  it('refuses a route on a domain a foreign route names, says where that route is, and plans nothing for it', () => {
    const live = config([site('admin.example.com'), CATCH_ALL]);
    const desired = buildRoutes([
      web('web', 'example.com', '/', 8000),
      web('takeover', 'Admin.Example.com', '/', 8001),
    ]);
    const plan = planRoutes(desired, live);
    expect(plan.refused).toEqual([
      {
        id: 'omni-deploy:takeover',
        service: 'takeover',
        domain: 'admin.example.com',
        path: '/',
        foreign: { server: 'srv0', index: 0 },
        message:
          'admin.example.com is served by a route of someone else (apps.http.servers.srv0.routes[0]); it is left alone and not routed for us',
      },
    ]);
    expect(plan.routes).toEqual(['omni-deploy:web']);
    expect(layout(applied(live, plan))).toEqual(['omni-deploy:web', 'admin.example.com', '*']);
    expect(renderRoutePlan(plan)).toContain(
      '\n  ! omni-deploy:takeover refused: admin.example.com is served by a route of someone else',
    );
  });

  it('takes out a route of ours whose domain a foreign route names now, and leaves that route as it is', () => {
    const ours = buildRoutes([web('web', 'example.com', '/', 8000)]);
    const live = config([...ours.map((d) => d.route), site('example.com', 'theirs')]);
    const plan = planRoutes(ours, live);
    expect(plan.refused.map((r) => r.id)).toEqual(['omni-deploy:web']);
    expect(plan.operations.map((op) => op.summary)).toEqual(['- omni-deploy:web (removed)']);
    expect(applied(live, plan)).toEqual([site('example.com', 'theirs')]);
  });

  it('a path of ours that does not overlap the foreign route is routed: a foreign /api/* leaves /app to us', () => {
    const live = config([{ ...site('example.com'), match: [{ host: ['example.com'], path: ['/api/*'] }] }]);
    const plan = planRoutes(buildRoutes([web('app', 'example.com', '/app', 8000)]), live);
    expect(plan.refused).toEqual([]);
    expect(plan.routes).toEqual(['omni-deploy:app']);
  });

  it('puts a wildcard of ours after the foreign sites it covers, and moves one that sits ahead of them', () => {
    const wild = buildRoutes([web('wild', '*.example.com', '/', 8000)]);
    const fresh = planRoutes(wild, config([site('admin.example.com'), CATCH_ALL]));
    expect(fresh.operations.map((op) => [op.kind, 'index' in op ? op.index : -1])).toEqual([['add', 1]]);

    const ahead = config([...wild.map((d) => d.route), site('admin.example.com'), CATCH_ALL]);
    const moved = planRoutes(wild, ahead);
    expect(moved.operations.map((op) => op.summary)).toEqual([
      '- omni-deploy:wild (moved)',
      '+ omni-deploy:wild *.example.com -> 127.0.0.1:8000 (moved)',
    ]);
    expect(layout(applied(ahead, moved))).toEqual(['admin.example.com', 'omni-deploy:wild', '*']);
    expect(planRoutes(wild, config(applied(ahead, moved))).operations).toEqual([]);
  });

  it('goes ahead of a foreign catch-all or wildcard with an exact host of ours, and after a host Caddy fills in', () => {
    const live = config([
      { match: [{ host: ['*.example.com'] }], handle: [] },
      CATCH_ALL,
      { match: [{ host: ['{env.SITE}'] }], handle: [] },
    ]);
    const plan = planRoutes(buildRoutes([web('web', 'www.example.com', '/', 8000)]), live);
    expect(layout(applied(live, plan))).toEqual(['*.example.com', '*', '{env.SITE}', 'omni-deploy:web']);
    const fallbacks = config([{ match: [{ host: ['*.example.com'] }], handle: [] }, CATCH_ALL]);
    const first = planRoutes(buildRoutes([web('web', 'www.example.com', '/', 8000)]), fallbacks);
    expect(layout(applied(fallbacks, first))).toEqual(['omni-deploy:web', '*.example.com', '*']);
  });

  it('from any live state: reaches the routes not refused, in order, never ahead of a foreign route they must follow, foreign routes untouched', () => {
    const pool = buildRoutes(
      ['a.t', 'b.t', 'x.a.t', '*.a.t', '*.t', 'c.t'].flatMap((domain, i) => [
        web(`s${i}`, domain, '/', 8000 + i),
        web(`p${i}`, domain, `/p${i % 2}`, 8100 + i),
      ]),
    );
    const foreignPool = [
      site('b.t'),
      site('x.a.t'),
      { match: [{ host: ['c.t'], path: ['/p0/*'] }], handle: [] },
      { match: [{ host: ['*.a.t'] }], handle: [] },
      { match: [{ host: ['{env.HOST}'] }], handle: [] },
      CATCH_ALL,
      { match: [{ path: ['/p1'] }], handle: [] },
    ];
    const stale = buildRoutes(pool.map((d) => web(d.service, d.domain, d.path, 9000)));
    const liveRoute = fc.oneof(
      fc.constantFrom(...foreignPool),
      fc.constantFrom(...pool, ...stale).map((d: DesiredRoute) => d.route),
    );
    fc.assert(
      fc.property(
        fc.array(liveRoute, { maxLength: 12 }),
        fc.subarray(pool.map((d) => d.service)),
        (live, names) => {
          const desired = pool.filter((d) => names.includes(d.service));
          const before = config(live);
          const plan = planRoutes(desired, before);
          const foreign = foreignRoutes(before, 'omni-deploy:');
          const routed = desired.filter((d) => !checkDomainAgainstForeign(d.domain, d.path, foreign));
          expect(plan.refused.map((r) => r.id)).toEqual(
            desired.filter((d) => !routed.includes(d)).map((d) => d.id),
          );
          const result = applied(before, plan);
          expect(result.filter(isOurs)).toEqual(routed.map((d) => d.route));
          expect(result.filter((r) => !isOurs(r))).toEqual(live.filter((r) => !isOurs(r)));
          const byId = new Map(routed.map((d) => [d.id, d]));
          expect(findOrderViolations(result, (r) => byId.get(idOf(r) as string))).toEqual([]);
          expect(planRoutes(desired, config(result)).operations).toEqual([]);
        },
      ),
      { numRuns: 300 },
    );
  });
});

/** Debian's stock Caddyfile (a catch-all serving /usr/share/caddy) next to a site someone runs by hand. */
const CADDYFILE = (port: number) => `http://admin.example.com:${port} {
	respond "admin site"
}

:${port} {
	root * /usr/share/caddy
	file_server
}
`;

describe('a real Caddy started from a Caddyfile', () => {
  let caddy: CaddyProcess;
  const up: Record<string, Upstream> = {};

  beforeAll(async () => {
    caddy = await startCaddy({ caddyfile: CADDYFILE });
    for (const name of ['web', 'takeover', 'wild']) up[name] = await startUpstream(name);
  });
  afterAll(async () => {
    await caddy?.stop();
    await Promise.all(Object.values(up).map((u) => u.close()));
  });

  const port = (name: string) => up[name]?.port as number;

  it('reconcile: the foreign site keeps its domain and answers first; our exact host goes ahead of the stock catch-all', async () => {
    const admin = createCaddyAdmin({ address: caddy.adminAddress });
    const desired = buildRoutes([
      web('web', 'example.com', '/', port('web')),
      web('takeover', 'admin.example.com', '/', port('takeover')),
      web('wild', '*.example.com', '/', port('wild')),
    ]);
    const result = await reconcileRoutes(admin, desired);
    expect(result.plan.refused.map((r) => r.id)).toEqual(['omni-deploy:takeover']);
    expect((await get(caddy.httpPort, 'admin.example.com', '/')).body).toBe('admin site');
    expect((await get(caddy.httpPort, 'example.com', '/x')).body).toBe('web /x');
    expect((await get(caddy.httpPort, 'shop.example.com', '/')).body).toBe('wild /');
    expect((await get(caddy.httpPort, 'elsewhere.test', '/')).body).toContain('<title>Caddy works!</title>');
    expect(up.takeover?.served).toBe(0);
    expect((await reconcileRoutes(admin, desired)).mutations).toBe(0);
    await reconcileRoutes(admin, []);
  });

  it('a deployer tick: the takeover is refused at pre-flight (nothing of it installed), the service behind the catch-all is served by us', async () => {
    const world = await createWorld({ settings: { caddyServer: 'srv0' } });
    world.ctx.adapters.caddy = createCaddyAdmin({ address: caddy.adminAddress });
    await world.publish(
      await world.manifestOf([
        { name: 'web', version: '1.0', overrides: http(port('web')) },
        {
          name: 'takeover',
          version: '1.0',
          overrides: { http: { domain: 'admin.example.com', path: '/', internalPort: port('takeover') } },
        },
      ]),
    );
    const report = await world.tick();
    expect(report.results.map((r) => [r.name, r.outcome, r.refusals?.[0]?.rule]).sort()).toEqual([
      ['takeover', 'refused', 'route.foreign-host'],
      ['web', 'installed', undefined],
    ]);
    expect(world.systemd.files.has('deploy-takeover.service')).toBe(false);
    expect((await get(caddy.httpPort, 'admin.example.com', '/')).body).toBe('admin site');
    expect((await get(caddy.httpPort, 'example.com', '/')).body).toBe('web /');
    expect((await get(caddy.httpPort, 'elsewhere.test', '/')).body).toContain('<title>Caddy works!</title>');
  });
});
