import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  buildRoutes,
  type DesiredRoute,
  planRoutes,
  type RoutePlan,
  renderRoutePlan,
} from '../../src/caddy/index.js';
import { simulate } from '../../src/caddy/plan.js';
import { formatTarget } from '../../src/caddy/target.js';
import { makeService } from '../builders.js';

const web = (name: string, domain: string, path: string, internalPort: number) =>
  makeService({ name, http: { domain, path, internalPort } });

const FOREIGN = [
  {
    '@id': 'team-blog',
    match: [{ host: ['blog.test'] }],
    handle: [{ handler: 'static_response' }],
    terminal: true,
  },
  { match: [{ host: ['other.test'] }], handle: [{ handler: 'static_response' }] },
  { handle: [{ handler: 'static_response', status_code: 404 }] },
];

function config(routes: unknown[] | undefined, extra: Record<string, unknown> = {}) {
  const srv0: Record<string, unknown> = { listen: [':443'], ...extra };
  if (routes !== undefined) srv0.routes = structuredClone(routes);
  return { apps: { http: { servers: { srv0 } } } };
}

/** The config after sending every request of `plan`, with Caddy's semantics. */
function applied(
  before: unknown,
  plan: RoutePlan,
): { apps: { http: { servers: { srv0: { routes: unknown[] } } } } } {
  const holder = { config: structuredClone(before) };
  for (const op of plan.operations) simulate(holder, op.request);
  return holder.config as never;
}

const requests = (plan: RoutePlan) =>
  plan.operations.map((op) => `${op.request.method} ${formatTarget(op.request.target)}`);
const ours = (routes: unknown[]) =>
  routes.filter((r) => String((r as { '@id'?: string })['@id']).startsWith('omni-deploy:'));
const foreign = (routes: unknown[]) =>
  routes.filter((r) => !String((r as { '@id'?: string })['@id']).startsWith('omni-deploy:'));

const v1 = buildRoutes([
  web('web', 'a.test', '/', 8000),
  web('api', 'a.test', '/api', 8001),
  web('blog', 'b.test', '/', 8002),
]);

