import * as v from 'valibot';
import { DeployError } from '../errors.js';
import { formatPath } from '../manifest/describe.js';

/** What the deployer last activated for one service: enough to detect drift, restore at boot and roll back. */
export interface ServiceRecord {
  storePath: string;
  unitName: string;
  /** The unit file exactly as installed (boot restore rewrites it from here). */
  unitText: string;
  /** Hash of everything that makes a change: unit text and route. Equal hash = nothing to do. */
  specHash: string;
  /** The Caddy route for this service, as planned (opaque to the state module). */
  route?: unknown;
  revision?: string;
  /** Profile generation the store path was set as. */
  profileGeneration?: number;
  /** The version active before this one, to switch back to exactly it. */
  previous?: { storePath: string; unitText: string; specHash: string; route?: unknown; revision?: string };
  health: 'healthy' | 'unhealthy' | 'unknown';
  /** When this version was activated (ISO). */
  since: string;
  /**
   * A blue/green or overlap update under way (saved before each of its steps, so a deployer killed in the middle
   * leaves the next tick enough to finish or undo it). Absent at rest: then the service's own unit runs this
   * record's version and is the live instance.
   */
  switch?: SwitchRecord;
}

/** A version of a service as the state keeps it: what a switch installs. */
export interface VersionRecord {
  storePath: string;
  unitText: string;
  specHash: string;
  route?: unknown;
  revision?: string;
  profileGeneration?: number;
}

/**
 * The steps of a switch, in order (docs/design.md#zero-downtime-updates): `candidate` (the new version starts in
 * the candidate unit; the service's own unit still serves), `switched` (Caddy is being or has been pointed at
 * the candidate, the old instance drains), `main` (the service's own unit is being restarted with the version
 * it must end with), `returning` (Caddy is being pointed back at the service's own unit, the candidate drains
 * and stops).
 */
export type SwitchPhase = 'candidate' | 'switched' | 'main' | 'returning';

/** A switch under way (see {@link ServiceRecord.switch}). */
export interface SwitchRecord {
  phase: SwitchPhase;
  strategy: 'blue-green' | 'overlap';
  /** The unit the new version runs in beside the service's own, and (blue/green) the port it listens on. */
  candidate: { unitName: string; port?: number };
  /** The version the switch installs; it becomes the service's record when the switch completes. */
  target: VersionRecord;
  /**
   * Set once the switch is being undone (the new version failed, or a deployer was killed in the middle): the
   * service's own unit goes back to the record's version, then Caddy to it.
   */
  undo?: boolean;
  /** When the switch began (ISO). */
  startedAt: string;
}

/** A version that failed its health gate: not retried until the manifest changes the service. */
export interface FailureRecord {
  service: string;
  storePath: string;
  specHash: string;
  at: string;
  reason: string;
}

/** How a tick ended. */
export type TickOutcome = 'applied' | 'unchanged' | 'partial' | 'invalid-manifest' | 'failed' | 'busy';

/** The deployer's local state (`<stateDir>/state.json`). */
export interface DeployerState {
  version: 1;
  host: string;
  /** The manifest last applied (or attempted): its ETag and generation. */
  manifest?: { etag?: string; generation: string; appliedAt: string };
  services: Record<string, ServiceRecord>;
  failures: FailureRecord[];
  /** The newest manifest seen that failed validation: not applied, not parsed again until it changes. */
  rejected?: { etag: string; at: string; message: string };
  lastTick?: { at: string; outcome: TickOutcome; message?: string };
  /** Count of automatic rollbacks since the state was created (for metrics). */
  rollbacks: number;
  /** Fingerprint of the host status last published, so an idle tick writes nothing. */
  published?: string;
}

/**
 * The record of `version` once it passed its health gate as the service's own unit `unitName`, keeping the
 * version it replaces (`current`) as `previous`. Pure.
 */
