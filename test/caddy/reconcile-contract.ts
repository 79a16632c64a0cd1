/**
 * Reconciling our routes, run against the real Caddy and the fake alike: the behaviour the deployer relies on
 * (add/change/remove, foreign routes untouched, idle = zero mutations, restart and drift repaired, other writers
 * handled) must hold on both.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  buildRoutes,
  type CaddyAdmin,
  type CaddyRequestEvent,
  type ReconcileRoutesOptions,
  reconcileRoutes,
} from '../../src/caddy/index.js';
import type { DeployError } from '../../src/errors.js';
import { makeService } from '../builders.js';

export interface ReconcileHarness {
  admin: CaddyAdmin;
  /** Another writer on the same Caddy. */
  foreign: CaddyAdmin;
  /** What Caddy was started with: server srv0 holding foreign routes (one with @id "team-blog"). */
  baseConfig: Record<string, unknown>;
  /** A listen address a new server may use. */
  spareListen: string;
  reset(config: unknown): Promise<void>;
  /** Caddy restarted the way a plain `caddy run --config` service restarts: API changes gone. */
  restart(): Promise<void>;
  /** The body of a GET, byte for byte. */
  raw(path: string): Promise<string>;
  close(): Promise<void>;
}

const ROUTES = ['apps', 'http', 'servers', 'srv0', 'routes'];
const ROUTES_URL = '/config/apps/http/servers/srv0/routes';

const svc = (name: string, domain: string, path: string, internalPort: number) =>
  makeService({ name, http: { domain, path, internalPort } });

type Route = { '@id'?: string };

/** Wraps an admin: counts its requests, runs hooks around mutations, optionally hides ETags (Caddy < 2.6). */
function instrument(
  admin: CaddyAdmin,
  options: {
    before?: (n: number) => Promise<void>;
    after?: (n: number) => Promise<void>;
    etags?: boolean;
  } = {},
) {
  const events: CaddyRequestEvent[] = [];
  let n = 0;
  const wrap =
    <A extends unknown[]>(method: CaddyRequestEvent['method'], fn: (...args: A) => Promise<void>) =>
    async (...args: A) => {
      const i = n++;
      await options.before?.(i);
      events.push({ method, path: '', status: undefined, mutating: true });
      await fn(...args);
      await options.after?.(i);
    };
  const wrapped: CaddyAdmin = {
    address: admin.address,
    async get(target) {
      events.push({ method: 'GET', path: '', status: undefined, mutating: false });
      const read = await admin.get(target);
      return options.etags === false ? { ...read, etag: undefined } : read;
    },
    put: wrap('PUT', (t, v, w) => admin.put(t, v, w)),
    post: wrap('POST', (p, v, w) => admin.post(p, v, w)),
    patch: wrap('PATCH', (t, v, w) => admin.patch(t, v, w)),
    delete: wrap('DELETE', (t, w) => admin.delete(t, w)),
  };
  return { admin: wrapped, events };
}

