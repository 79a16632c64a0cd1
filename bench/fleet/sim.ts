/**
 * The fleet simulation: N simulated hosts in this process, each running the real deployer loop (`watch` around
 * `runTick`) on the shipped fakes for systemd, Nix, Caddy, the health probe, state and lock, but with its own
 * real S3 client and manifest store against one real S3 endpoint, and the real clock: polls, health gates and
 * status writes happen at the times a real host would make them. A developer machine (`push`) writes the
 * manifest with the push library. Closures come from one in-memory binary cache shared by every fake Nix, so
 * cache traffic is not part of what the S3 server sees.
 */
import { setMaxListeners } from 'node:events';
import { type DeployerContext, runTick, SETTINGS, type TickReport, watch } from '../../src/deployer/index.js';
import {
  type ManifestSigning,
  type PushContext,
  type ServiceChange,
  type ServiceSpec,
  writeServiceChange,
} from '../../src/push/index.js';
import { createClock } from '../../src/runtime/clock.js';
import type { DeployerEvent } from '../../src/runtime/events.js';
import { createManifestStore, createS3ObjectStore, type StoreRequest } from '../../src/s3/index.js';
import {
  createFakeCaddyAdmin,
  createFakeConnections,
  createFakeHealthProbe,
  createFakeHostChecks,
  createFakeLock,
  createFakeNix,
  createFakeShell,
  createFakeSystemd,
  createMemoryStateStore,
  type FakeBinaryCache,
  type FakeSystemd,
  makeStorePath,
} from '../../src/testing/index.js';

const CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };
const defaultOf = (key: string) => SETTINGS.find((s) => s.key === key)?.default as number;

/** Options of {@link createFleet}. */
export interface FleetOptions {
  endpoint: string;
  bucket: string;
  /** Key prefix of this fleet's manifest, archives and status (`<run>/`), so runs in one bucket stay apart. */
  prefix: string;
  hosts: number;
  /** Poll interval of every host (`deployer watch --interval`). */
  intervalMs: number;
  /** Health gate settle time (default: the deployer's default). */
  settleMs?: number;
}

/** What one host's tick did, as the simulation keeps it. */
export interface TickRecord {
  start: number;
  end: number;
  outcome: TickReport['outcome'];
  /** The manifest ETag the host has applied after this tick. */
  etag: string | undefined;
}

/** One simulated host. */
export interface SimHost {
  name: string;
  ctx: DeployerContext;
  /** Its systemd (a fake: `calls` lists what the tick did). */
  systemd: FakeSystemd;
  ticks: TickRecord[];
  /** When this host first reported `etag` applied (end of that tick, after its status write), if it has. */
  liveAt(etag: string): number | undefined;
  /** The tick that did it: from its poll of the manifest to its status written. */
  liveTick(etag: string): TickRecord | undefined;
}

/** A running fleet plus the developer machine that pushes to it. */
export interface Fleet {
  hosts: SimHost[];
  /** Host names, in order. */
  names: string[];
  /** The developer's push context (its own S3 client; `requests` counts what it sends). */
  push: PushContext;
  /** Every request the push context's client made, in order. */
  pushRequests: StoreRequest[];
  /** Every event the push context reported (`push.waiting` once per round of `push --wait` but the last). */
  pushEvents: DeployerEvent[];
  /**
   * Starts every host's `watch` loop: `spread` starts each at a random point of one interval (hosts booted at
   * different times), `together` all at once (a fleet restarted at the same moment). `legacy` runs the loop as
   * `watch` did before its first pause was spread over the interval (every pause drawn from the jitter alone):
   * the baseline of the restart figure.
   */
  start(mode: 'spread' | 'together', options?: { legacy?: boolean }): void;
  /** Stops every loop after its tick in progress. */
  stop(): Promise<void>;
  /**
   * Builds, signs and uploads `name` at `version` to the shared cache, as `push deploy` does before it writes:
   * the change for every host and what the manifest is signed with. Nothing is written to the manifest.
   */
  prepare(name: string, version: string): Promise<{ change: ServiceChange; signing: ManifestSigning }>;
  /** Deploys `name` at `version` to every host with the push library; returns the new manifest's ETag. */
  deploy(name: string, version: string): Promise<{ etag: string; storePath: string; returnedAt: number }>;
  /** Resolves when every host reported `etag` applied, with each host's time; rejects after `timeoutMs`. */
  allLive(etag: string, timeoutMs: number): Promise<number[]>;
}

/** The host names of a fleet of `n`: `h00001` ... */
export const hostNames = (n: number) =>
  Array.from({ length: n }, (_, i) => `h${String(i + 1).padStart(String(n).length, '0')}`);

/** The three services every host runs: two behind Caddy, one worker. */
function specs(hosts: string[]): ServiceSpec[] {
  return [
    {
      name: 'web',
      hosts,
      exec: { command: 'web' },
      http: { domain: 'web.example.com', path: '/', internalPort: 8000 },
    },
    {
      name: 'api',
      hosts,
      exec: { command: 'api' },
      http: { domain: 'web.example.com', path: '/api', internalPort: 8001 },
    },
    { name: 'worker', hosts, exec: { command: 'worker' } },
  ] as ServiceSpec[];
}

