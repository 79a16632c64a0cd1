import * as v from 'valibot';
import { DeployError } from '../errors.js';
import { describeValue, formatPath } from '../manifest/describe.js';
import { parseStorePath } from '../manifest/store-path.js';
import { renderTable } from '../render-table.js';
import { formatDuration } from '../runtime/duration.js';
import { isObject } from '../runtime/json.js';
import { liveInstance } from './live.js';
import {
  type DeployerState,
  FailureRecordSchema,
  LastTickSchema,
  MANIFEST_REFUSAL_REASONS,
  RefusalRecordSchema,
} from './state.js';

const text = v.string();

/** One service of a host status. */
const ServiceStatusSchema = v.object({
  name: text,
  storePath: text,
  revision: v.optional(text),
  health: v.picklist(['healthy', 'unhealthy', 'unknown']),
  /** When this version was activated (ISO). */
  since: text,
  /** The instance that serves: the service's own unit at rest, its candidate during a blue/green switch. */
  live: v.optional(v.object({ unit: text, port: v.optional(v.number()) })),
  /** A blue/green or overlap update that a killed deployer left under way (the next tick settles it). */
  switching: v.optional(
    v.object({
      step: v.picklist(['candidate', 'switched', 'main', 'returning']),
      storePath: text,
      undo: v.optional(v.boolean()),
    }),
  ),
});

/**
 * The per-host report the deployer publishes (`status/<host>.json`) and `deployer status --json` prints: the
 * one declaration of its shape. The deployer checks what it writes against it; readers use
 * {@link parseHostStatus}.
 */
export const HostStatusSchema = v.object({
  host: text,
  deployerVersion: text,
  /** When this report was written. */
  updatedAt: text,
  /** The manifest generation and ETag last applied. */
  generation: v.optional(text),
  etag: v.optional(text),
  lastTick: v.optional(LastTickSchema),
  /**
   * The newest manifest this host refused (its signature, its age or its content), while it stands: nothing of
   * it was applied.
   */
  rejected: v.optional(
    v.object({ etag: text, at: text, reason: v.picklist(MANIFEST_REFUSAL_REASONS), message: text }),
  ),
  services: v.array(ServiceStatusSchema),
  failures: v.array(FailureRecordSchema),
  /** Services and routes the host refused (host policy, pre-flight): not touched, retried every tick. */
  refused: v.array(RefusalRecordSchema),
  rollbacks: v.number(),
});

/** The per-host report the deployer publishes (`status/<host>.json`); see {@link HostStatusSchema}. */
export type HostStatus = v.InferOutput<typeof HostStatusSchema>;

/**
 * What a reader of `status/<host>.json` accepts: {@link HostStatusSchema} with every top-level field (and a
 * service's `since`) optional, since another deployer version may write fewer fields, but each field that is
 * there must have the type the deployer gives it. Unknown fields are dropped.
 */
export const HostReportSchema = v.partial(
  v.object({
    ...HostStatusSchema.entries,
    services: v.array(v.partial(ServiceStatusSchema, ['since'])),
  }),
);

/** A host status as a reader sees it: see {@link HostReportSchema}. */
export type HostReport = v.InferOutput<typeof HostReportSchema>;

/**
 * Checks a host status read from the bucket (untrusted: anyone with write access there can put anything). Returns
 * the typed report, or why it is not one (the first issues, each with its field path), for the reader to show
 * the host as invalid rather than count it.
 */
export function parseHostStatus(
  value: unknown,
): { ok: true; status: HostReport } | { ok: false; message: string } {
  // valibot's object schemas take arrays too.
  if (!isObject(value))
    return { ok: false, message: `status: expected a JSON object, found ${describeValue(value)}` };
  const parsed = v.safeParse(HostReportSchema, value);
  if (parsed.success) return { ok: true, status: parsed.output };
  return { ok: false, message: formatIssues(parsed.issues) };
}

/**
 * Returns `status` when it matches {@link HostStatusSchema}, else throws `STATUS_INVALID`: the deployer never
 * publishes a report its readers would refuse.
 */
export function assertHostStatus(status: HostStatus): HostStatus {
  const parsed = v.safeParse(HostStatusSchema, status);
  if (!parsed.success)
    throw new DeployError('STATUS_INVALID', `host status of ${status.host}: ${formatIssues(parsed.issues)}`, {
      details: parsed.issues.map((i) => i.message),
    });
  return status;
}

/** The first issues, each as `path: expected X, found Y` (the found value quoted: it is untrusted text). */
function formatIssues(issues: readonly v.BaseIssue<unknown>[]): string {
  const described = issues.map((i) => {
    const keys = (i.path ?? []).map((p) => p.key as string | number);
    const where = keys.length ? formatPath(keys) : 'status';
    return i.input === undefined
      ? `${where}: missing`
      : `${where}: expected ${i.expected ?? 'something else'}, found ${describeValue(i.input)}`;
  });
  return (
    described.slice(0, 3).join('; ') + (described.length > 3 ? ` (and ${described.length - 3} more)` : '')
  );
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
    ...(state.rejected
      ? {
          rejected: {
            etag: state.rejected.etag,
            at: state.rejected.at,
            // Refusals recorded before reasons were: only invalid manifests were refused then.
            reason: state.rejected.reason ?? 'invalid',
            message: state.rejected.message,
          },
        }
      : {}),
    services: Object.entries(state.services)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([name, s]) => {
        const live = liveInstance(s);
        return {
          name,
          storePath: s.storePath,
          revision: s.revision,
          health: s.health,
          since: s.since,
          live: { unit: live.unit, ...(live.port === undefined ? {} : { port: live.port }) },
          ...(s.switch
            ? {
                switching: {
                  step: s.switch.phase,
                  storePath: s.switch.target.storePath,
                  ...(s.switch.undo ? { undo: true } : {}),
                },
              }
            : {}),
        };
      }),
    failures: state.failures,
    refused: state.refused ?? [],
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
  if (status.rejected) {
    const r = status.rejected;
    lines.push(
      `manifest ${r.etag} refused ${ago(r.at)} (${r.reason.replace('_', ' ')}): nothing of it applied`,
    );
  }
  if (rows.length) lines.push('', renderTable(['SERVICE', 'VERSION', 'REVISION', 'HEALTH', 'SINCE'], rows));
  else lines.push('no services deployed');
  const switching = status.services.filter((s) => s.switching);
  if (switching.length) {
    lines.push('', 'switches under way (settled by the next tick):');
    for (const s of switching) {
      const to = s.switching?.undo ? 'back to the version above' : `to ${s.switching?.storePath}`;
      const port = s.live?.port === undefined ? '' : ` on port ${s.live.port}`;
      lines.push(`  ${s.name}: ${to}, step ${s.switching?.step}; serving: ${s.live?.unit}${port}`);
    }
  }
  if (status.failures.length) {
    lines.push('', 'held back (failed their health gate; not retried until the manifest changes them):');
    for (const f of status.failures) lines.push(`  ${f.service}: ${f.storePath} at ${f.at}: ${f.reason}`);
  }
  const refused = status.refused;
  if (refused.length) {
    lines.push(
      '',
      'refused (nothing of a refused service is touched; a refused route is not given to Caddy):',
    );
    for (const r of refused)
      lines.push(
        `  ${r.service}${r.scope === 'route' ? ' (route)' : ''}: ${r.rule}${r.path ? ` at ${r.path}` : ''}: ${r.message} (since ${r.since})`,
      );
  }
  return lines.join('\n');
}
