/**
 * The contract every CaddyAdmin honours, run against the real Caddy (TCP and unix socket) and the in-memory
 * fake: the same requests must give the same results, errors and config.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { CaddyAdmin, CaddyRequestEvent } from '../../src/caddy/index.js';
import type { DeployError } from '../../src/errors.js';

export interface AdminHarness {
  admin: CaddyAdmin;
  /** The config each test starts from: `apps.http.servers.srv0` with `routes`, plus whatever the setup needs. */
  baseConfig: Record<string, unknown>;
  /** Requests `admin` sent since the last reset. */
  requests(): CaddyRequestEvent[];
  /** Puts `config` in place without going through `admin` (not counted). */
  reset(config: unknown): Promise<void>;
  close(): Promise<void>;
}

const ROUTES = ['apps', 'http', 'servers', 'srv0', 'routes'];

const route = (id: string, body = id) => ({
  '@id': id,
  match: [{ host: [`${id}.test`] }],
  handle: [{ handler: 'static_response', body }],
  terminal: true,
});

function withRoutes(base: Record<string, unknown>, routes: unknown[]): Record<string, unknown> {
  const config = structuredClone(base) as { apps: { http: { servers: { srv0: { routes: unknown[] } } } } };
  config.apps.http.servers.srv0.routes = routes;
  return config;
}

async function rejects(promise: Promise<unknown>, code: string): Promise<DeployError> {
  const error = (await promise.then(
    () => {
      throw new Error(`expected a DeployError ${code}, but the call succeeded`);
    },
    (e: unknown) => e,
  )) as DeployError;
  expect(error).toMatchObject({ name: 'DeployError', code });
  return error;
}