/** Creates the fleet (nothing runs until `start`). */
export async function createFleet(options: FleetOptions): Promise<Fleet> {
  const clock = createClock();
  const caches = new Map<string, FakeBinaryCache>();
  const dev = createFakeNix({ caches });
  const publicKey = await dev.generateKey('fleet-1', '/keys/sk', '/keys/pk');
  const signing = {
    secretKey: dev.files.get('/keys/sk') as string,
    trustedPublicKeys: [],
    allowUnsigned: false,
  };
  const names = hostNames(options.hosts);
  const store = (onRequest?: (r: StoreRequest) => void) =>
    createManifestStore(
      createS3ObjectStore({
        bucket: options.bucket,
        endpoint: options.endpoint,
        credentials: CREDENTIALS,
        prefix: options.prefix,
        ...(onRequest ? { onRequest } : {}),
      }),
    );
  const settings = {
    substituter: 'file:///cache',
    trustedPublicKeys: [publicKey],
    insecureAllowUnsigned: false,
    insecureAllowUnsignedManifest: false,
    secretsDir: '/var/lib/biz-secrets',
    profilesDir: '/nix/var/nix/profiles/biz',
    gcrootsDir: '/nix/var/nix/gcroots/biz',
    keep: defaultOf('keep'),
    healthSettleMs: options.settleMs ?? defaultOf('healthSettleMs'),
    healthTimeoutMs: defaultOf('healthTimeoutMs'),
    healthIntervalMs: defaultOf('healthIntervalMs'),
    deployTimeoutMs: defaultOf('deployTimeoutMs'),
    switchSettleMs: defaultOf('switchSettleMs'),
    drainTimeoutMs: defaultOf('drainTimeoutMs'),
    caddyServer: 'omni',
    onSuccess: undefined,
    onFailure: undefined,
  };

  const hosts: SimHost[] = names.map((name) => {
    const state = createMemoryStateStore();
    const systemd = createFakeSystemd();
    const ctx: DeployerContext = {
      settings: { ...settings, host: name },
      adapters: {
        // Each host its own client, as on a real host: its own connections, signing and retries.
        manifests: store(),
        nix: createFakeNix({ caches }),
        systemd,
        caddy: createFakeCaddyAdmin({
          config: { apps: { http: { servers: { omni: { listen: [':80'], routes: [] } } } } },
        }),
        state,
        lock: createFakeLock(),
        probe: createFakeHealthProbe(),
        clock,
        checks: createFakeHostChecks({}),
        shell: createFakeShell(),
        connections: createFakeConnections(),
      },
      onEvent: () => {},
      version: '0.0.0-fleet',
    };
    const ticks: TickRecord[] = [];
    return {
      name,
      ctx,
      systemd,
      ticks,
      liveTick: (etag) =>
        ticks.find((t) => t.etag === etag && (t.outcome === 'applied' || t.outcome === 'unchanged')),
      liveAt(etag) {
        return this.liveTick(etag)?.end;
      },
    };
  });

  const pushRequests: StoreRequest[] = [];
  const pushEvents: DeployerEvent[] = [];
  const push: PushContext = {
    manifests: store((r) => pushRequests.push(r)),
    cache: undefined,
    nix: dev,
    shell: createFakeShell(),
    clock,
    onEvent: (event) => pushEvents.push(event),
    secretsDir: settings.secretsDir,
  };

  let controller = new AbortController();
  let loops: Promise<void>[] = [];
  const waiters = new Set<() => void>();
  const tick = async (host: SimHost) => {
    const start = Date.now();
    const report = await runTick(host.ctx);
    const state = await host.ctx.adapters.state.load();
    host.ticks.push({ start, end: Date.now(), outcome: report.outcome, etag: state?.manifest?.etag });
    for (const wake of waiters) wake();
  };
  const every = specs(names);
  async function prepare(name: string, version: string) {
    const storePath = makeStorePath(`${name}-${version}`);
    if (!dev.store.has(storePath)) dev.addPath(storePath);
    await dev.sign([storePath], '/keys/sk');
    await dev.exportToCache([storePath], '/cache');
    const spec = every.find((s) => s.name === name) as ServiceSpec;
    return { change: { spec, storePath }, signing };
  }

  return {
    hosts,
    names,
    push,
    pushRequests,
    pushEvents,
    start(mode, startOptions = {}) {
      controller = new AbortController();
      const signal = controller.signal;
      setMaxListeners(0, signal); // every host's sleep listens to it
      const { intervalMs } = options;
      loops = hosts.map(async (host) => {
        if (mode === 'spread') await clock.sleep(Math.random() * intervalMs, signal);
        if (signal.aborted) return;
        if (!startOptions.legacy) {
          await watch({ tick: () => tick(host), clock, intervalMs, signal, onEvent: () => {} });
          return;
        }
        while (!signal.aborted) {
          await tick(host);
          await clock.sleep(Math.round(intervalMs * (1 + 0.1 * Math.random())), signal);
        }
      });
    },
    async stop() {
      controller.abort();
      await Promise.all(loops);
    },
    prepare,
    async deploy(name, version) {
      const { change } = await prepare(name, version);
      const written = await writeServiceChange(push, change, { signing });
      return { etag: written.etag, storePath: change.storePath, returnedAt: Date.now() };
    },
    allLive(etag, timeoutMs) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const times = hosts.map((h) => h.liveAt(etag));
          if (times.every((t) => t !== undefined)) {
            waiters.delete(check);
            clearTimeout(timer);
            resolve(times as number[]);
          }
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          const missing = hosts.filter((h) => h.liveAt(etag) === undefined).length;
          reject(new Error(`${missing} of ${hosts.length} hosts not live after ${timeoutMs} ms`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
  };
}
