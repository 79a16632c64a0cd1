import { isDeepStrictEqual } from 'node:util';
import { DeployError, isDeployError } from '../errors.js';
import { diffManifests } from '../manifest/diff.js';
import { compareGenerations } from '../manifest/replay.js';
import type { Manifest } from '../manifest/schema.js';
import { signManifest } from '../manifest/signature.js';
import { formatIssues, parseManifest, validateManifest } from '../manifest/validate.js';
import { renderTable } from '../render-table.js';
import type { ArchiveEntry } from '../s3/manifest-store.js';
import { updateManifest } from '../s3/update-manifest.js';
import type { PushContext } from './context.js';
import { currentManifest, manifestUpdateOptions, renderManifestText } from './manifest-change.js';
import { type ManifestSigning, openPushedManifest } from './signing.js';
import { nextGeneration } from './spec.js';

/** One archived manifest (or, first, the current one) and what the next one changed. */
export interface HistoryEntry {
  /** The archive id; `current` for the current manifest. */
  id: string;
  /** When it was archived; absent for the current manifest. */
  archivedAt?: string;
  generation?: string;
  /** Set when this manifest was written by `push rollback`: the archive whose services it restored. */
  rollbackOf?: string;
  /** The services the next newer manifest (or the current one) added, changed or removed relative to this. */
  changedAfter: string[];
  /** Why it could not be read, if it could not. */
  problem?: string;
}

/** For display only: the envelope is unwrapped without verifying it (push verifies what it builds on). */
const parse = (text: string) => {
  const parsed = parseManifest(openPushedManifest(text, 'manifest', 'unverified').payload);
  return parsed.ok ? parsed.manifest : undefined;
};

/** What changed between two manifests, as `+name`, `~name`, `-name`. */
function changes(older: Manifest | undefined, newer: Manifest | undefined): string[] {
  if (!older || !newer) return [];
  const mark = { added: '+', changed: '~', removed: '-', unchanged: '' } as const;
  return diffManifests(older, newer)
    .services.filter((s) => s.kind !== 'unchanged')
    .map((s) => `${mark[s.kind]}${s.name}`);
}

/**
 * The current manifest, then the newest `limit` archived manifests, newest first, each with what replaced it.
 * A manifest `push rollback` wrote carries `rollbackOf`. Signatures are not checked here (display only).
 */
export async function readHistory(ctx: PushContext, limit = 20): Promise<HistoryEntry[]> {
  const archives = (await ctx.manifests.listArchives()).slice(0, limit);
  const current = await ctx.manifests.read();
  let newer = current.status === 'found' ? parse(current.text) : undefined;
  const entries: HistoryEntry[] = [];
  if (current.status === 'found') entries.push({ id: 'current', ...describe(newer), changedAfter: [] });
  for (const entry of archives) {
    const { text } = await ctx.manifests.readArchive(entry.id);
    const manifest = parse(text);
    entries.push({
      id: entry.id,
      archivedAt: entry.archivedAt,
      ...describe(manifest),
      changedAfter: changes(manifest, newer),
    });
    newer = manifest;
  }
  return entries;
}

function describe(
  manifest: Manifest | undefined,
): Pick<HistoryEntry, 'generation' | 'rollbackOf' | 'problem'> {
  if (!manifest) return { problem: 'not a valid manifest' };
  return {
    generation: manifest.generation,
    ...(manifest.rollbackOf === undefined ? {} : { rollbackOf: manifest.rollbackOf }),
  };
}

/** Renders the history as a table; a rollback's generation says which archive it restored. */
export function renderHistory(entries: HistoryEntry[]): string {
  if (entries.every((e) => e.id === 'current')) return 'no archived manifests yet';
  return renderTable(
    ['ARCHIVE', 'GENERATION', 'THEN CHANGED'],
    entries.map((e) => [
      e.id,
      `${e.generation ?? '-'}${e.rollbackOf ? ` (rollback to ${e.rollbackOf})` : ''}`,
      e.id === 'current' ? '-' : (e.problem ?? (e.changedAfter.join(' ') || 'nothing')),
    ]),
  );
}

/** True when two manifests run the same services (compared by name, whatever their order), generation aside. */
function sameServices(a: Manifest, b: Manifest): boolean {
  const byName = (m: Manifest) =>
    [...m.services].sort((x, y) => (x.name < y.name ? -1 : x.name > y.name ? 1 : 0));
  return isDeepStrictEqual(byName(a), byName(b));
}

