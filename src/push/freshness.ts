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
}

/** How many of the newest archives are read to find one that verifies (anyone can write an archive). */
const ARCHIVES_READ = 3;

/**
 * The newest of the newest {@link ARCHIVES_READ} archives that verifies with `trust` and is a valid manifest;
 * `undefined` when there is none (a new bucket, or archives all unsigned while unsigned manifests are refused).
 * Costs one listing and usually one GET.
 */
export async function readArchiveFloor(
  ctx: PushContext,
  trust: ManifestTrust,
): Promise<ArchiveFloor | undefined> {
  const archives = (await ctx.manifests.listArchives()).slice(0, ARCHIVES_READ);
  for (const entry of archives) {
    const { text } = await ctx.manifests.readArchive(entry.id);
    let payload: string;
    try {
      payload = openPushedManifest(text, `archive ${entry.id}`, trust).payload;
    } catch {
      continue; // not signed by a trusted key: proves nothing about what was current
    }
    const parsed = parseManifest(payload, { secretsDir: ctx.secretsDir });
    if (parsed.ok)
      return { id: entry.id, generation: parsed.manifest.generation, digest: manifestDigest(payload) };
  }
  return undefined;
}

/**
 * Throws `MANIFEST_STALE` (nothing written) when the current manifest (its `generation` and the `payload` it
 * was signed as) is older than `floor`, or has its generation with other content: a manifest that was already
 * replaced was put back in the bucket. The same manifest as the floor is fine (a push interrupted after it
 * archived the current manifest).
 */
export function checkNotPutBack(
  floor: ArchiveFloor | undefined,
  current: { generation: string; payload: string },
  url: string,
): void {
  if (floor === undefined) return;
  const verdict = judgeGeneration(floor, {
    generation: current.generation,
    digest: manifestDigest(current.payload),
  });
  if (verdict !== 'stale' && verdict !== 'replayed') return;
  const why =
    verdict === 'stale'
      ? `its generation ${current.generation} is older than ${floor.generation}, the generation of archive ${floor.id}, which it must have replaced`
      : `its generation ${current.generation} is that of archive ${floor.id}, but its content differs`;
  throw new DeployError(
    'MANIFEST_STALE',
    `the current manifest at ${url} was put back (stale or replayed): ${why}; push does not build on it and nothing was written (push history shows the archives; push rollback --to one of them writes it anew)`,
    { details: { floor, generation: current.generation } },
  );
}
