import type { DeployerContext, TickSettings } from '../deployer/context.js';
import { runTick, type TickReport } from '../deployer/tick.js';
import type { Manifest, Service } from '../manifest/schema.js';
import { signManifest } from '../manifest/signature.js';
import type { DeployerEvent } from '../runtime/events.js';
import { makeManifest, makeService, makeStorePath } from './builders.js';
import { createFakeCaddyAdmin, type FakeCaddyAdmin } from './fake-caddy.js';
import { createFakeClock, type FakeClock } from './fake-clock.js';
import { createFakeConnections, type FakeConnections } from './fake-connections.js';
import { createFakeHostChecks, type FakeHostChecks } from './fake-host-checks.js';
import { createFakeLock, type FakeLock } from './fake-lock.js';
import { createFakeNix, type FakeBinaryCache, type FakeNix } from './fake-nix.js';
import { createFakeHealthProbe, type FakeHealthProbe } from './fake-probe.js';
import { createFakeShell, type FakeShell } from './fake-shell.js';
import { createFakeSystemd, type FakeStart, type FakeSystemd } from './fake-systemd.js';
import { createMemoryManifestStore, type MemoryManifestStore } from './memory-manifest-store.js';
import { createMemoryStateStore, type MemoryStateStore } from './memory-state-store.js';

/** Options of {@link createFakeWorld}. */
export interface FakeWorldOptions {
  /** The host's name (its deployer applies the services listed for it). Default `biz`. */
  host?: string;
  /**
   * Settings over the defaults (health gate 3 s settle / 20 s deadline, switch settle 1 s, drain timeout 30 s,
   * Caddy server `omni`, keep 5).
   */
  settings?: Partial<TickSettings>;
  /**
   * Caddy's config when the world starts. Default: the server `settings.caddyServer` listening on `:80`, with
   * no routes.
   */
  caddyConfig?: unknown;
  /** Users and groups that exist on the host (`root` always does): the pre-flight checks them. */
  users?: string[];
  groups?: string[];
  /**
   * The bucket, to share it with other worlds: several worlds with their own `host` and one bucket (and one
   * `clock`) are a fleet. Default: a bucket of this world's own.
   */
  manifests?: MemoryManifestStore;
  /** The time, to share it with other worlds. Default: a fake clock of this world's own. */
  clock?: FakeClock;
}

/** One service of {@link FakeWorld.manifestOf}: built as the closure `<name>-<version>`. */
export interface FakeWorldServiceSpec {
  name: string;
  version: string;
  /** Fields of the service over {@link makeService}'s (e.g. `http`, `hosts`, `exec`). */
  overrides?: Partial<Service> & Record<string, unknown>;
}

/**
 * A whole deployment in memory (see {@link createFakeWorld}). The adapters are the host's; `dev` is the
 * developer's machine, which builds and signs closures into the binary cache the host pulls from.
 */
export interface FakeWorld {
  /** The deployer's context for one tick on the host: pass it to `runTick`, or call {@link FakeWorld.tick}. */
  ctx: DeployerContext;
  /** The bucket: manifest, archives, host status. */
  manifests: MemoryManifestStore;
  /** The host's Nix (its store starts empty; it copies from the world's binary cache). */
  nix: FakeNix;
  systemd: FakeSystemd;
  caddy: FakeCaddyAdmin;
  state: MemoryStateStore;
  lock: FakeLock;
  probe: FakeHealthProbe;
  /** Time: health gates and retries advance it instead of waiting. */
  clock: FakeClock;
  checks: FakeHostChecks;
  /** Caddy's connections to local ports (none unless the test sets some): what a blue/green drain waits on. */
  connections: FakeConnections;
  /** Runs the success and failure hooks. */
  shell: FakeShell;
  /** The developer's Nix, holding the signing key. */
  dev: FakeNix;
  /**
   * The public key the host trusts (`settings.trustedPublicKeys`); closures signed by `dev` and manifests
   * {@link FakeWorld.publish}ed carry it.
   */
  publicKey: string;
  /** The secret half of {@link FakeWorld.publicKey} (`name:base64`), as push's `--key-file` holds it. */
  secretKey: string;
  /** Every event the deployer reported, in order. */
  events: DeployerEvent[];
  /** Runs one deployer tick on the host. */
  tick(): Promise<TickReport>;
  /** Builds, signs (unless `signed: false`) and exports the closure `<name>` to the cache; returns its path. */
  build(name: string, options?: { signed?: boolean }): Promise<string>;
  /** Makes the program of this store path exit with status 1 as soon as it starts, as a broken build would. */
  crash(storePath: string): void;
  /**
   * Writes a manifest (a value, or its text) with compare-and-swap, signed with {@link FakeWorld.secretKey} as
   * push signs it; returns its ETag. `options.signWith`: another secret key, or `false` to write the text as it
   * is (unsigned, or an already signed text).
   */
  publish(manifest: Manifest | string, options?: { signWith?: string | false }): Promise<string>;
  /**
   * Builds every service's closure and returns a manifest of them (not yet published). Without `generation`,
   * each call's is one second later than the last call's, from `2025-01-15T12:00:00Z`, as push's would be.
   */
  manifestOf(specs: FakeWorldServiceSpec[], generation?: string): Promise<Manifest>;
  /** The mutating systemd calls so far (not list, read or status). */
  systemdChanges(): string[];
  /** The routes in Caddy's live config (server `settings.caddyServer`), by `@id`: upstream dial or `foreign`. */
  routes(): Record<string, string>;
}

