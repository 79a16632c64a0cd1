/**
 * The foreign-route rules over real Caddy JSON: every config here is what `caddy adapt` (Debian's Caddy 2.6.2)
 * makes of a Caddyfile, so the shapes are the ones a host really has.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildRoutes } from '../../src/caddy/routes.js';
import {
  checkDomainAgainstForeign,
  classifyForeignRoute,
  findOrderViolations,
  foreignRoutes,
  placementFloor,
  routeClaims,
  routeRelation,
} from '../../src/policy/index.js';
import { requireCaddy } from '../caddy/caddy-process.js';

const PREFIX = 'omni-deploy:';
const dir = mkdtempSync(join(tmpdir(), 'omni-adapt-'));

/** Caddy's JSON for a Caddyfile, from the real `caddy adapt`. */
function adapt(caddyfile: string): { apps: { http: { servers: Record<string, { routes: unknown[] }> } } } {
  const file = join(dir, `Caddyfile-${Math.random().toString(36).slice(2)}`);
  writeFileSync(file, caddyfile);
  const r = spawnSync('caddy', ['adapt', '--config', file, '--adapter', 'caddyfile'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`caddy adapt failed: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

/** Debian's stock /etc/caddy/Caddyfile without its comments. */
const DEBIAN_STOCK = ':80 {\n\troot * /usr/share/caddy\n\tfile_server\n}\n';

const SITES = `{
	auto_https off
}
example.com {
	reverse_proxy 127.0.0.1:9000
}
api.example.com/v1/* {
	reverse_proxy 127.0.0.1:9001
}
*.wild.example {
	respond "wild"
}
http://shop.example, http://Www.Shop.Example {
	reverse_proxy 127.0.0.1:9100
}
:8080 {
	@blog host blog.example
	handle @blog {
		respond "blog"
	}
	respond "anything else"
}
`;

let stock: ReturnType<typeof adapt>;
let sites: ReturnType<typeof adapt>;

beforeAll(() => {
  requireCaddy();
  stock = adapt(DEBIAN_STOCK);
  sites = adapt(SITES);
});

describe('Caddy route shapes', () => {
  it("Debian's stock site is one route of srv0 without a host matcher: a fallback", () => {
    const routes = stock.apps.http.servers.srv0?.routes ?? [];
    expect(routes).toHaveLength(1);
    expect(routes[0]).not.toHaveProperty('match');
    expect(classifyForeignRoute(routes[0])).toBe('fallback');
    expect(routeClaims(routes[0])).toEqual([{}]);
  });

  it('a site adapts to a terminal route with a host matcher: it claims the host', () => {
    const route = sites.apps.http.servers.srv0?.routes.find((r) =>
      JSON.stringify(r).includes('"example.com"'),
    );
    expect(route).toMatchObject({ match: [{ host: ['example.com'] }], terminal: true });
    expect(classifyForeignRoute(route)).toBe('exact');
  });

  it('classifies every route of the sites', () => {
    const kinds = Object.values(sites.apps.http.servers).flatMap((s) => s.routes.map(classifyForeignRoute));
    // srv0: example.com, api.example.com/v1/*, *.wild.example; srv1: shop.example, :8080 with a nested blog.example.
    expect(kinds.sort()).toEqual(['exact', 'exact', 'exact', 'exact', 'fallback']);
    const wild = sites.apps.http.servers.srv0?.routes.find((r) => JSON.stringify(r).includes('wild'));
    expect(classifyForeignRoute(wild)).toBe('fallback');
  });

  it('finds the hosts named inside a catch-all site (handle @blog host blog.example)', () => {
    const catchAll = Object.values(sites.apps.http.servers)
      .flatMap((s) => s.routes)
      .find((r) => JSON.stringify(r).includes('blog.example'));
    expect(routeClaims(catchAll)).toContainEqual({ host: 'blog.example' });
    expect(routeClaims(catchAll)).toContainEqual({});
  });
});

describe('checkDomainAgainstForeign: our domain + path against every foreign route', () => {
  it.each([
    ['a domain nobody names', 'new.example', '/', undefined],
    ['a site of someone else', 'example.com', '/', 'srv0'],
    ['a path below a site of someone else', 'example.com', '/app', 'srv0'],
    ['another case of the same host', 'EXAMPLE.com', '/', 'srv0'],
    ['a subdomain of a site', 'www.example.com', '/', undefined],
    ['a path prefix that a foreign site takes', 'api.example.com', '/v1', 'srv0'],
    ['/ on a host whose /v1 is foreign', 'api.example.com', '/', 'srv0'],
    ['a path beside a foreign path prefix', 'api.example.com', '/v2', undefined],
    ['a path that only starts like a foreign prefix', 'api.example.com', '/v10', undefined],
    ['a name a foreign wildcard covers (a fallback)', 'a.wild.example', '/', undefined],
    ['the same wildcard', '*.wild.example', '/', 'srv0'],
    ['a second name of a multi-host site, in another case', 'www.shop.example', '/', 'srv1'],
    ['a host named inside a catch-all site, on another server', 'blog.example', '/', 'srv2'],
    ['a host the catch-all only falls back for', 'other.example', '/', undefined],
  ])('%s: %s%s', (_, domain, path, server) => {
    const found = checkDomainAgainstForeign(domain, path, foreignRoutes(sites, PREFIX));
    expect(found?.server).toBe(server);
    if (found)
      expect(found.message).toMatch(
        /is served by a route of someone else \(apps\.http\.servers\.srv\d\.routes\[\d\]\)/,
      );
  });

  it('does not count our own routes (by @id prefix) as foreign', () => {
    const [ours] = buildRoutes([
      { name: 'web', http: { domain: 'mine.example', path: '/', internalPort: 8000 } },
    ]);
    const config = structuredClone(stock);
    config.apps.http.servers.srv0?.routes.unshift(ours?.route);
    const foreign = foreignRoutes(config, PREFIX);
    expect(foreign.map((f) => f.index)).toEqual([1]);
    expect(checkDomainAgainstForeign('mine.example', '/', foreign)).toBeUndefined();
  });

  it('names the foreign route by its @id when it has one', () => {
    const config = {
      apps: {
        http: {
          servers: { a: { routes: [{ '@id': 'team-blog', match: [{ host: ['blog.test'] }], handle: [] }] } },
        },
      },
    };
    expect(checkDomainAgainstForeign('blog.test', '/', foreignRoutes(config, PREFIX))).toEqual({
      server: 'a',
      index: 0,
      id: 'team-blog',
      message:
        'blog.test is served by route "team-blog" of someone else (apps.http.servers.a.routes[0]); it is left alone and not routed for us',
    });
  });
});

describe('routeRelation: where our route goes relative to a foreign one', () => {
  const claims = (match: unknown) => routeClaims({ match, handle: [] });
  it.each([
    ['a catch-all', undefined, 'example.com', '/', 'fallback'],
    ['a catch-all on a path', [{ path: ['/static/*'] }], 'example.com', '/', 'fallback'],
    ['a catch-all on another path', [{ path: ['/static/*'] }], 'example.com', '/api', 'disjoint'],
    ['a catch-all on a suffix pattern', [{ path: ['*.php'] }], 'example.com', '/api', 'fallback'],
    ['an exact site', [{ host: ['example.com'] }], 'example.com', '/api', 'conflict'],
    [
      'an exact site on an exact path',
      [{ host: ['example.com'], path: ['/api/x'] }],
      'example.com',
      '/api',
      'conflict',
    ],
    [
      'an exact site on a wider prefix',
      [{ host: ['example.com'], path: ['/a*'] }],
      'example.com',
      '/api',
      'conflict',
    ],
    ['another site', [{ host: ['other.com'] }], 'example.com', '/', 'disjoint'],
    ['a wildcard covering our host', [{ host: ['*.example.com'] }], 'www.example.com', '/', 'fallback'],
    ['a wildcard one label off', [{ host: ['*.example.com'] }], 'a.b.example.com', '/', 'disjoint'],
    ['a site our wildcard would cover', [{ host: ['blog.example.com'] }], '*.example.com', '/', 'follow'],
    ['a site our wildcard does not cover', [{ host: ['example.com'] }], '*.example.com', '/', 'disjoint'],
    ['an overlapping foreign wildcard', [{ host: ['blog.*.com'] }], '*.example.com', '/', 'follow'],
    ['a host Caddy fills in at run time', [{ host: ['{env.SITE}'] }], 'example.com', '/', 'follow'],
    [
      'two matcher sets: the stronger wins',
      [{ path: ['/x'] }, { host: ['example.com'] }],
      'example.com',
      '/',
      'conflict',
    ],
    [
      'a host matcher that is not a list (ignored: any host)',
      [{ host: 'example.com' }],
      'example.com',
      '/',
      'fallback',
    ],
  ])('%s', (_, match, domain, path, relation) => {
    expect(routeRelation(domain, path, claims(match))).toBe(relation);
  });
});

describe('placementFloor and findOrderViolations', () => {
  const ours = buildRoutes(
    [
      { name: 'web', http: { domain: 'www.example.com', path: '/', internalPort: 8000 } },
      { name: 'wild', http: { domain: '*.example.com', path: '/', internalPort: 8001 } },
    ],
    { idPrefix: PREFIX },
  );
  const isOurs = (route: unknown) => String((route as { '@id'?: unknown })['@id']).startsWith(PREFIX);
  const describeOurs = (route: unknown) => ours.find((d) => d.route === route);
  const blog = {
    match: [{ host: ['blog.example.com'] }],
    handle: [{ handler: 'static_response' }],
    terminal: true,
  };
  let catchAll: unknown;
  beforeAll(() => {
    catchAll = stock.apps.http.servers.srv0?.routes[0];
  });

  it('puts our exact routes ahead of everything foreign that does not claim their host', () => {
    const routes = [blog, catchAll];
    expect(placementFloor('www.example.com', '/', routes, isOurs)).toBe(0);
  });

  it('puts our wildcard after a foreign site it would cover, and ahead of a catch-all', () => {
    const routes = [catchAll, blog, { handle: [] }];
    expect(placementFloor('*.example.com', '/', routes, isOurs)).toBe(2);
  });

  it('finds our routes that sit ahead of a route they must follow', () => {
    const [web, wild] = ours.map((d) => d.route);
    expect(findOrderViolations([web, wild, blog, catchAll], describeOurs)).toEqual([
      { index: 1, foreign: 2, relation: 'follow' },
    ]);
    expect(findOrderViolations([web, blog, wild, catchAll], describeOurs)).toEqual([]);
    const taken = { match: [{ host: ['www.example.com'] }], handle: [] };
    expect(findOrderViolations([taken, web], describeOurs)).toEqual([
      { index: 1, foreign: 0, relation: 'conflict' },
    ]);
  });
});

describe('hostile or odd configs', () => {
  it.each([
    ['nothing', undefined],
    ['no apps', {}],
    ['servers that are not objects', { apps: { http: { servers: { a: 1, b: { routes: 'x' } } } } }],
    ['routes that are not objects', { apps: { http: { servers: { a: { routes: [null, 1, 'x', []] } } } } }],
  ])('%s gives no claim that could refuse us', (_, config) => {
    expect(checkDomainAgainstForeign('example.com', '/', foreignRoutes(config, PREFIX))).toBeUndefined();
  });

  it('bounds the walk of nested subroutes', () => {
    let route: unknown = { match: [{ host: ['deep.example'] }], handle: [] };
    for (let i = 0; i < 10_000; i++) route = { handle: [{ handler: 'subroute', routes: [route] }] };
    const claims = routeClaims(route);
    expect(claims.length).toBeLessThan(20);
    expect(claims.some((c) => c.host === 'deep.example')).toBe(false);
  });

  it('bounds the number of claims of one route', () => {
    const route = {
      match: [{ host: Array.from({ length: 50_000 }, (_, i) => `h${i}.example`) }],
      handle: [],
    };
    expect(routeClaims(route).length).toBeLessThanOrEqual(50_000);
    expect(
      routeClaims({ match: Array.from({ length: 20_000 }, () => ({ host: ['a.example'] })) }).length,
    ).toBe(10_000);
  });
});
