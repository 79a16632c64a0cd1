import { parseStorePath } from '../manifest/store-path.js';
import { renderTable } from '../render-table.js';
import { formatDuration } from '../runtime/duration.js';
import type { DeployerState } from './state.js';

/** The per-host report the deployer publishes (`status/<host>.json`) and `deployer status --json` prints. */
export interface HostStatus {
  host: string;
  deployerVersion: string;
  /** When this report was written. */
  updatedAt: string;
  /** The manifest generation and ETag last applied. */
  generation?: string;
  etag?: string;
  lastTick?: DeployerState['lastTick'];
  services: { name: string; storePath: string; revision?: string; health: string; since: string }[];
  failures: DeployerState['failures'];
  rollbacks: number;
}

/** Builds the {@link HostStatus} from the state. Pure: the time is passed in. */
export function buildHostStatus(state: DeployerState, deployerVersion: string, now: string): HostStatus {
  return {
    host: state.host,
    deployerVersion,
    updatedAt: now,
    generation: state.manifest?.generation,
    etag: state.manifest?.etag,
    lastTick: state.lastTick,
    services: Object.entries(state.services)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([name, s]) => ({
        name,
        storePath: s.storePath,
        revision: s.revision,
        health: s.health,
        since: s.since,
      })),
    failures: state.failures,
    rollbacks: state.rollbacks,
  };
}

/** A table of services, versions and health plus the last tick, for `deployer status`. */
export function renderHostStatus(status: HostStatus, now: number): string {
  const ago = (iso: string | undefined) => {
    if (!iso) return 'never';
    const seconds = Math.floor(Math.max(0, now - Date.parse(iso)) / 1000);
    return seconds === 0 ? 'just now' : `${formatDuration(seconds * 1000)} ago`;
  };
  const tick = status.lastTick;
  const lines = [
    `host ${status.host}: generation ${status.generation ?? 'none'}; last tick ${ago(tick?.at)}${tick ? ` (${tick.outcome}${tick.message ? `: ${tick.message}` : ''})` : ''}`,
  ];
  const rows = status.services.map((s) => [
    s.name,
    parseStorePath(s.storePath)?.name ?? s.storePath,
    s.revision ?? '-',
    s.health,
    ago(s.since),
  ]);
  if (rows.length) lines.push('', renderTable(['SERVICE', 'VERSION', 'REVISION', 'HEALTH', 'SINCE'], rows));
  else lines.push('no services deployed');
  if (status.failures.length) {
    lines.push('', 'held back (failed their health gate; not retried until the manifest changes them):');
    for (const f of status.failures) lines.push(`  ${f.service}: ${f.storePath} at ${f.at}: ${f.reason}`);
  }
  return lines.join('\n');
}