const DEFAULT_SETTINGS: Omit<TickSettings, 'host' | 'trustedPublicKeys'> = {
  substituter: 'file:///cache',
  insecureAllowUnsigned: false,
  insecureAllowUnsignedManifest: false,
  secretsDir: '/var/lib/biz-secrets',
  profilesDir: '/nix/var/nix/profiles/biz',
  gcrootsDir: '/nix/var/nix/gcroots/biz',
  keep: 5,
  healthSettleMs: 3000,
  healthTimeoutMs: 1000,
  healthIntervalMs: 1000,
  deployTimeoutMs: 20_000,
  switchSettleMs: 1000,
  drainTimeoutMs: 30_000,
  caddyServer: 'omni',
  onSuccess: undefined,
  onFailure: undefined,
};

/**
 * A whole deployment world in memory, for testing code that drives the deployer (or pushes to it) without
 * Nix, systemd, Caddy or a bucket: a developer machine that builds and signs closures into a binary cache
 * (`file:///cache`), the manifest bucket, and one host with fake Nix, systemd, Caddy, state, lock, health
 * probe, clock and host checks, all wired into a {@link DeployerContext}. Every fake is the package's own,
 * with the same contract as the real adapter, so what passes here passes against the real ones.
 *
 * The one non-obvious thing: programs run by default; `crash(storePath)` is how a test makes a version fail
 * its health gate (and so exercise a rollback).
 */
export async function createFakeWorld(options: FakeWorldOptions = {}): Promise<FakeWorld> {
  const caches = new Map<string, FakeBinaryCache>();
  const dev = createFakeNix({ caches });
  const publicKey = await dev.generateKey('test-1', '/keys/sk', '/keys/pk');
  const secretKey = dev.files.get('/keys/sk') as string;
  const settings: TickSettings = {
    ...DEFAULT_SETTINGS,
    host: options.host ?? 'biz',
    trustedPublicKeys: [publicKey],
    ...options.settings,
  };
  const server = settings.caddyServer;
  const crashing = new Set<string>();
  const systemd = createFakeSystemd({
    // argv[0] is /nix/store/<hash>-<name>/bin/<program>: the store path's base name decides.
    behaviour: (start: FakeStart) =>
      crashing.has(start.argv[0]?.split('/')[3] ?? '') ? { exits: 1 } : 'runs',
  });
  const caddy = createFakeCaddyAdmin({
    config: options.caddyConfig ?? {
      apps: { http: { servers: { [server]: { listen: [':80'], routes: [] } } } },
    },
  });
  const manifests = options.manifests ?? createMemoryManifestStore();
  const events: DeployerEvent[] = [];
  const adapters = {
    manifests,
    nix: createFakeNix({ caches }),
    systemd,
    caddy,
    state: createMemoryStateStore(),
    lock: createFakeLock(),
    probe: createFakeHealthProbe(),
    clock: options.clock ?? createFakeClock(),
    checks: createFakeHostChecks({ users: options.users ?? [], groups: options.groups ?? [] }),
    connections: createFakeConnections(),
    shell: createFakeShell(),
  };
  const ctx: DeployerContext = {
    settings,
    adapters,
    onEvent: (e) => events.push(e),
    version: '0.0.0-test',
  };
  let etag: string | undefined;
  let generations = 0;
  // 2025-01-15T12:00:00Z, then a second later at each call.
  const nextGeneration = () =>
    new Date(Date.parse('2025-01-15T12:00:00Z') + 1000 * generations++).toISOString().replace('.000Z', 'Z');

  const world: FakeWorld = {
    ctx,
    ...adapters,
    dev,
    publicKey,
    secretKey,
    events,
    tick: () => runTick(ctx),
    async build(name, buildOptions = {}) {
      const path = makeStorePath(name);
      if (!dev.store.has(path)) dev.addPath(path);
      if (buildOptions.signed !== false) await dev.sign([path], '/keys/sk');
      await dev.exportToCache([path], '/cache');
      return path;
    },
    crash(storePath) {
      crashing.add(storePath.split('/')[3] as string);
    },
    async publish(manifest, publishOptions = {}) {
      const plain = typeof manifest === 'string' ? manifest : `${JSON.stringify(manifest, null, 2)}\n`;
      const key = publishOptions.signWith ?? secretKey;
      const text = key === false ? plain : signManifest(plain, key);
      etag = (await manifests.write(text, etag ? { ifMatch: etag } : { ifNoneMatch: '*' })).etag;
      return etag;
    },
    async manifestOf(specs, generation = nextGeneration()) {
      const services = [];
      for (const spec of specs) {
        const path = await world.build(`${spec.name}-${spec.version}`);
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
    systemdChanges: () => systemd.calls.filter((c) => !/^(list|read|status)\b/.test(c)),
    routes() {
      const config = caddy.currentConfig() as {
        apps?: { http?: { servers?: Record<string, { routes?: Record<string, unknown>[] }> } };
      };
      const routes = config.apps?.http?.servers?.[server]?.routes ?? [];
      return Object.fromEntries(
        routes.map((r) => {
          const handle = r.handle as { upstreams?: { dial?: string }[] }[] | undefined;
          return [String(r['@id']), handle?.[0]?.upstreams?.[0]?.dial ?? 'foreign'];
        }),
      );
    },
  };
  return world;
}
