/**
 * The pure half of a staged rollout: which hosts switch in which wave, and the manifest each step writes. A
 * rollout's manifest holds the service twice while it runs (docs/manifest.md, "A staged rollout"): the new
 * version on the hosts switched so far, the previous one on the others, and a `rollout` record saying so.
 * Every step is a function of the current manifest, so a conflicting write (another service pushed meanwhile)
 * re-applies it on top of the other push's manifest and both land.
 */
import { isDeepStrictEqual } from 'node:util';
import { DeployError } from '../errors.js';
import { OPEN_ROLLOUT_STATES } from '../manifest/rollout.js';
import type { Manifest, Rollout, RolloutParameters, RolloutState, Service } from '../manifest/schema.js';
import { formatDuration } from '../runtime/duration.js';
import { nextGeneration } from './spec.js';

/** What `push deploy` was asked for (its rollout flags); absent fields take {@link ROLLOUT_DEFAULTS}. */
export interface RolloutRequest {
  /** How many of the service's hosts switch first (its first N hosts, in the spec's order). */
  canary?: number;
  /** The hosts that switch first, by name (instead of `canary`). */
  canaryHosts?: string[];
  /** How many hosts switch at once after the canary. Default: all the rest in one wave. */
  maxParallel?: number;
  /** How long every host of a wave must stay healthy before the next wave starts (and before it is done). */
  minHealthyTimeMs?: number;
  /** How long a switched host has to report the new version healthy before the rollout halts. */
  healthyDeadlineMs?: number;
  /** On a halt, put the switched hosts back on the previous version. */
  autoRevert?: boolean;
}

/** The defaults of a rollout: 10 s healthy per wave, 5 min to get there, revert on failure. */
export const ROLLOUT_DEFAULTS = {
  minHealthyTimeMs: 10_000,
  healthyDeadlineMs: 300_000,
  autoRevert: true,
} as const;

/** True when any rollout flag was given: `push deploy` then rolls out in waves instead of everywhere at once. */
export function isRolloutRequest(request: RolloutRequest): boolean {
  return Object.values(request).some((v) => v !== undefined);
}

/** True while a rollout is not over: the service may be on two versions, and push resumes it. */
export function isOpenRollout(rollout: Rollout | undefined): boolean {
  return rollout !== undefined && OPEN_ROLLOUT_STATES.includes(rollout.state);
}

/** The recorded parameters of a request: defaults filled in, absent wave flags left out. */
export function rolloutParameters(request: RolloutRequest): RolloutParameters {
  return {
    ...(request.canary === undefined ? {} : { canary: request.canary }),
    ...(request.canaryHosts === undefined ? {} : { canaryHosts: request.canaryHosts }),
    ...(request.maxParallel === undefined ? {} : { maxParallel: request.maxParallel }),
    minHealthyTimeMs: request.minHealthyTimeMs ?? ROLLOUT_DEFAULTS.minHealthyTimeMs,
    healthyDeadlineMs: request.healthyDeadlineMs ?? ROLLOUT_DEFAULTS.healthyDeadlineMs,
    autoRevert: request.autoRevert ?? ROLLOUT_DEFAULTS.autoRevert,
  };
}

/**
 * The waves of a rollout over `hosts` (the service's hosts, in the spec's order): the canary first (the named
 * hosts, or the first `canary`), then the rest in waves of `maxParallel` (default: all at once). Without a
 * canary the first wave is the first `maxParallel` hosts. Throws `USAGE` for both `canary` and `canaryHosts`,
 * and for a canary host that is not one of `hosts`.
 */
export function planWaves(hosts: readonly string[], parameters: RolloutParameters): string[][] {
  const { canary, canaryHosts, maxParallel } = parameters;
  if (canary !== undefined && canaryHosts !== undefined)
    throw new DeployError('USAGE', 'give --canary or --canary-hosts, not both');
  const lower = (h: string) => h.toLowerCase();
  let first: string[] = [];
  if (canaryHosts !== undefined) {
    const unknown = canaryHosts.filter((h) => !hosts.some((x) => lower(x) === lower(h)));
    if (unknown.length)
      throw new DeployError(
        'USAGE',
        `--canary-hosts: ${unknown.join(', ')} ${unknown.length === 1 ? 'is' : 'are'} not among the service's hosts (${hosts.join(', ')})`,
      );
    first = hosts.filter((h) => canaryHosts.some((c) => lower(c) === lower(h)));
  } else if (canary !== undefined) first = hosts.slice(0, canary);
  const rest = hosts.filter((h) => !first.includes(h));
  const size = maxParallel ?? Math.max(1, rest.length);
  const waves = first.length ? [first] : [];
  for (let i = 0; i < rest.length; i += size) waves.push(rest.slice(i, i + size));
  return waves;
}

