import { DeployError } from '../errors.js';
import { ARCHIVE_ID_RE } from '../manifest/patterns.js';

export { ARCHIVE_ID_RE };

/** Where archived manifests go, relative to the manifest store's root (bucket layout: docs/design.md). */
export const ARCHIVE_DIR = 'manifests';

/** The archive id of a moment. */
export function formatArchiveId(date: Date): string {
  const iso = date.toISOString(); // 2025-01-15T12:34:56.789Z
  if (!/^\d{4}-/.test(iso))
    throw new DeployError('S3_INPUT', `archive time ${iso}: expected a year from 0000 to 9999`);
  return iso.replace(/[-:]/g, '');
}

/**
 * Reads an archive id from what a user may type or a listing returns: the id itself, the file name
 * (`manifest-<id>.json`) or the key (`manifests/manifest-<id>.json`), given the manifest's stem (`manifest`).
 * Returns `undefined` for anything else, including impossible dates and traversal attempts.
 */
export function parseArchiveId(text: string, stem = 'manifest'): { id: string; date: Date } | undefined {
  let id = text;
  if (id.startsWith(`${ARCHIVE_DIR}/`)) id = id.slice(ARCHIVE_DIR.length + 1);
  if (id.startsWith(`${stem}-`) && id.endsWith('.json')) id = id.slice(stem.length + 1, -'.json'.length);
  const match = ARCHIVE_ID_RE.exec(id);
  if (!match) return undefined;
  const [, y, mo, d, h, mi, s, ms] = match;
  const date = new Date(`${y}-${mo}-${d}T${h}:${mi}:${s}.${ms}Z`);
  // Round-trip: rejects 20250230T..., 20251301T... and other dates that Date would silently move.
  if (Number.isNaN(date.getTime()) || formatArchiveId(date) !== id) return undefined;
  return { id, date };
}

/** The key of an archived manifest, e.g. `manifests/manifest-20250115T123456.789Z.json`. */
export function archiveKey(id: string, stem = 'manifest'): string {
  return `${ARCHIVE_DIR}/${stem}-${id}.json`;
}