export function activeRecord(
  version: VersionRecord,
  unitName: string,
  current: ServiceRecord | undefined,
  since: string,
): ServiceRecord {
  return {
    storePath: version.storePath,
    unitName,
    unitText: version.unitText,
    specHash: version.specHash,
    ...(version.route === undefined ? {} : { route: version.route }),
    ...(version.revision === undefined ? {} : { revision: version.revision }),
    ...(version.profileGeneration === undefined ? {} : { profileGeneration: version.profileGeneration }),
    ...(current
      ? {
          previous: {
            storePath: current.storePath,
            unitText: current.unitText,
            specHash: current.specHash,
            ...(current.route === undefined ? {} : { route: current.route }),
            ...(current.revision === undefined ? {} : { revision: current.revision }),
          },
        }
      : {}),
    health: 'healthy',
    since,
  };
}

/** A state for a host that has never deployed. */
export function emptyState(host: string): DeployerState {
  return { version: 1, host, services: {}, failures: [], rollbacks: 0 };
}

const text = v.string();
const routeSchema = v.optional(v.unknown());
const ServiceRecordSchema = v.object({
  storePath: text,
  unitName: text,
  unitText: text,
  specHash: text,
  route: routeSchema,
  revision: v.optional(text),
  profileGeneration: v.optional(v.number()),
  previous: v.optional(
    v.object({
      storePath: text,
      unitText: text,
      specHash: text,
      route: routeSchema,
      revision: v.optional(text),
    }),
  ),
  health: v.picklist(['healthy', 'unhealthy', 'unknown']),
  since: text,
  switch: v.optional(
    v.object({
      phase: v.picklist(['candidate', 'switched', 'main', 'returning']),
      strategy: v.picklist(['blue-green', 'overlap']),
      candidate: v.object({ unitName: text, port: v.optional(v.number()) }),
      target: v.object({
        storePath: text,
        unitText: text,
        specHash: text,
        route: routeSchema,
        revision: v.optional(text),
        profileGeneration: v.optional(v.number()),
      }),
      undo: v.optional(v.boolean()),
      startedAt: text,
    }),
  ),
});
/** A {@link FailureRecord}, as saved in the state and published in the host status. */
export const FailureRecordSchema = v.object({
  service: text,
  storePath: text,
  specHash: text,
  at: text,
  reason: text,
});

/** How the last tick ended (`DeployerState['lastTick']`), as saved in the state and published in the status. */
export const LastTickSchema = v.object({
  at: text,
  outcome: v.picklist(['applied', 'unchanged', 'partial', 'invalid-manifest', 'failed', 'busy']),
  message: v.optional(text),
});

const StateSchema = v.object({
  version: v.literal(1),
  host: text,
  manifest: v.optional(v.object({ etag: v.optional(text), generation: text, appliedAt: text })),
  services: v.record(text, ServiceRecordSchema),
  failures: v.array(FailureRecordSchema),
  rejected: v.optional(v.object({ etag: text, at: text, message: text })),
  published: v.optional(text),
  lastTick: v.optional(LastTickSchema),
  rollbacks: v.number(),
});

/**
 * Parses `state.json`. A damaged file is an error naming the file and field, never silently replaced: the
 * deployer must not forget which versions it runs and which failed.
 */
export function parseState(body: string, where: string): DeployerState {
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch (cause) {
    throw new DeployError(
      'STATE_INVALID',
      `${where}: not valid JSON; move it aside to start from an empty state`,
      { cause },
    );
  }
  const parsed = v.safeParse(StateSchema, value);
  if (!parsed.success) {
    const issues = parsed.issues.map(
      (i) => `${formatPath((i.path ?? []).map((p) => p.key as string))}: ${i.message}`,
    );
    throw new DeployError(
      'STATE_INVALID',
      `${where}: unexpected content (${issues.slice(0, 3).join('; ')})`,
      {
        details: issues,
      },
    );
  }
  return parsed.output as DeployerState;
}

/** Where the deployer keeps its state. */
export interface StateStore {
  /** The saved state, or `undefined` when there is none yet. */
  load(): Promise<DeployerState | undefined>;
  /** Replaces the saved state atomically: after a crash, either the old or the new state is there, whole. */
  save(state: DeployerState): Promise<void>;
}
