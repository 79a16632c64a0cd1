import type { DeployerContext } from '../../src/deployer/context.js';
import { runTick } from '../../src/deployer/tick.js';
import type { Manifest, Service } from '../../src/manifest/index.js';
import type { DeployerEvent } from '../../src/runtime/events.js';
import {
  createFakeCaddyAdmin,
  createFakeClock,
  createFakeHealthProbe,
  createFakeHostChecks,
  createFakeLock,
  createFakeNix,
  createFakeShell,
  createFakeSystemd,
  createMemoryManifestStore,
  createMemoryStateStore,
  type FakeStart,
} from '../../src/testing/index.js';
import { makeManifest, makeService, storePath } from '../builders.js';

/** The Caddy config the host starts with: our server holds one foreign route that must never change. */
export const FOREIGN_ROUTE = {
  '@id': 'someone-else',
  match: [{ host: ['other.example'] }],
  handle: [{ handler: 'static_response', body: 'x' }],
};

/**
 * A whole deployment world in memory: a dev machine that builds and signs closures into a binary cache, the
 * manifest bucket, and one host with fake Nix, systemd, Caddy, state, lock, probe, clock and checks.
 * `crashing(name)` makes a version's program exit at start, as a broken build would.
 */
export async function createWorld(options: { host?: string } = {}) {
  const host = options.host ?? 'biz';
  const caches = new Map();
  const dev = createFakeNix({ caches });
  const publicKey = await dev.generateKey('test-1', '/keys/sk', '/keys/pk');
  const crashing = new Set<string>();
  const systemd = createFakeSystemd({
    behaviour: (start: FakeStart) =>
      crashing.has(start.argv[0]?.split('/')[3] ?? '') ? { exits: 1 } : 'runs',
  });
  const caddy = createFakeCaddyAdmin({
    config: { apps: { http: { servers: { omni: { listen: [':80'], routes: [FOREIGN_ROUTE] } } } } },
  });
  const manifests = createMemoryManifestStore();
  const events: DeployerEvent[] = [];
  const adapters = {
    manifests,
    nix: createFakeNix({ caches }),
    systemd,
    caddy,
    state: createMemoryStateStore(),
    lock: createFakeLock(),
    probe: createFakeHealthProbe(),
    clock: createFakeClock(),
    checks: createFakeHostChecks({ users: ['pil-web'], groups: ['pil'] }),
    shell: createFakeShell(),
  };
  const ctx: DeployerContext = {
    settings: {
      host,
      substituter: 'file:///cache',
      trustedPublicKeys: [publicKey],
      insecureAllowUnsigned: false,
      secretsDir: '/var/lib/biz-secrets',
      profilesDir: '/nix/var/nix/profiles/biz',
      gcrootsDir: '/nix/var/nix/gcroots/biz',
      keep: 5,
      healthSettleMs: 3000,
      healthTimeoutMs: 1000,
      healthIntervalMs: 1000,
      deployTimeoutMs: 20_000,
      caddyServer: 'omni',
      onSuccess: undefined,
      onFailure: undefined,
    },
    adapters,
    onEvent: (e) => events.push(e),
    version: '0.0.0-test',
  };
  let etag: string | undefined;

  return {
    ctx,
    ...adapters,
    dev,
    events,
    tick: () => runTick(ctx),
    /** Builds, signs and exports a closure named `<name>` (e.g. `web-1.0`); returns its store path. */
    async build(name: string, options: { signed?: boolean } = {}) {
      const path = storePath(name);
      if (!dev.store.has(path)) dev.addPath(path);
      if (options.signed !== false) await dev.sign([path], '/keys/sk');
      await dev.exportToCache([path], '/cache');
      return path;
    },
    /** Makes programs of this store path exit with status 1 as soon as they start. */
    crash(path: string) {
      crashing.add(path.split('/')[3] as string);
    },
    /** Writes a manifest (raw text or a value) with compare-and-swap, as push does. */
    async publish(manifest: Manifest | string) {
      const text = typeof manifest === 'string' ? manifest : JSON.stringify(manifest, null, 2);
      etag = (await manifests.write(text, etag ? { ifMatch: etag } : { ifNoneMatch: '*' })).etag;
      return etag;
    },
    /** A manifest of services built from `name-version` closures. */
    async manifestOf(
      specs: { name: string; version: string; overrides?: Partial<Service> & Record<string, unknown> }[],
      generation = '2025-01-15T12:00:00Z',
    ) {
      const services = [];
      for (const spec of specs) {
        const path = await this.build(`${spec.name}-${spec.version}`);
        services.push(
          makeService({
            name: spec.name,
            artifact: { type: 'nix-closure', storePath: path },
            ...spec.overrides,
          }),
        );
      }
      return makeManifest(services, { generation });
    },
    /** Mutating systemd calls (not reads or status). */
    systemdChanges: () => systemd.calls.filter((c) => !/^(list|read|status)\b/.test(c)),
    /** Our routes in Caddy's live config, by id, and the foreign one. */
    routes() {
      const routes =
        (
          caddy.currentConfig() as {
            apps: {
              http: {
                servers: {
                  omni: { routes?: { '@id': string; handle: { upstreams: { dial: string }[] }[] }[] };
                };
              };
            };
          }
        ).apps.http.servers.omni.routes ?? [];
      return Object.fromEntries(
        routes.map((r) => [r['@id'], r.handle[0]?.upstreams?.[0]?.dial ?? 'foreign']),
      );
    },
  };
}

export type World = Awaited<ReturnType<typeof createWorld>>;

/** An http block for a service on port `port`. */
export const http = (port: number, path = '/', healthCheck?: string) => ({
  http: { domain: 'example.com', path, internalPort: port, ...(healthCheck ? { healthCheck } : {}) },
});
