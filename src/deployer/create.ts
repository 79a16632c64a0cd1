import { join } from 'node:path';
import { createCaddyAdmin } from '../caddy/http-admin.js';
import { createNix } from '../nix/nix.js';
import { writeFileAtomic } from '../runtime/atomic-write.js';
import { createClock } from '../runtime/clock.js';
import type { EventSink } from '../runtime/events.js';
import { openManifestStore } from '../s3/open.js';
import { createShell } from '../shell/shell.js';
import { createSystemd } from '../systemd/systemd.js';
import { createConnections } from './connections.js';
import type { DeployerAdapters, DeployerContext } from './context.js';
import { createFileStateStore } from './file-state-store.js';
import { createHostChecks } from './host-checks.js';
import { createFileLock } from './lock.js';
import { createHealthProbe } from './probe.js';
import type { DeployerSettings } from './settings.js';

/**
 * The real adapters for a host, from resolved settings: the manifest store at `settings.manifest`, Nix,
 * systemctl, Caddy's admin API (none when `caddyAdmin` is `off`), state and lock files in `stateDir`.
 */
export function createDeployerAdapters(settings: DeployerSettings): DeployerAdapters {
  const shell = createShell();
  const metricsFile = settings.metricsFile;
  return {
    manifests: openManifestStore(settings.manifest, { status: settings.status }),
    nix: createNix({ shell }),
    systemd: createSystemd({ shell, unitsDir: settings.unitsDir }),
    caddy: settings.caddyAdmin === 'off' ? undefined : createCaddyAdmin({ address: settings.caddyAdmin }),
    state: createFileStateStore(join(settings.stateDir, 'state.json')),
    lock: createFileLock(join(settings.stateDir, 'deployer.lock')),
    probe: createHealthProbe(),
    clock: createClock(),
    checks: createHostChecks(shell),
    connections: createConnections(shell),
    shell,
    ...(metricsFile
      ? {
          // node_exporter's textfile collector must never read a half-written file.
          writeMetrics: (text: string) => writeFileAtomic(metricsFile, text, { mode: 0o644 }),
        }
      : {}),
  };
}

/** A {@link DeployerContext} with the real adapters (see {@link createDeployerAdapters}). */
export function createDeployerContext(
  settings: DeployerSettings,
  options: { onEvent: EventSink; version: string },
): DeployerContext {
  return {
    settings,
    adapters: createDeployerAdapters(settings),
    onEvent: options.onEvent,
    version: options.version,
  };
}