describe('planRoutes', () => {
  it('adds our routes at the start of the routes, most specific first, so a foreign catch-all cannot shadow them', () => {
    const before = config(FOREIGN);
    const plan = planRoutes(v1, before);
    expect(requests(plan)).toEqual([
      'PUT /config/apps/http/servers/srv0/routes/0',
      'PUT /config/apps/http/servers/srv0/routes/1',
      'PUT /config/apps/http/servers/srv0/routes/2',
    ]);
    const after = applied(before, plan).apps.http.servers.srv0.routes;
    expect(after).toEqual([...v1.map((d) => d.route), ...FOREIGN]);
    expect(plan.routes).toEqual(['omni-deploy:api', 'omni-deploy:web', 'omni-deploy:blog']);
  });

  it('plans nothing when Caddy already holds exactly our routes (the second plan is empty)', () => {
    const before = config([...FOREIGN.slice(0, 1), ...v1.map((d) => d.route), ...FOREIGN.slice(1)]);
    const plan = planRoutes(v1, before);
    expect(plan.operations).toEqual([]);
    expect(renderRoutePlan(plan)).toBe('Caddy routes (server srv0, ids omni-deploy:*): in sync, 3 route(s)');
    const first = planRoutes(v1, config(FOREIGN));
    expect(planRoutes(v1, applied(config(FOREIGN), first)).operations).toEqual([]);
  });

  it('swaps only the upstream when only the port changed: one PATCH of the proxy handler', () => {
    const before = config([...v1.map((d) => d.route), ...FOREIGN]);
    const next = buildRoutes([
      web('web', 'a.test', '/', 8000),
      web('api', 'a.test', '/api', 9001),
      web('blog', 'b.test', '/', 8002),
    ]);
    const plan = planRoutes(next, before);
    expect(plan.operations).toMatchObject([
      {
        kind: 'swap-upstream',
        id: 'omni-deploy:api',
        to: ['127.0.0.1:9001'],
        summary: '~ omni-deploy:api upstream 127.0.0.1:8001 -> 127.0.0.1:9001',
      },
    ]);
    expect(requests(plan)).toEqual(['PATCH /id/omni-deploy:api:proxy/upstreams']);
    expect(plan.operations[0]?.request.value).toEqual([{ dial: '127.0.0.1:9001' }]);
  });

  it('replaces a route whose matcher changed, in place when its position stays right', () => {
    const before = config([...v1.map((d) => d.route), ...FOREIGN]);
    const next = buildRoutes([
      web('web', 'a.test', '/', 8000),
      web('api', 'a.test', '/apiv2', 8001),
      web('blog', 'b.test', '/', 8002),
    ]);
    const plan = planRoutes(next, before);
    expect(plan.operations).toMatchObject([{ kind: 'replace', id: 'omni-deploy:api', changed: ['match'] }]);
    expect(requests(plan)).toEqual(['PATCH /id/omni-deploy:api']);
  });

  it('moves a route whose new path makes it more specific than its neighbour', () => {
    const before = config([...v1.map((d) => d.route), ...FOREIGN]);
    const next = buildRoutes([
      web('web', 'a.test', '/x/y', 8000),
      web('api', 'a.test', '/api', 8001),
      web('blog', 'b.test', '/', 8002),
    ]);
    const plan = planRoutes(next, before);
    expect(plan.operations.map((op) => op.kind)).toEqual(['delete', 'add']);
    expect(applied(before, plan).apps.http.servers.srv0.routes).toEqual([
      ...next.map((d) => d.route),
      ...FOREIGN,
    ]);
  });

  it('adds before it deletes, so a renamed service is served throughout', () => {
    const before = config([...v1.map((d) => d.route), ...FOREIGN]);
    const next = buildRoutes([
      web('www', 'a.test', '/', 8000),
      web('api', 'a.test', '/api', 8001),
      web('blog', 'b.test', '/', 8002),
    ]);
    const plan = planRoutes(next, before);
    expect(plan.operations.map((op) => op.summary)).toEqual([
      '+ omni-deploy:www a.test -> 127.0.0.1:8000',
      '- omni-deploy:web (removed)',
    ]);
    // Before the old route, so the new one wins its host and path from the first request on.
    expect(requests(plan)).toEqual([
      'PUT /config/apps/http/servers/srv0/routes/1',
      'DELETE /id/omni-deploy:web',
    ]);
  });

  it('removes our routes when no service wants them, and only those', () => {
    const before = config([FOREIGN[0], v1[0]?.route, FOREIGN[1], v1[1]?.route, v1[2]?.route, FOREIGN[2]]);
    const plan = planRoutes([], before);
    expect(requests(plan)).toEqual([
      'DELETE /id/omni-deploy:blog',
      'DELETE /id/omni-deploy:web',
      'DELETE /id/omni-deploy:api',
    ]);
    expect(applied(before, plan).apps.http.servers.srv0.routes).toEqual(FOREIGN);
  });

  it('deletes a duplicate of our id by position (/id/ would reach the last copy) and keeps the first', () => {
    const stale = { ...v1[1]?.route, terminal: false };
    const before = config([...v1.map((d) => d.route), FOREIGN[0], stale]);
    const plan = planRoutes(v1, before);
    expect(plan.operations).toMatchObject([{ kind: 'delete', reason: 'duplicate', index: 4 }]);
    expect(requests(plan)).toEqual(['DELETE /config/apps/http/servers/srv0/routes/4']);
  });

  it('deletes routes in our namespace we would never generate, by position when /id/ cannot name them', () => {
    const odd = { '@id': 'omni-deploy:Bad Id/x', handle: [] };
    const before = config([odd, FOREIGN[0]]);
    const plan = planRoutes([], before);
    expect(requests(plan)).toEqual(['DELETE /config/apps/http/servers/srv0/routes/0']);
  });

  it('creates the routes array, or the whole server when given listen addresses', () => {
    expect(requests(planRoutes(v1, config(undefined)))).toEqual([
      'PUT /config/apps/http/servers/srv0/routes',
    ]);
    const empty = planRoutes(v1, null, { server: 'deploy', listen: [':8443'] });
    expect(empty.operations).toMatchObject([
      { kind: 'create-server', request: { method: 'PUT', value: { listen: [':8443'] } } },
    ]);
    expect(applied(null, empty)).toEqual({
      apps: { http: { servers: { deploy: { listen: [':8443'], routes: v1.map((d) => d.route) } } } },
    });
    expect(planRoutes([], null).operations).toEqual([]);
  });

  it('refuses to guess a server it was not told to create', () => {
    expect(() => planRoutes(v1, config(FOREIGN), { server: 'missing' })).toThrow(
      expect.objectContaining({ code: 'CADDY_NO_SERVER' }),
    );
  });

  it.each([
    [
      'in another server',
      { apps: { http: { servers: { srv0: { routes: [] }, other: { routes: [v1[0]?.route] } } } } },
    ],
    [
      'nested in a foreign route',
      config([{ handle: [{ handler: 'subroute', routes: [{ '@id': 'omni-deploy:web', handle: [] }] }] }]),
    ],
    [
      'as a foreign handler id',
      config([{ ...FOREIGN[0], handle: [{ '@id': 'omni-deploy:x:proxy', handler: 'static_response' }] }]),
    ],
  ])('refuses an id of ours %s (CADDY_FOREIGN_ID), before planning anything', (_, live) => {
    expect(() => planRoutes(v1, live)).toThrow(expect.objectContaining({ code: 'CADDY_FOREIGN_ID' }));
  });

  it.each([
    ['servers.srv0 is an array', { apps: { http: { servers: { srv0: [] } } } }],
    ['routes is an object', config(undefined, { routes: {} })],
    ['apps is a string', { apps: 'x' }],
  ])('refuses an unexpected config shape: %s', (_, live) => {
    expect(() => planRoutes(v1, live)).toThrow(expect.objectContaining({ code: 'CADDY_CONFIG_UNEXPECTED' }));
  });

  it('refuses routes built with another prefix, and a server name that is not one key', () => {
    const staging = buildRoutes([web('web', 'a.test', '/', 8000)], { idPrefix: 'staging:' });
    expect(() => planRoutes(staging, config([]))).toThrow(
      expect.objectContaining({ code: 'CADDY_ROUTES_INVALID' }),
    );
    expect(() => planRoutes(v1, config([]), { server: 'srv0/../x' })).toThrow(
      expect.objectContaining({ code: 'CADDY_INVALID_TARGET' }),
    );
  });

  it('renders each request with what it does', () => {
    const next = buildRoutes([web('web', 'a.test', '/', 8005), web('new', 'c.test', '/', 8003)]);
    const text = renderRoutePlan(planRoutes(next, config([...v1.map((d) => d.route), ...FOREIGN])));
    expect(text).toBe(
      [
        'Caddy routes (server srv0, ids omni-deploy:*): 4 request(s)',
        '  ~ omni-deploy:web upstream 127.0.0.1:8000 -> 127.0.0.1:8005',
        '      PATCH /id/omni-deploy:web:proxy/upstreams',
        '  + omni-deploy:new c.test -> 127.0.0.1:8003',
        '      PUT /config/apps/http/servers/srv0/routes/2',
        '  - omni-deploy:blog (removed)',
        '      DELETE /id/omni-deploy:blog',
        '  - omni-deploy:api (removed)',
        '      DELETE /id/omni-deploy:api',
      ].join('\n'),
    );
  });

  it('from any live state, reaches exactly the desired routes, keeps foreign routes and their order, and then plans nothing', () => {
    const pool = buildRoutes(
      Array.from({ length: 8 }, (_, i) =>
        web(`s${i}`, i === 6 ? '*.h0.test' : `h${i % 3}.test`, i < 3 ? '/' : `/p${i}`, 8000 + i),
      ),
    );
    // The same services with other paths and ports: stale versions of ours in a live config.
    const poolAlt = buildRoutes(
      Array.from({ length: 8 }, (_, i) => web(`s${i}`, `h${i % 3}.test`, `/q${i}/r`, 9000 + i)),
    );
    const liveRoute = fc.oneof(
      fc.constantFrom(...FOREIGN, { match: [{ host: ['z.test'] }] }),
      fc.constantFrom(...pool, ...poolAlt).map((d: DesiredRoute) => d.route),
      fc.constantFrom(...pool).map((d) => ({ ...d.route, terminal: false })),
    );
    fc.assert(
      fc.property(
        fc.array(liveRoute, { maxLength: 14 }),
        fc.subarray(pool.map((d) => d.service)),
        (live, names) => {
          const desired = pool.filter((d) => names.includes(d.service));
          const before = config(live);
          const plan = planRoutes(desired, before);
          const after = applied(before, plan).apps.http.servers.srv0.routes;
          expect(ours(after)).toEqual(desired.map((d) => d.route));
          expect(foreign(after)).toEqual(foreign(live));
          expect(planRoutes(desired, applied(before, plan)).operations).toEqual([]);
          // No request ever names a foreign object.
          for (const op of plan.operations) {
            const target = op.request.target;
            if ('id' in target) expect(target.id.startsWith('omni-deploy:')).toBe(true);
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