/** What {@link rollbackManifest} did. */
export interface RollbackResult {
  /** The archive whose services were restored. */
  archive: ArchiveEntry;
  /** The archived manifest, as it was. */
  restored: Manifest;
  /** The manifest now current: the archived services under a new generation, with `rollbackOf`. */
  manifest: Manifest;
  etag: string;
  /** True: a rollback always writes (an unchanged one is refused with `ROLLBACK_UNCHANGED`). */
  changed: boolean;
}

/**
 * Fleet rollback (docs/design.md): writes a new manifest with the services of an archived one, a generation
 * later than the current one (hosts refuse an older generation as a replay) and `rollbackOf` naming the
 * archive, signed with `signing.secretKey`; the current one is archived first. `to` names an archive, `steps`
 * counts back from the newest (1 = the manifest before the current one). The archive must verify with
 * `signing` (it is what the rollback builds on) and be valid today. A current manifest that does not verify is
 * replaced, not built on (a `push.current-unverified` event says so): rollback is the way out of a tampered one.
 * Refuses (`ROLLBACK_UNCHANGED`, nothing written) when the archive has the same services as the current
 * manifest: a rollback to it would change nothing on any host (after an interrupted push, the newest archive can
 * be the current manifest itself).
 */
export async function rollbackManifest(
  ctx: PushContext,
  target: { to?: string; steps?: number },
  signing: ManifestSigning,
): Promise<RollbackResult> {
  let entry: ArchiveEntry;
  if (target.to !== undefined) entry = (await ctx.manifests.readArchive(target.to)).entry;
  else {
    const steps = target.steps ?? 1;
    const archives = await ctx.manifests.listArchives();
    const found = archives[steps - 1];
    if (!found)
      throw new DeployError('USAGE', `--steps ${steps}: only ${archives.length} archived manifest(s) exist`);
    entry = found;
  }
  const { text } = await ctx.manifests.readArchive(entry.id);
  const { payload } = openPushedManifest(text, `archived manifest ${entry.id}`, signing);
  const parsed = parseManifest(payload, { secretsDir: ctx.secretsDir });
  if (!parsed.ok)
    throw new DeployError(
      'MANIFEST_INVALID',
      `archived manifest ${entry.id} is not valid today; not restored`,
      { details: parsed.issues },
    );
  const restored = parsed.manifest;
  let manifest: Manifest = restored;
  const result = await updateManifest(
    ctx.manifests,
    (currentText) => {
      const current = verifiedOrNothing(ctx, currentText, signing);
      if (current && sameServices(current, restored))
        throw new DeployError(
          'ROLLBACK_UNCHANGED',
          `nothing to roll back: ${entry.id} has the same services as the current manifest (generation ${current.generation}); nothing written`,
        );
      const after = [current?.generation, restored.generation]
        .filter((g) => g !== undefined)
        .sort(compareGenerations)
        .at(-1);
      const { rollbackOf: _earlier, ...rest } = restored;
      manifest = {
        ...rest,
        generation: nextGeneration(after, new Date(ctx.clock.now())),
        rollbackOf: entry.id,
      };
      const checked = validateManifest(manifest, { secretsDir: ctx.secretsDir });
      if (!checked.ok)
        throw new DeployError(
          'MANIFEST_INVALID',
          `the restored manifest would be invalid; nothing was written:\n${formatIssues(checked.issues)}`,
          { details: checked.issues },
        );
      return signManifest(renderManifestText(manifest), signing.secretKey);
    },
    manifestUpdateOptions(ctx),
  );
  return { archive: entry, restored, manifest, etag: result.etag, changed: result.changed };
}

/** The current manifest if it verifies and is valid; otherwise `undefined` (and an event saying why). */
function verifiedOrNothing(
  ctx: PushContext,
  text: string | undefined,
  signing: ManifestSigning,
): Manifest | undefined {
  try {
    return currentManifest(text, ctx.manifests.url, ctx.secretsDir, signing);
  } catch (error) {
    if (!isDeployError(error) || !error.code.startsWith('MANIFEST_')) throw error;
    ctx.onEvent({
      level: 'warn',
      type: 'push.current-unverified',
      message: `the current manifest is replaced, not built on: ${error.message}`,
    });
    return undefined;
  }
}