/** The two versions of a rolled-out service: as it is to run, and as it ran before the rollout (if it did). */
export interface RolloutTarget {
  to: Service;
  from: Service | undefined;
}

/**
 * The manifest with `target`'s service set as `record` says, everything else as in `current`: while the rollout
 * is open, `to` on the switched hosts and `from` on the others (entries without hosts are left out); `to` alone
 * once it is done; `from` alone (or nothing, for a new service) once it is reverted or rolled back. The
 * service's entries stay where its first one was (`to` first); the generation is later than the current one
 * (`now`, or just after it); `rollbackOf` is dropped (this is not a rollback). Pure; the caller validates.
 */
export function applyRollout(
  current: Manifest | undefined,
  target: RolloutTarget,
  record: Rollout,
  now: Date,
): Manifest {
  const name = target.to.name;
  const switched = new Set(record.switched.map((h) => h.toLowerCase()));
  const on = (service: Service, keep: (host: string) => boolean): Service[] => {
    const hosts = service.hosts.filter((h) => keep(h.toLowerCase()));
    return hosts.length ? [{ ...service, hosts }] : [];
  };
  let entries: Service[];
  if (record.state === 'done') entries = [target.to];
  else if (record.state === 'reverted' || record.state === 'rolled-back')
    entries = target.from ? [target.from] : [];
  else
    entries = [
      ...on(target.to, (h) => switched.has(h)),
      ...(target.from ? on(target.from, (h) => !switched.has(h)) : []),
    ];
  const services = current?.services ?? [];
  const at = services.findIndex((s) => s.name === name);
  const others = services.filter((s) => s.name !== name);
  const index = at < 0 ? others.length : services.slice(0, at).filter((s) => s.name !== name).length;
  return {
    ...(current?.$schema ? { $schema: current.$schema } : {}),
    version: 1,
    generation: nextGeneration(current?.generation, now),
    services: [...others.slice(0, index), ...entries, ...others.slice(index)],
    rollout: record,
  };
}

/**
 * The first step of a new rollout of `to` on `current`: the previous version (the service's entry now, if any),
 * the waves, the record and the manifest with the first wave switched. `undefined` when the service already runs
 * exactly `to` (nothing to roll out). Throws `USAGE` for wave parameters that do not fit the service's hosts. Pure.
 */
export function planRollout(
  current: Manifest | undefined,
  to: Service,
  parameters: RolloutParameters,
  now: Date,
): { target: RolloutTarget; record: Rollout; manifest: Manifest } | undefined {
  const entries = current?.services.filter((s) => s.name === to.name) ?? [];
  const from = entries[0];
  if (from && entries.length === 1 && isDeepStrictEqual(from, to)) return undefined;
  const target = { to, from };
  const record = startRecord(current, target, planWaves(to.hosts, parameters), parameters, now);
  return { target, record, manifest: applyRollout(current, target, record, now) };
}

/** The same rollout: the same service, target store path and start. */
export function sameRollout(a: Rollout | undefined, b: Rollout | undefined): boolean {
  return (
    a !== undefined &&
    b !== undefined &&
    a.service === b.service &&
    a.to.storePath === b.to.storePath &&
    a.startedAt === b.startedAt
  );
}

/**
 * The record of a new rollout of `target.to` over `waves`, starting on the current manifest: the first wave
 * switched, the current manifest as the rollback point.
 */
