import { describe, expect, it } from 'vitest';
import { buildRoutes, type RoutedService } from '../../src/caddy/index.js';
import { isDeployError } from '../../src/errors.js';
import { makeService } from '../builders.js';

const web = (name: string, domain: string, path: string, internalPort: number): RoutedService =>
  makeService({ name, http: { domain, path, internalPort } });

function problems(fn: () => unknown): string[] {
  try {
    fn();
  } catch (error) {
    if (isDeployError(error, 'CADDY_ROUTES_INVALID'))
      return (error.details as { problems: string[] }).problems;
    throw error;
  }
  throw new Error('expected CADDY_ROUTES_INVALID');
}

describe('buildRoutes', () => {
  it('makes one terminal reverse_proxy route per HTTP service, with ids in our namespace', () => {
    const [route] = buildRoutes([web('api', 'Example.COM', '/api', 8001)]);
    expect(route).toEqual({
      id: 'omni-deploy:api',
      proxyId: 'omni-deploy:api:proxy',
      service: 'api',
      domain: 'example.com',
      path: '/api',
      dial: '127.0.0.1:8001',
      route: {
        '@id': 'omni-deploy:api',
        match: [{ host: ['example.com'], path: ['/api', '/api/*'] }],
        handle: [
          {
            '@id': 'omni-deploy:api:proxy',
            handler: 'reverse_proxy',
            upstreams: [{ dial: '127.0.0.1:8001' }],
          },
        ],
        terminal: true,
      },
    });
  });

  it('matches the whole host for "/" (no path matcher)', () => {
    const [route] = buildRoutes([web('web', 'example.com', '/', 8000)]);
    expect(route?.route.match).toEqual([{ host: ['example.com'] }]);
  });

  it('skips services without http, and honours another id prefix and a port override', () => {
    const routes = buildRoutes([makeService({ name: 'worker' }), web('web', 'example.com', '/', 8000)], {
      idPrefix: 'staging:',
      ports: { web: 9000 },
    });
    expect(routes.map((r) => [r.id, r.dial])).toEqual([['staging:web', '127.0.0.1:9000']]);
  });

  it.each([
    {
      title: 'deeper paths before shallower ones on the same host',
      services: [
        web('root', 'a.test', '/', 8000),
        web('api', 'a.test', '/api', 8001),
        web('v2', 'a.test', '/api/v2', 8002),
      ],
      order: ['v2', 'api', 'root'],
    },
    {
      title: 'exact hosts before wildcards, longer wildcards first',
      services: [
        web('any', '*.test', '/', 8000),
        web('deep', '*.x.test', '/', 8001),
        web('one', 'a.x.test', '/', 8002),
      ],
      order: ['one', 'deep', 'any'],
    },
    {
      title: 'a stable order for unrelated hosts, whatever the input order',
      services: [web('b', 'b.test', '/', 8000), web('a', 'a.test', '/', 8001)],
      order: ['a', 'b'],
    },
  ])('orders routes most specific first: $title', ({ services, order }) => {
    expect(buildRoutes(services).map((r) => r.service)).toEqual(order);
    expect(buildRoutes([...services].reverse()).map((r) => r.service)).toEqual(order);
  });

  it.each([
    [
      'a service name with "/" (it would become an /id/ path)',
      { ...web('web', 'a.test', '/', 8000), name: 'we/b' },
      /services\[0\]\.name/,
    ],
    ['a domain with a port', web('web', 'a.test:8080', '/', 8000), /http\.domain/],
    ['a domain with a newline', web('web', 'a.test\nb', '/', 8000), /http\.domain/],
    ['a Caddy placeholder in the path', web('web', 'a.test', '/{http.request.uri}', 8000), /http\.path/],
    ['a wildcard path', web('web', 'a.test', '/api*', 8000), /http\.path/],
    ['a trailing slash', web('web', 'a.test', '/api/', 8000), /http\.path/],
    ['a dot segment', web('web', 'a.test', '/a/../b', 8000), /http\.path/],
    ['a privileged port', web('web', 'a.test', '/', 80), /port/],
    ['a fractional port', web('web', 'a.test', '/', 8000.5), /port/],
  ])('refuses %s', (_, service, pattern) => {
    expect(problems(() => buildRoutes([service as RoutedService])).join('\n')).toMatch(pattern);
  });

  it('reports every problem at once: duplicates, a bad prefix, an unknown port override', () => {
    const found = problems(() =>
      buildRoutes(
        [web('a', 'x.test', '/api', 8000), web('b', 'X.test', '/api', 8001), web('a', 'y.test', '/', 8002)],
        { idPrefix: 'bad/prefix', ports: { nobody: 9000 } },
      ),
    );
    expect(found).toEqual([
      expect.stringMatching(/^idPrefix:/),
      expect.stringMatching(/^services\[1\]\.http: x\.test\/api is already routed to service a/),
      expect.stringMatching(/^services\[2\]\.name: "a" appears twice/),
      expect.stringMatching(/^ports: "nobody"/),
    ]);
  });
});
