/**
 * Requests through a real Caddy reach the right upstream for host and path, next to routes of another owner,
 * and the recommended service set-ups keep (or restore) our routes across restarts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildRoutes, createCaddyAdmin, reconcileRoutes } from '../../src/caddy/index.js';
import { makeService } from '../builders.js';
import { type CaddyProcess, startCaddy } from './caddy-process.js';
import { get, startUpstream, type Upstream } from './upstream.js';

const svc = (name: string, domain: string, path: string, internalPort: number) =>
  makeService({ name, http: { domain, path, internalPort } });

describe('traffic through Caddy', () => {
  let caddy: CaddyProcess;
  const up: Record<string, Upstream> = {};

  beforeAll(async () => {
    caddy = await startCaddy();
    for (const name of ['root', 'api', 'v2', 'other', 'wild']) up[name] = await startUpstream(name);
  });
  afterAll(async () => {
    await caddy?.stop();
    await Promise.all(Object.values(up).map((u) => u.close()));
  });

  const services = () => [
    svc('root', 'a.test', '/', up.root?.port as number),
    svc('api', 'a.test', '/api', up.api?.port as number),
    svc('v2', 'a.test', '/api/v2', up.v2?.port as number),
    svc('other', 'b.test', '/', up.other?.port as number),
    svc('wild', '*.w.test', '/', up.wild?.port as number),
  ];

  it.each([
    ['a.test', '/', 'root /'],
    ['a.test', '/x', 'root /x'],
    ['a.test', '/api', 'api /api'],
    ['a.test', '/api/', 'api /api/'],
    ['a.test', '/api/x/y?q=1', 'api /api/x/y?q=1'],
    ['a.test', '/apix', 'root /apix'],
    ['a.test', '/ap', 'root /ap'],
    ['a.test', '/api/v2', 'v2 /api/v2'],
    ['a.test', '/api/v2/users', 'v2 /api/v2/users'],
    ['a.test', '/api/v20', 'api /api/v20'],
    ['A.Test', '/api', 'api /api'],
    ['b.test', '/api', 'other /api'],
    ['x.w.test', '/', 'wild /'],
    ['blog.test', '/', 'foreign blog'],
    ['foreign.test', '/api/z', 'foreign api'],
    ['nobody.test', '/', 'foreign catch-all'],
  ])('Host %s, path %s → %s', async (host, path, body) => {
    await reconcileRoutes(createCaddyAdmin({ address: caddy.adminAddress }), buildRoutes(services()));
    const reply = await get(caddy.httpPort, host, path);
    expect(reply.body).toBe(body);
    expect(reply.status).toBe(body === 'foreign catch-all' ? 404 : 200);
  });

  it('stops routing a removed service: its paths fall through to the next route', async () => {
    const admin = createCaddyAdmin({ address: caddy.adminAddress });
    await reconcileRoutes(admin, buildRoutes(services().filter((s) => s.name !== 'api')));
    expect((await get(caddy.httpPort, 'a.test', '/api/x')).body).toBe('root /api/x');
    await reconcileRoutes(admin, buildRoutes([]));
    expect((await get(caddy.httpPort, 'a.test', '/')).body).toBe('foreign catch-all');
  });
});

describe('Caddy restarts', () => {
  it('with --resume (autosaved config), our routes survive and the next reconcile changes nothing', async () => {
    const caddy = await startCaddy({ persist: true });
    const upstream = await startUpstream('web');
    try {
      const admin = createCaddyAdmin({ address: caddy.adminAddress });
      const desired = buildRoutes([svc('web', 'a.test', '/', upstream.port)]);
      await reconcileRoutes(admin, desired);
      await caddy.restart({ resume: true });
      expect((await get(caddy.httpPort, 'a.test', '/')).body).toBe('web /');
      expect(await reconcileRoutes(admin, desired)).toMatchObject({ requests: 1, mutations: 0 });
    } finally {
      await caddy.stop();
      await upstream.close();
    }
  });

  it('without it, Caddy serves its original config until one reconcile puts our routes back', async () => {
    const caddy = await startCaddy({ unixSocket: true });
    const upstream = await startUpstream('web');
    try {
      const admin = createCaddyAdmin({ address: caddy.adminAddress });
      const desired = buildRoutes([svc('web', 'a.test', '/', upstream.port)]);
      await reconcileRoutes(admin, desired);
      await caddy.restart();
      expect((await get(caddy.httpPort, 'a.test', '/')).body).toBe('foreign catch-all');
      expect(await reconcileRoutes(admin, desired)).toMatchObject({ attempts: 1, mutations: 1 });
      expect((await get(caddy.httpPort, 'a.test', '/')).body).toBe('web /');
    } finally {
      await caddy.stop();
      await upstream.close();
    }
  });
});