export function startRecord(
  current: Manifest | undefined,
  target: RolloutTarget,
  waves: string[][],
  parameters: RolloutParameters,
  now: Date,
): Rollout {
  const at = now.toISOString();
  const version = (s: Service) => ({
    storePath: s.artifact.storePath,
    ...(s.revision === undefined ? {} : { revision: s.revision }),
  });
  return {
    service: target.to.name,
    state: 'in-progress',
    ...(target.from ? { from: version(target.from) } : {}),
    to: version(target.to),
    waves,
    switched: [...(waves[0] ?? [])],
    ...(current ? { rollbackPoint: { generation: current.generation } } : {}),
    startedAt: at,
    updatedAt: at,
    parameters,
  };
}

/**
 * The record after a step: `state`, the hosts switched (never fewer than `current` already has: two pushes
 * driving one rollout only add hosts), the time, and a message (or none).
 */
export function stepRecord(
  current: Rollout,
  step: { state: RolloutState; switched?: readonly string[]; message?: string },
  now: Date,
): Rollout {
  const wanted = new Set([...current.switched, ...(step.switched ?? [])].map((h) => h.toLowerCase()));
  const { message: _old, ...rest } = current;
  return {
    ...rest,
    state: step.state,
    // In wave order, so the record reads as the rollout went.
    switched: current.waves.flat().filter((h) => wanted.has(h.toLowerCase())),
    updatedAt: now.toISOString(),
    ...(step.message === undefined ? {} : { message: step.message.slice(0, 2000) }),
  };
}

/** The hosts of the first `count` waves. */
export function hostsOfWaves(waves: readonly (readonly string[])[], count: number): string[] {
  return waves.slice(0, count).flat();
}

/** How many waves are fully switched (the index of the wave now running is this minus one). */
export function wavesSwitched(record: Rollout): number {
  const switched = new Set(record.switched.map((h) => h.toLowerCase()));
  let n = 0;
  while (n < record.waves.length && (record.waves[n] ?? []).every((h) => switched.has(h.toLowerCase()))) n++;
  return n;
}

/** The store name of a store path (`web-1.2`), for short messages. */
export function storeName(storePath: string): string {
  return storePath.replace(/^\/nix\/store\/[0-9a-z]{32}-/, '');
}

/**
 * One line about a rollout for people, e.g. `rollout of web: 1 of 3 hosts on web-2 (rev abc), in progress
 * (wave 1 of 3, started 2025-01-15T12:00:00.000Z)`, with what to do next while it is open.
 */
export function describeRollout(record: Rollout): string {
  const total = record.waves.flat().length;
  const version = `${storeName(record.to.storePath)}${record.to.revision ? ` (${record.to.revision})` : ''}`;
  const state = record.state.replace('-', ' ');
  const waves = `wave ${Math.min(wavesSwitched(record) || 1, record.waves.length)} of ${record.waves.length}`;
  const on = record.state === 'reverted' || record.state === 'rolled-back' ? 0 : record.switched.length;
  const why = record.message ? `: ${record.message}` : '';
  const next = isOpenRollout(record)
    ? `; push deploy ${record.service} --store-path ${record.to.storePath} resumes it, push rollback ends it`
    : '';
  return `rollout of ${record.service}: ${on} of ${total} hosts on ${version}, ${state} (${waves}, started ${record.startedAt})${why}${next}`;
}

/** The parameters as flags, for messages: `--canary 1 --max-parallel 2 --min-healthy-time 10s ...`. */
export function describeParameters(parameters: RolloutParameters): string {
  return [
    parameters.canary === undefined ? '' : `--canary ${parameters.canary}`,
    parameters.canaryHosts === undefined ? '' : `--canary-hosts ${parameters.canaryHosts.join(',')}`,
    parameters.maxParallel === undefined ? '' : `--max-parallel ${parameters.maxParallel}`,
    `--min-healthy-time ${formatDuration(parameters.minHealthyTimeMs)}`,
    `--healthy-deadline ${formatDuration(parameters.healthyDeadlineMs)}`,
    parameters.autoRevert ? '' : '--no-auto-revert',
  ]
    .filter(Boolean)
    .join(' ');
}

/** True when two entries of a service are the same apart from their hosts. */
export function sameButHosts(a: Service, b: Service): boolean {
  const { hosts: _a, ...restA } = a;
  const { hosts: _b, ...restB } = b;
  return isDeepStrictEqual(restA, restB);
}