export function testCaddyAdmin(name: string, setup: () => Promise<AdminHarness>): void {
  describe(`CaddyAdmin contract: ${name}`, () => {
    let h: AdminHarness;
    let base: Record<string, unknown>;
    const routes = async () => (await h.admin.get({ path: ROUTES })).value as { '@id'?: string }[];
    const ids = async () => (await routes()).map((r) => r['@id']);

    beforeAll(async () => {
      h = await setup();
    });
    afterAll(async () => {
      await h?.close();
    });
    beforeEach(async () => {
      base = withRoutes(h.baseConfig, [route('a'), route('b')]);
      await h.reset(base);
    });

    it('reads the whole config, a sub-path and an object by @id, with an ETag', async () => {
      const whole = await h.admin.get({ path: [] });
      expect(whole.value).toEqual(base);
      expect(whole.etag).toMatch(/^"\/config\/ [0-9a-f]+"$/);
      expect((await h.admin.get({ path: [...ROUTES, 1] })).value).toEqual(route('b'));
      expect((await h.admin.get({ id: 'a', path: ['handle', 0, 'body'] })).value).toBe('a');
      expect(h.requests().map((r) => `${r.method} ${r.path} ${r.status}`)).toEqual([
        'GET /config/ 200',
        'GET /config/apps/http/servers/srv0/routes/1 200',
        'GET /id/a/handle/0/body 200',
      ]);
    });

    it('reads a missing key as null, and refuses to traverse through one', async () => {
      expect((await h.admin.get({ path: ['apps', 'tls'] })).value).toBeNull();
      await rejects(h.admin.get({ path: ['apps', 'tls', 'automation'] }), 'CADDY_REJECTED');
      await rejects(h.admin.get({ id: 'nobody' }), 'CADDY_NOT_FOUND');
    });

    it('PUT inserts before an existing index; POST appends; PUT past the end is refused', async () => {
      await h.admin.put({ path: [...ROUTES, 0] }, route('first'));
      await h.admin.post(ROUTES, route('last'));
      expect(await ids()).toEqual(['first', 'a', 'b', 'last']);
      const error = await rejects(h.admin.put({ path: [...ROUTES, 4] }, route('x')), 'CADDY_REJECTED');
      expect(error.message).toMatch(/out of bounds/);
      expect(await ids()).toEqual(['first', 'a', 'b', 'last']);
    });

    it('POST to an array index appends instead of replacing (the /id trap the planner avoids)', async () => {
      await h.admin.post([...ROUTES, 0], route('c'));
      expect(await ids()).toEqual(['a', 'b', 'c']);
    });

    it('PUT creates a key with its missing parents, and refuses an existing key', async () => {
      await h.admin.put({ path: ['apps', 'http', 'servers', 'srv0', 'errors', 'routes'] }, []);
      expect((await h.admin.get({ path: ['apps', 'http', 'servers', 'srv0', 'errors'] })).value).toEqual({
        routes: [],
      });
      await rejects(h.admin.put({ path: ROUTES }, []), 'CADDY_REJECTED');
    });

    it('PATCH replaces by @id and by a path inside an @id object; a missing key is refused', async () => {
      await h.admin.patch({ id: 'a' }, route('a', 'changed'));
      await h.admin.patch({ id: 'b', path: ['handle', 0, 'body'] }, 'patched');
      expect(await routes()).toEqual([route('a', 'changed'), route('b', 'patched')]);
      await rejects(h.admin.patch({ path: [...ROUTES.slice(0, 4), 'nothing'] }, 1), 'CADDY_REJECTED');
      await rejects(h.admin.patch({ id: 'nobody' }, {}), 'CADDY_NOT_FOUND');
    });

    it('DELETE removes by @id; an unknown @id is CADDY_NOT_FOUND; a missing config key is no error', async () => {
      await h.admin.delete({ id: 'a' });
      expect(await ids()).toEqual(['b']);
      await rejects(h.admin.delete({ id: 'a' }), 'CADDY_NOT_FOUND');
      await h.admin.delete({ path: ['apps', 'http', 'servers', 'nothing'] });
      expect(await ids()).toEqual(['b']);
    });

    it('If-Match: a fresh ETag is accepted, a stale one is CADDY_CONFLICT and changes nothing', async () => {
      const first = await h.admin.get({ path: [] });
      await h.admin.patch({ id: 'a' }, route('a', 'v2'), { ifMatch: first.etag as string });
      const second = await h.admin.get({ path: [] });
      expect(second.etag).not.toBe(first.etag);
      await rejects(
        h.admin.patch({ id: 'a' }, route('a', 'v3'), { ifMatch: first.etag as string }),
        'CADDY_CONFLICT',
      );
      expect((await h.admin.get({ id: 'a' })).value).toEqual(route('a', 'v2'));
      // An ETag of a sub-tree guards only that sub-tree.
      const serverTag = (await h.admin.get({ path: ROUTES.slice(0, 4) })).etag as string;
      await h.admin.put({ path: ['apps', 'http', 'grace_period'] }, '5s', { ifMatch: serverTag });
      await h.admin.delete({ path: ['apps', 'http', 'grace_period'] }, { ifMatch: serverTag });
      await rejects(h.admin.delete({ id: 'a' }, { ifMatch: first.etag as string }), 'CADDY_CONFLICT');
    });

    it('a change Caddy cannot load is CADDY_REJECTED and leaves the config as it was', async () => {
      const bad = { ...route('bad'), handle: [{ handler: 'no_such_handler' }] };
      const error = await rejects(h.admin.post(ROUTES, bad), 'CADDY_REJECTED');
      expect(error.message).toMatch(/no_such_handler/);
      await rejects(h.admin.post(ROUTES, { ...route('bad'), unknown_field: 1 }), 'CADDY_REJECTED');
      expect((await h.admin.get({ path: [] })).value).toEqual(base);
    });

    it.each([
      ['an id with "/"', { id: 'a/handle' }],
      ['an id that is ".."', { id: '..' }],
      ['an encoded "/"', { id: 'a%2Fhandle' }],
      ['a newline', { path: ['apps', 'http\nx'] }],
      ['a "..." segment', { path: [...ROUTES, '...'] }],
      ['a negative index', { path: [...ROUTES, -1] }],
      ['an empty key', { path: ['apps', ''] }],
      ['a query', { path: ['apps?x=1'] }],
    ])('refuses a target with %s before sending anything', async (_, target) => {
      await rejects(h.admin.delete(target as never), 'CADDY_INVALID_TARGET');
      await rejects(h.admin.get(target as never), 'CADDY_INVALID_TARGET');
      expect(h.requests()).toEqual([]);
    });

    it('refuses a value whose @id is not a string or number (Caddy 2.6.2 would keep it and break)', async () => {
      await rejects(h.admin.post(ROUTES, { '@id': { nested: true }, terminal: true }), 'CADDY_INVALID_VALUE');
      await rejects(
        h.admin.put({ path: [...ROUTES, 0] }, { handle: [{ '@id': null }] }),
        'CADDY_INVALID_VALUE',
      );
      expect(h.requests()).toEqual([]);
      expect((await h.admin.get({ path: [] })).value).toEqual(base);
    });

    it('reports every request it sends, marking the mutating ones', async () => {
      await h.admin.get({ id: 'a' });
      await h.admin.delete({ id: 'a' });
      await h.admin.delete({ id: 'a' }).catch(() => {});
      expect(h.requests()).toEqual([
        { method: 'GET', path: '/id/a', status: 200, mutating: false },
        { method: 'DELETE', path: '/id/a', status: 200, mutating: true },
        { method: 'DELETE', path: '/id/a', status: 404, mutating: true },
      ]);
    });
  });
}
