import { mkdir, rename, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { createCaddyAdmin } from '../caddy/http-admin.js';
import { createNix } from '../nix/nix.js';
import { createClock } from '../runtime/clock.js';
import type { EventSink } from '../runtime/events.js';
import { openManifestStore } from '../s3/open.js';
import { createShell } from '../shell/shell.js';
import { createSystemd } from '../systemd/systemd.js';
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
    manifests: openManifestStore(settings.manifest),
    nix: createNix({ shell }),
    systemd: createSystemd({ shell, unitsDir: settings.unitsDir }),
    caddy: settings.caddyAdmin === 'off' ? undefined : createCaddyAdmin({ address: settings.caddyAdmin }),
    state: createFileStateStore(join(settings.stateDir, 'state.json')),
    lock: createFileLock(join(settings.stateDir, 'deployer.lock')),
    probe: createHealthProbe(),
    clock: createClock(),
    checks: createHostChecks(shell),
    shell,
    ...(metricsFile
      ? {
          // node_exporter's textfile collector must never read a half-written file.
          writeMetrics: async (text: string) => {
            await mkdir(dirname(metricsFile), { recursive: true });
            const temp = `${metricsFile}.${process.pid}.tmp`;
            await writeFile(temp, text, { mode: 0o644 });
            await rename(temp, metricsFile);
          },
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
