/**
 * Replay protection: a host never goes back to an older manifest, nor to another manifest of the generation it
 * applied. Pure: the caller keeps the last applied generation and digest in its state.
 */
import { createHash } from 'node:crypto';
import { DeployError } from '../errors.js';
import { describeValue } from './describe.js';
import { UTC_TIMESTAMP_RE } from './patterns.js';

/** What identifies a manifest for replay protection. */
export interface ManifestIdentity {
  /** The manifest's `generation`: an ISO-8601 UTC timestamp. */
  generation: string;
  /** `sha256:<hex>` of the payload's UTF-8 bytes ({@link manifestDigest}). */
  digest: string;
}

/** What a host last applied. `digest` is absent in state written before digests were recorded. */
export interface AppliedManifest {
  generation: string;
  digest?: string;
}

/**
 * How an incoming manifest relates to the last one applied: `new` (later generation, or nothing applied yet),
 * `same` (the same manifest read again), `stale` (an earlier generation) or `replayed` (the same generation
 * with other content). Only `new` and `same` may be applied.
 */
export type GenerationVerdict = 'new' | 'same' | 'stale' | 'replayed';

/** `sha256:<hex>` of a manifest payload's UTF-8 bytes: the exact text that was signed (or read, if unsigned). */
export function manifestDigest(payload: string): string {
  return `sha256:${createHash('sha256').update(payload, 'utf8').digest('hex')}`;
}

/**
 * Compares two generations as instants, to the nanosecond (`...:56Z` equals `...:56.000Z`; `...:56.0001Z` is
 * later). Negative, zero or positive like a sort comparator. Throws `MANIFEST_GENERATION` for anything that is
 * not an ISO-8601 UTC timestamp.
 */
export function compareGenerations(a: string, b: string): number {
  const [secondsA, nanosA] = instant(a);
  const [secondsB, nanosB] = instant(b);
  // Fixed-width digits: the string order of the seconds part is the time order.
  if (secondsA !== secondsB) return secondsA < secondsB ? -1 : 1;
  return Math.sign(nanosA - nanosB);
}

/**
 * Judges an incoming manifest against the last one this host applied (see {@link GenerationVerdict}). A host
 * that has applied nothing accepts any generation. Without a recorded digest (older state), an equal generation
 * counts as `same`: push never writes two manifests with one generation.
 */
export function judgeGeneration(
  last: AppliedManifest | undefined,
  incoming: ManifestIdentity,
): GenerationVerdict {
  if (last === undefined) return 'new';
  const order = compareGenerations(incoming.generation, last.generation);
  if (order > 0) return 'new';
  if (order < 0) return 'stale';
  return last.digest === undefined || last.digest === incoming.digest ? 'same' : 'replayed';
}

/**
 * The message for a refused manifest (`stale` or `replayed`), `undefined` for one that may be applied. It says
 * "stale or replayed manifest", both generations, and that nothing changed.
 */
export function describeReplay(
  verdict: GenerationVerdict,
  last: AppliedManifest | undefined,
  incoming: ManifestIdentity,
): string | undefined {
  if (verdict === 'stale') {
    return `stale or replayed manifest: generation ${incoming.generation} is older than ${last?.generation}, the last generation this host applied; nothing changed`;
  }
  if (verdict === 'replayed') {
    return `stale or replayed manifest: generation ${incoming.generation} is the one this host last applied, but its content differs (${short(incoming.digest)}, applied ${short(last?.digest)}); nothing changed`;
  }
  return undefined;
}

function short(digest: string | undefined): string {
  return digest === undefined ? 'unknown' : `${digest.slice(0, 'sha256:'.length + 12)}…`;
}

/** A timestamp as [seconds part `YYYY-MM-DDTHH:MM:SS`, nanoseconds]. */
function instant(generation: string): [string, number] {
  const match = UTC_TIMESTAMP_RE.exec(generation);
  if (!match) {
    throw new DeployError(
      'MANIFEST_GENERATION',
      `generation: expected an ISO-8601 UTC timestamp such as "2025-01-15T12:34:56Z", found ${describeValue(generation)}`,
    );
  }
  const fraction = /\.(\d+)Z$/.exec(generation)?.[1] ?? '';
  return [generation.slice(0, 19), Number(fraction.padEnd(9, '0'))];
}
