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

/** Why a service (or its route) was refused: which rule, which field, what was found and expected. */
export interface Refusal {
  /**
   * The host policy's rule id (`user.root`, `route.foreign-host`, ...; see docs/security.md), or, for a refusal
   * outside the policy: `pre-flight` (a host check: a missing user, an env file that is not private, a check
   * that could not be made), `unit` (the unit cannot be rendered), `prepare` (the closure could not be pinned or
   * the unit written).
   */
  rule: string;
  /** The manifest field, e.g. `services[2].exec.user`, when the refusal has one. */
  path?: string;
  message: string;
}

/**
 * A refusal as the state keeps it: the service, and since when. `scope` says what was refused: the `service`
 * (not touched at all: nothing pulled, written, started or routed) or only its `route` (the service runs,
 * Caddy does not route to it).
 */
export interface RefusalRecord extends Refusal {
  service: string;
  scope: 'service' | 'route';
  /** The store path the manifest asks for, for a refused service. */
  storePath?: string;
  /** When it was first refused for this reason (ISO): unchanged while the same refusal repeats. */
  since: string;
}
/**
 * Why a manifest was refused: its signature (`unsigned`, `untrusted_key`, `bad_signature`, `envelope_invalid`),
 * its age (`stale`: older than the one applied; `replayed`: that generation with other content) or its content
 * (`invalid`). The label of the refusal metrics.
 */
export type ManifestRefusalReason =
  | 'invalid'
  | 'unsigned'
  | 'untrusted_key'
  | 'bad_signature'
  | 'envelope_invalid'
  | 'stale'
  | 'replayed';

/** Every {@link ManifestRefusalReason}, in a fixed order (metrics list each, at zero until it happens). */
export const MANIFEST_REFUSAL_REASONS: readonly ManifestRefusalReason[] = [
  'invalid',
  'unsigned',
  'untrusted_key',
  'bad_signature',
  'envelope_invalid',
  'stale',
  'replayed',
];

/** How a tick ended. */
export type TickOutcome = 'applied' | 'unchanged' | 'partial' | 'invalid-manifest' | 'failed' | 'busy';

/** The deployer's local state (`<stateDir>/state.json`). */
export interface DeployerState {
  version: 1;
  host: string;
  /**
   * The manifest last applied (or attempted): its ETag, generation and digest (`sha256:` of the payload; absent
   * in state written before manifests were signed).
   */
  manifest?: { etag?: string; generation: string; appliedAt: string; digest?: string };
  /**
   * The newest manifest this host accepted (signature verified, valid, not older than the last one), whether
   * or not every service settled on it: what replay protection judges each manifest against, so a partly
   * applied manifest can never be undone by putting an older one back. Absent in older state: `manifest` then.
   */
  accepted?: { generation: string; digest: string; at: string };
  services: Record<string, ServiceRecord>;
  failures: FailureRecord[];
  /**
   * Services and routes refused by the latest tick that judged them (absent: none): services each time the
   * manifest is planned, routes each time Caddy is reconciled. Retried every tick.
   */
  refused?: RefusalRecord[];
  /**
   * The newest manifest seen that was refused (signature, age or validation): not applied, not read again until
   * it changes, or until `trust` (a fingerprint of the trusted keys and the unsigned-manifest setting) differs
   * from the settings', so adding a key to the host takes effect at the next tick.
   */
  rejected?: { etag: string; at: string; message: string; reason?: ManifestRefusalReason; trust?: string };
  /** Manifests refused since the state was created, by reason (for metrics). */
  manifestRefusals?: Partial<Record<ManifestRefusalReason, number>>;
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

/** A {@link RefusalRecord}, as saved in the state and published in the host status. */
export const RefusalRecordSchema = v.object({
  service: text,
  scope: v.picklist(['service', 'route']),
  rule: text,
  path: v.optional(text),
  message: text,
  storePath: v.optional(text),
  since: text,
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
  manifest: v.optional(
    v.object({ etag: v.optional(text), generation: text, appliedAt: text, digest: v.optional(text) }),
  ),
  accepted: v.optional(v.object({ generation: text, digest: text, at: text })),
  services: v.record(text, ServiceRecordSchema),
  failures: v.array(FailureRecordSchema),
  refused: v.optional(v.array(RefusalRecordSchema)),
  rejected: v.optional(
    v.object({
      etag: text,
      at: text,
      message: text,
      reason: v.optional(v.picklist(MANIFEST_REFUSAL_REASONS)),
      trust: v.optional(text),
    }),
  ),
  manifestRefusals: v.optional(v.record(v.picklist(MANIFEST_REFUSAL_REASONS), v.number())),
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
