/**
 * Push's guard against building on a manifest that was put back. Hosts refuse an older signed manifest (replay
 * protection in the deployer), but push signs what it writes anew: if it built on a put-back manifest, the
 * next push would carry that manifest's old versions of every other service to the hosts with a fresh
 * generation. So before a change is written, the current manifest is compared with the newest archive that
 * verifies: the current manifest may not be older than a manifest it already replaced.
 *
 * This is a tripwire, not the guarantee: whoever can write the bucket can also delete the archives that would
 * reveal the replay. The guarantee is on the hosts, which never go back to an older generation.
 */
import { DeployError } from '../errors.js';
import { type AppliedManifest, judgeGeneration, manifestDigest } from '../manifest/replay.js';
import { parseManifest } from '../manifest/validate.js';
import type { PushContext } from './context.js';
import { type ManifestTrust, openPushedManifest } from './signing.js';

/** The newest archive that verifies and parses: the floor for the current manifest's generation. */
export interface ArchiveFloor extends AppliedManifest {
  /** The archive's id (`push rollback --to` takes it). */
  id: string;
  /** `sha256:<hex>` of the archived payload. */
  digest: string;
  /** When the bucket stored the archive (its `Last-Modified`), where the store says. */
  storedAt?: Date;
}

/** The current manifest as push judges it: its generation, the payload it was signed as, when it was stored. */
export interface CurrentManifestFacts {
  generation: string;
  payload: string;
  /** The manifest object's `Last-Modified`, where the store says. */
  storedAt?: Date;
}

/** How many of the newest archives are read to find one that verifies (anyone can write an archive). */
const ARCHIVES_READ = 3;

/**
 * The newest of the newest {@link ARCHIVES_READ} archives that verifies with `trust` and is a valid manifest;
 * `undefined` when there is none (a new bucket, or archives all unsigned while unsigned manifests are refused).
 * Costs one listing and usually one GET.
 */
export async function readArchiveFloor(
  ctx: Pick<PushContext, 'manifests' | 'secretsDir'>,
  trust: ManifestTrust,
): Promise<ArchiveFloor | undefined> {
  const archives = (await ctx.manifests.listArchives()).slice(0, ARCHIVES_READ);
  for (const entry of archives) {
    const { text, lastModified } = await ctx.manifests.readArchive(entry.id);
    let payload: string;
    try {
      payload = openPushedManifest(text, `archive ${entry.id}`, trust).payload;
    } catch {
      continue; // not signed by a trusted key: proves nothing about what was current
    }
    const parsed = parseManifest(payload, { secretsDir: ctx.secretsDir });
    if (parsed.ok) {
      return {
        id: entry.id,
        generation: parsed.manifest.generation,
        digest: manifestDigest(payload),
        ...(lastModified ? { storedAt: lastModified } : {}),
      };
    }
  }
  return undefined;
}

/**
 * Throws `MANIFEST_STALE` (nothing written) when the current manifest is older than `floor`, or has its
 * generation with other content, or is the floor's very manifest but was stored after the archive was (the
 * bucket's own clock on both objects): in each case a manifest that was already replaced was put back in the
 * bucket. The floor's manifest stored before its archive is fine: a push interrupted after it archived the
 * current manifest.
 */
export function checkNotPutBack(
  floor: ArchiveFloor | undefined,
  current: CurrentManifestFacts,
  url: string,
): void {
  if (floor === undefined) return;
  const verdict = judgeGeneration(floor, {
    generation: current.generation,
    digest: manifestDigest(current.payload),
  });
  const rewritten =
    verdict === 'same' &&
    floor.storedAt !== undefined &&
    current.storedAt !== undefined &&
    current.storedAt.getTime() > floor.storedAt.getTime();
  if (verdict !== 'stale' && verdict !== 'replayed' && !rewritten) return;
  const why =
    verdict === 'stale'
      ? `its generation ${current.generation} is older than ${floor.generation}, the generation of archive ${floor.id}, which it must have replaced`
      : verdict === 'replayed'
        ? `its generation ${current.generation} is that of archive ${floor.id}, but its content differs`
        : `it is the manifest archive ${floor.id} holds, written to the bucket again after it was archived (${current.storedAt?.toISOString()} > ${floor.storedAt?.toISOString()})`;
  throw new DeployError(
    'MANIFEST_STALE',
    `the current manifest at ${url} was put back (stale or replayed): ${why}; push does not build on it and nothing was written (push history shows the archives; push rollback --to one of them writes it anew)`,
    { details: { floor, generation: current.generation } },
  );
}

/**
 * {@link checkNotPutBack} for a manifest text as read inside a compare-and-swap transform (`undefined`: none
 * yet) and the manifest it verified as. `before` is the manifest as read before the transform, with its
 * `Last-Modified`: used when the transform sees the same text.
 */
export function checkTextNotPutBack(
  floor: ArchiveFloor | undefined,
  text: string | undefined,
  current: { generation: string } | undefined,
  url: string,
  before?: { text: string; lastModified?: Date },
): void {
  if (current === undefined || text === undefined) return;
  const { payload } = openPushedManifest(text, 'the current manifest', 'unverified');
  const storedAt = before?.text === text ? before.lastModified : undefined;
  checkNotPutBack(floor, { generation: current.generation, payload, ...(storedAt ? { storedAt } : {}) }, url);
}

/** The manifest as read now, for {@link checkTextNotPutBack}'s `before` (one GET). */
export async function readBefore(
  ctx: Pick<PushContext, 'manifests'>,
): Promise<{ text: string; lastModified?: Date } | undefined> {
  const read = await ctx.manifests.read();
  if (read.status !== 'found') return undefined;
  return { text: read.text, ...(read.lastModified ? { lastModified: read.lastModified } : {}) };
}
