import type { CaddyAdmin } from '../caddy/admin.js';
import type { Nix } from '../nix/types.js';
import type { Clock } from '../runtime/clock.js';
import type { EventSink } from '../runtime/events.js';
import type { ManifestStore } from '../s3/manifest-store.js';
import type { Shell } from '../shell/types.js';
import type { Systemd } from '../systemd/types.js';
import type { Connections } from './connections.js';
import type { HostChecks } from './host-checks.js';
import type { Lock } from './lock.js';
import type { HealthProbe } from './probe.js';
import type { DeployerSettings } from './settings.js';
import type { StateStore } from './state.js';

/** Every IO concern of a deployer tick, injected: real adapters in the bin, fakes in tests. */
export interface DeployerAdapters {
  manifests: ManifestStore;
  nix: Nix;
  systemd: Systemd;
  /** Caddy's admin API; `undefined` when routes are off (`--caddy-admin off`). */
  caddy: CaddyAdmin | undefined;
  state: StateStore;
  lock: Lock;
  probe: HealthProbe;
  clock: Clock;
  checks: HostChecks;
  /** Caddy's connections to a local port: how a blue/green update sees the old instance drained. */
  connections: Connections;
  /** Runs the success/failure hooks. */
  shell: Shell;
  /** Writes the Prometheus textfile (atomically); absent when no metrics file is configured. */
  writeMetrics?: (text: string) => Promise<void>;
}

/**
 * The settings a tick reads (see {@link DeployerSettings}). The host policy and the locations it protects are
 * optional: without them a tick applies the default policy and protects the default locations; without
 * `caddyListen`, a server Caddy lacks is created on `:443`.
 */
export type TickSettings = Pick<
  DeployerSettings,
  | 'host'
  | 'substituter'
  | 'trustedPublicKeys'
  | 'insecureAllowUnsigned'
  | 'insecureAllowUnsignedManifest'
  | 'secretsDir'
  | 'profilesDir'
  | 'gcrootsDir'
  | 'keep'
  | 'healthSettleMs'
  | 'healthTimeoutMs'
  | 'healthIntervalMs'
  | 'deployTimeoutMs'
  | 'switchSettleMs'
  | 'drainTimeoutMs'
  | 'caddyServer'
  | 'onSuccess'
  | 'onFailure'
> &
  Partial<
    Pick<DeployerSettings, 'policy' | 'stateDir' | 'unitsDir' | 'caddyAdmin' | 'caddyListen' | 'metricsFile'>
  >;

/** Everything one tick needs. */
export interface DeployerContext {
  settings: TickSettings;
  adapters: DeployerAdapters;
  onEvent: EventSink;
  /** The deployer's own version, published in the host status. */
  version: string;
  /** How long a tick waits for the lock before giving up as "busy" (default 5 s). */
  lockWaitMs?: number;
}