export function testReconcile(name: string, setup: () => Promise<ReconcileHarness>): void {
  describe(`reconcileRoutes contract: ${name}`, () => {
    let h: ReconcileHarness;
    const routes = async () => (await h.admin.get({ path: ROUTES })).value as Route[];
    const ours = async () => (await routes()).filter((r) => r['@id']?.startsWith('omni-deploy:'));
    /** The raw bytes of every foreign route, found wherever it sits now. */
    const foreignBytes = async () => {
      const all = await routes();
      const bytes: string[] = [];
      for (const [i, route] of all.entries()) {
        if (!route['@id']?.startsWith('omni-deploy:')) bytes.push(await h.raw(`${ROUTES_URL}/${i}`));
      }
      return [...bytes, await h.raw('/id/team-blog')];
    };

    beforeAll(async () => {
      h = await setup();
    });
    afterAll(async () => {
      await h?.close();
    });
    beforeEach(async () => {
      await h.reset(h.baseConfig);
    });

    it('adds, changes and removes our routes as the services change; foreign routes stay byte-identical', async () => {
      const original = await foreignBytes();
      const steps = [
        [svc('web', 'a.test', '/', 8000), svc('api', 'a.test', '/api', 8001)],
        [
          svc('web', 'a.test', '/', 8100),
          svc('api', 'a.test', '/v2', 8001),
          svc('blog', 'b.test', '/', 8002),
        ],
        [svc('blog', 'b.test', '/', 8002)],
        [],
      ];
      for (const services of steps) {
        const desired = buildRoutes(services);
        const result = await reconcileRoutes(h.admin, desired);
        expect(result.plan.operations.length).toBeGreaterThan(0);
        expect(await ours()).toEqual(desired.map((d) => d.route));
        expect(await foreignBytes()).toEqual(original);
      }
      expect((await h.admin.get({ path: [] })).value).toEqual(h.baseConfig);
    });

    it('a second apply sends one GET and zero mutating requests', async () => {
      const desired = buildRoutes([svc('web', 'a.test', '/', 8000), svc('api', 'a.test', '/api', 8001)]);
      const first = await reconcileRoutes(h.admin, desired);
      expect(first).toMatchObject({ attempts: 1, mutations: 2, requests: 5 });
      const { admin, events } = instrument(h.admin);
      const second = await reconcileRoutes(admin, desired);
      expect(second).toMatchObject({ attempts: 1, mutations: 0, requests: 1 });
      expect(second.plan.operations).toEqual([]);
      expect(events.map((e) => e.method)).toEqual(['GET']);
    });

    it('refuses a route on a domain a foreign route names, and puts a wildcard of ours after the foreign sites it covers', async () => {
      const original = await foreignBytes();
      const desired = buildRoutes([
        svc('web', 'a.test', '/', 8000),
        svc('takeover', 'BLOG.test', '/', 8001),
        svc('wild', '*.test', '/', 8002),
      ]);
      const result = await reconcileRoutes(h.admin, desired);
      expect(result.plan.refused).toEqual([
        expect.objectContaining({
          id: 'omni-deploy:takeover',
          domain: 'blog.test',
          foreign: { server: 'srv0', index: 0, id: 'team-blog' },
        }),
      ]);
      // Exact host of ours first; the wildcard after blog.test and foreign.test, ahead of the catch-all.
      expect((await routes()).map((r) => r['@id'] ?? 'foreign')).toEqual([
        'omni-deploy:web',
        'team-blog',
        'foreign',
        'omni-deploy:wild',
        'foreign',
      ]);
      expect(await foreignBytes()).toEqual(original);
      const again = await reconcileRoutes(h.admin, desired);
      expect(again).toMatchObject({ mutations: 0, requests: 1 });
      expect(again.plan.refused.map((r) => r.id)).toEqual(['omni-deploy:takeover']);
    });

    it('switches an upstream with one PATCH of the proxy handler', async () => {
      await reconcileRoutes(h.admin, buildRoutes([svc('web', 'a.test', '/', 8000)]));
      const swap = await reconcileRoutes(
        h.admin,
        buildRoutes([svc('web', 'a.test', '/', 8000)], { ports: { web: 8500 } }),
      );
      expect(swap.mutations).toBe(1);
      expect(swap.plan.operations).toMatchObject([{ kind: 'swap-upstream', to: ['127.0.0.1:8500'] }]);
      expect((await h.admin.get({ id: 'omni-deploy:web:proxy', path: ['upstreams'] })).value).toEqual([
        { dial: '127.0.0.1:8500' },
      ]);
    });

    it('restores our routes in one reconcile after Caddy restarts with its original config', async () => {
      const desired = buildRoutes([svc('web', 'a.test', '/', 8000), svc('api', 'a.test', '/api', 8001)]);
      await reconcileRoutes(h.admin, desired);
      await h.restart();
      expect(await ours()).toEqual([]);
      const restored = await reconcileRoutes(h.admin, desired);
      expect(restored).toMatchObject({ attempts: 1, mutations: 2 });
      expect(await ours()).toEqual(desired.map((d) => d.route));
      expect((await reconcileRoutes(h.admin, desired)).mutations).toBe(0);
    });

    it('repairs drift in our routes (edited, deleted, duplicated) and keeps what others added', async () => {
      const desired = buildRoutes([
        svc('web', 'a.test', '/', 8000),
        svc('api', 'a.test', '/api', 8001),
        svc('docs', 'd.test', '/', 8003),
      ]);
      await reconcileRoutes(h.admin, desired);
      const theirs = {
        '@id': 'team-shop',
        match: [{ host: ['shop.test'] }],
        handle: [{ handler: 'static_response' }],
      };
      await h.foreign.patch({ id: 'omni-deploy:web:proxy', path: ['upstreams'] }, [
        { dial: '127.0.0.1:9999' },
      ]);
      await h.foreign.delete({ id: 'omni-deploy:api' });
      await h.foreign.post(ROUTES, (await h.admin.get({ id: 'omni-deploy:docs' })).value);
      await h.foreign.put({ path: [...ROUTES, 0] }, theirs);
      const repair = await reconcileRoutes(h.admin, desired);
      expect(repair.plan.operations.map((op) => op.kind).sort()).toEqual(['add', 'delete', 'swap-upstream']);
      expect(await ours()).toEqual(desired.map((d) => d.route));
      expect((await h.admin.get({ id: 'team-shop' })).value).toEqual(theirs);
    });

    it('with ETags: another writer between our read and our write gets a 412, we re-plan once and succeed', async () => {
      const theirs = { '@id': 'team-shop', handle: [{ handler: 'static_response' }] };
      const { admin } = instrument(h.admin, {
        before: async (n) => {
          if (n === 0) await h.foreign.post(ROUTES, theirs);
        },
      });
      const events: string[] = [];
      const desired = buildRoutes([svc('web', 'a.test', '/', 8000)]);
      const result = await reconcileRoutes(admin, desired, { onEvent: (e) => events.push(e.type) });
      expect(result.attempts).toBe(2);
      expect(events).toEqual(['caddy-plan', 'caddy-retry', 'caddy-plan', 'caddy-request']);
      expect(await ours()).toEqual(desired.map((d) => d.route));
      expect((await h.admin.get({ id: 'team-shop' })).value).toEqual(theirs);
    });

    it('without ETags (older Caddy): the read after each write notices the other writer, and we re-plan', async () => {
      const { admin } = instrument(h.admin, {
        etags: false,
        after: async (n) => {
          if (n === 0) await h.foreign.delete({ id: 'omni-deploy:web' });
        },
      });
      const desired = buildRoutes([svc('web', 'a.test', '/', 8000), svc('api', 'a.test', '/api', 8001)]);
      const result = await reconcileRoutes(admin, desired);
      expect(result.attempts).toBe(2);
      expect(await ours()).toEqual(desired.map((d) => d.route));
    });

    it('gives up with CADDY_CONFLICT when another writer changes the config before every write', async () => {
      let k = 0;
      const { admin } = instrument(h.admin, {
        before: async () => {
          await h.foreign.post(ROUTES, { '@id': `team-${k++}`, handle: [] });
        },
      });
      const options: ReconcileRoutesOptions = { retries: 2 };
      const error = (await reconcileRoutes(
        admin,
        buildRoutes([svc('web', 'a.test', '/', 8000)]),
        options,
      ).catch((e: unknown) => e)) as DeployError;
      expect(error).toMatchObject({
        code: 'CADDY_CONFLICT',
        message: expect.stringMatching(/after 3 attempt/),
      });
      expect(await ours()).toEqual([]);
    });

    it('refuses (CADDY_FOREIGN_ID) and sends nothing when an id of ours sits inside a foreign object', async () => {
      await h.foreign.post(ROUTES, {
        handle: [{ handler: 'subroute', routes: [{ '@id': 'omni-deploy:web', handle: [] }] }],
      });
      const { admin, events } = instrument(h.admin);
      await expect(
        reconcileRoutes(admin, buildRoutes([svc('web', 'a.test', '/', 8000)])),
      ).rejects.toMatchObject({
        code: 'CADDY_FOREIGN_ID',
      });
      expect(events.filter((e) => e.mutating)).toEqual([]);
    });

    it('creates a missing server when given listen addresses, and refuses to guess otherwise', async () => {
      const desired = buildRoutes([svc('web', 'a.test', '/', 8000)]);
      await expect(reconcileRoutes(h.admin, desired, { server: 'deploy' })).rejects.toMatchObject({
        code: 'CADDY_NO_SERVER',
      });
      // A non-80 port with host routes would make Caddy manage certificates: not in a test.
      const options = {
        server: 'deploy',
        listen: [h.spareListen],
        serverDefaults: { automatic_https: { disable: true } },
      };
      const created = await reconcileRoutes(h.admin, desired, options);
      expect(created.plan.operations.map((op) => op.kind)).toEqual(['create-server']);
      expect((await h.admin.get({ path: ['apps', 'http', 'servers', 'deploy', 'routes'] })).value).toEqual([
        desired[0]?.route,
      ]);
      expect((await reconcileRoutes(h.admin, desired, options)).mutations).toBe(0);
    });
  });
}
