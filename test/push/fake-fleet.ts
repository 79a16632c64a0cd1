import type { Manifest } from '../../src/manifest/index.js';
import { parseManifest } from '../../src/manifest/index.js';
import type { PushContext } from '../../src/push/context.js';
/**
 * A fleet in memory for the rollout driver: one fake world per host (the package's own fake deployer, Nix,
 * systemd and Caddy), all sharing one bucket and one clock. The push side's clock is the same time, and every
 * time push sleeps, each host's deployer ticks once (as `deployer watch` would meanwhile): a rollout runs start
 * to end in a test without real time.
 */
import type { ServiceSpec } from '../../src/push/index.js';
import type { RolloutContext } from '../../src/push/rollout.js';
import type { ManifestSigning } from '../../src/push/signing.js';
import { openPushedManifest } from '../../src/push/signing.js';
import type { DeployerEvent } from '../../src/runtime/events.js';
import {
  createFakeClock,
  createFakeNix,
  createFakeShell,
  createFakeWorld,
  createMemoryManifestStore,
  type FakeWorld,
  type MemoryManifestStore,
} from '../../src/testing/index.js';

export interface FakeFleet {
  hosts: string[];
  worlds: Map<string, FakeWorld>;
  /** The bucket every host and push share. */
  manifests: MemoryManifestStore;
  ctx: RolloutContext;
  signing: ManifestSigning;
  /** Push's events. */
  events: DeployerEvent[];
  /** Builds the closure `<name>` into every host's binary cache; returns its path. */
  build(name: string): Promise<string>;
  /** Makes `storePath` exit at once on these hosts (default: all), as a broken build would. */
  crash(storePath: string, hosts?: string[]): void;
  /** Hosts whose deployer does not tick (down, or cut off). */
  down: Set<string>;
  /** Runs before each round of ticks (after push slept): a test's chance to interfere. */
  beforeTicks?: (round: number) => Promise<void> | void;
  /** One tick on every host that is up. */
  tick(): Promise<void>;
  /** The store path each host's deployer runs `service` at (undefined: none). */
  running(service: string): Record<string, string | undefined>;
  /** The hosts whose Nix store holds `storePath`: those that fetched it to try it. */
  fetched(storePath: string): string[];
}

/** The spec of `web` on the fleet's hosts (no route: the fake probe has nothing to ask). */
export const webSpec = (hosts: string[]): ServiceSpec => ({ name: 'web', hosts, exec: { command: 'web' } });

export async function createFakeFleet(hosts = ['a', 'b', 'c']): Promise<FakeFleet> {
  const manifests = createMemoryManifestStore();
  const clock = createFakeClock();
  const worlds = new Map<string, FakeWorld>();
  for (const host of hosts)
    worlds.set(
      host,
      await createFakeWorld({
        host,
        manifests,
        clock,
        settings: { healthSettleMs: 1000, deployTimeoutMs: 5000 },
      }),
    );
  const first = worlds.get(hosts[0] as string) as FakeWorld;
  const events: DeployerEvent[] = [];
  let round = 0;
  const fleet: FakeFleet = {
    hosts,
    worlds,
    manifests,
    events,
    down: new Set(),
    // Every world's developer key is the same deterministic key: the hosts trust what push signs with it.
    signing: { secretKey: first.secretKey, trustedPublicKeys: [], allowUnsigned: false },
    ctx: {
      manifests,
      clock: {
        now: () => clock.now(),
        async sleep(ms) {
          await clock.sleep(ms);
          await fleet.beforeTicks?.(round++);
          await fleet.tick();
        },
      },
      onEvent: (e) => events.push(e),
      secretsDir: '/var/lib/biz-secrets',
    },
    async build(name) {
      let path = '';
      for (const world of worlds.values()) path = await world.build(name);
      return path;
    },
    crash(storePath, on = hosts) {
      for (const host of on) worlds.get(host)?.crash(storePath);
    },
    async tick() {
      for (const [host, world] of worlds) if (!fleet.down.has(host)) await world.tick();
    },
    running(service) {
      return Object.fromEntries(
        [...worlds].map(([host, w]) => [host, w.state.current?.services[service]?.storePath]),
      );
    },
    fetched(storePath) {
      return hosts.filter((host) => worlds.get(host)?.nix.store.has(storePath));
    },
  };
  return fleet;
}

/** A push context over the fleet's bucket and clock (for the plain writes: deploy, rollback). */
export const pushCtx = (fleet: FakeFleet): PushContext => ({
  ...fleet.ctx,
  cache: undefined,
  nix: createFakeNix(),
  shell: createFakeShell(),
});

/** The manifest now in the bucket (signature checked by push's own rules). */
export async function current(fleet: FakeFleet): Promise<Manifest> {
  const read = await fleet.ctx.manifests.read();
  if (read.status !== 'found') throw new Error('no manifest');
  const parsed = parseManifest(openPushedManifest(read.text, 'manifest', fleet.signing).payload);
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.issues));
  return parsed.manifest;
}
