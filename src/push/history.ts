import { isDeepStrictEqual } from 'node:util';
import { DeployError } from '../errors.js';
import { diffManifests } from '../manifest/diff.js';
import type { Manifest } from '../manifest/schema.js';
import { parseManifest } from '../manifest/validate.js';
import { renderTable } from '../render-table.js';
import type { ArchiveEntry } from '../s3/manifest-store.js';
import { updateManifest } from '../s3/update-manifest.js';
import type { PushContext } from './context.js';

/** One archived manifest and what the next one changed. */
export interface HistoryEntry {
  id: string;
  archivedAt: string;
  generation?: string;
  /** The services the next newer manifest (or the current one) added, changed or removed relative to this. */
  changedAfter: string[];
  /** Why it could not be read, if it could not. */
  problem?: string;
}

const parse = (text: string) => {
  const parsed = parseManifest(text);
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

/** The newest `limit` archived manifests, newest first, each with what replaced it. */
export async function readHistory(ctx: PushContext, limit = 20): Promise<HistoryEntry[]> {
  const archives = (await ctx.manifests.listArchives()).slice(0, limit);
  const current = await ctx.manifests.read();
  let newer = current.status === 'found' ? parse(current.text) : undefined;
  const entries: HistoryEntry[] = [];
  for (const entry of archives) {
    const { text } = await ctx.manifests.readArchive(entry.id);
    const manifest = parse(text);
    entries.push({
      id: entry.id,
      archivedAt: entry.archivedAt,
      ...(manifest ? { generation: manifest.generation } : { problem: 'not a valid manifest' }),
      changedAfter: changes(manifest, newer),
    });
    newer = manifest;
  }
  return entries;
}

/** Renders the history as a table. */
export function renderHistory(entries: HistoryEntry[]): string {
  if (entries.length === 0) return 'no archived manifests yet';
  return renderTable(
    ['ARCHIVE', 'GENERATION', 'THEN CHANGED'],
    entries.map((e) => [e.id, e.generation ?? '-', e.problem ?? (e.changedAfter.join(' ') || 'nothing')]),
  );
}

/** True when two manifests run the same services (compared by name, whatever their order), generation aside. */
function sameServices(a: Manifest, b: Manifest): boolean {
  const byName = (m: Manifest) =>
    [...m.services].sort((x, y) => (x.name < y.name ? -1 : x.name > y.name ? 1 : 0));
  return isDeepStrictEqual(byName(a), byName(b));
}

/**
 * Restores an archived manifest as the current one (fleet rollback, docs/design.md), archiving the current first:
 * `to` names an archive, `steps` counts back from the newest (1 = the manifest before the current one). The
 * archived text is written unchanged, older generation and all; hosts converge to it like to any change.
 * Refuses (`ROLLBACK_UNCHANGED`, nothing written) when the archive has the same services as the current
 * manifest: a rollback to it would change nothing on any host (after an interrupted push, the newest archive can
 * be the current manifest itself).
 */
export async function rollbackManifest(
  ctx: PushContext,
  target: { to?: string; steps?: number },
): Promise<{ archive: ArchiveEntry; etag: string; manifest: Manifest; changed: boolean }> {
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
  const parsed = parseManifest(text, { secretsDir: ctx.secretsDir });
  if (!parsed.ok)
    throw new DeployError(
      'MANIFEST_INVALID',
      `archived manifest ${entry.id} is not valid today; not restored`,
      { details: parsed.issues },
    );
  const result = await updateManifest(
    ctx.manifests,
    (current) => {
      const parsedCurrent =
        current === undefined ? undefined : parseManifest(current, { secretsDir: ctx.secretsDir });
      if (parsedCurrent?.ok && sameServices(parsedCurrent.manifest, parsed.manifest))
        throw new DeployError(
          'ROLLBACK_UNCHANGED',
          `nothing to roll back: ${entry.id} has the same services as the current manifest (generation ${parsedCurrent.manifest.generation}); nothing written`,
        );
      return text;
    },
    { now: () => new Date(ctx.clock.now()) },
  );
  return { archive: entry, etag: result.etag, manifest: parsed.manifest, changed: result.changed };
}
