import { isDeepStrictEqual } from 'node:util';
import { DeployError, isDeployError } from '../errors.js';
import { diffManifests } from '../manifest/diff.js';
import { compareGenerations } from '../manifest/replay.js';
import type { Manifest, Rollout } from '../manifest/schema.js';
import { signManifest } from '../manifest/signature.js';
import { formatIssues, parseManifest, validateManifest } from '../manifest/validate.js';
import { renderTable } from '../render-table.js';
import type { ArchiveEntry } from '../s3/manifest-store.js';
import { updateManifest } from '../s3/update-manifest.js';
import type { PushContext } from './context.js';
import { currentManifest, manifestUpdateOptions, renderManifestText } from './manifest-change.js';
import { isWave, type ReadArchive, readVerifiedArchive } from './rollback-point.js';
import { isOpenRollout, stepRecord, storeName } from './rollout-plan.js';
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
  /** Set when `push rollback --service` restored only this service from `rollbackOf`. */
  rollbackService?: string;
  /** The rollout this manifest records, in a line (a wave of it while it is open). */
  rollout?: string;
  /** True when this manifest is a wave of an open rollout: not a rollback point. */
  wave?: boolean;
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
): Pick<HistoryEntry, 'generation' | 'rollbackOf' | 'rollbackService' | 'rollout' | 'wave' | 'problem'> {
  if (!manifest) return { problem: 'not a valid manifest' };
  const rollout = manifest.rollout;
  return {
    generation: manifest.generation,
    ...(manifest.rollbackOf === undefined ? {} : { rollbackOf: manifest.rollbackOf }),
    ...(manifest.rollbackService === undefined ? {} : { rollbackService: manifest.rollbackService }),
    ...(rollout === undefined ? {} : { rollout: describeRolloutStep(rollout) }),
    ...(isOpenRollout(rollout) ? { wave: true } : {}),
  };
}

/** A rollout as one history line shows it: `rollout of web → web-2: 1 of 3 hosts, in progress`. */
function describeRolloutStep(rollout: Rollout): string {
  const total = rollout.waves.flat().length;
  const on = rollout.state === 'reverted' || rollout.state === 'rolled-back' ? 0 : rollout.switched.length;
  return `rollout of ${rollout.service} → ${storeName(rollout.to.storePath)}: ${on} of ${total} hosts, ${rollout.state.replace('-', ' ')}`;
}

/**
 * Renders the history as a table; a rollback's generation says which archive it restored (and which service,
 * for `--service`), a rollout's what it had reached; a wave of a rollout is marked as no rollback point.
 */
export function renderHistory(entries: HistoryEntry[]): string {
  if (entries.every((e) => e.id === 'current')) return 'no archived manifests yet';
  const notes = (e: HistoryEntry) =>
    [
      e.rollbackOf
        ? e.rollbackService
          ? `rollback of ${e.rollbackService} to ${e.rollbackOf}`
          : `rollback to ${e.rollbackOf}`
        : '',
      e.rollout ? `${e.rollout}${e.wave ? '; a wave, not a rollback point' : ''}` : '',
    ]
      .filter(Boolean)
      .map((n) => ` (${n})`)
      .join('');
  return renderTable(
    ['ARCHIVE', 'GENERATION', 'THEN CHANGED'],
    entries.map((e) => [
      e.id,
      `${e.generation ?? '-'}${notes(e)}`,
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
  /** Set for `--service`: the one service restored; the others were left as they were. */
  service?: string;
  /** The rollout this rollback ended (it was open, or done), as it was. */
  endedRollout?: Rollout;
}

/** Which archive a rollback restores, and whether only one service of it. */
export interface RollbackTarget {
  /** An archive id, as `push history` names it. */
  to?: string;
  /** Go back this many rollback points (default 1); with `service`, this many earlier versions of it. */
  steps?: number;
  /** Restore only this service's entries; the other services stay as they are now. */
  service?: string;
}

/**
 * Fleet rollback (docs/design.md): writes a new manifest with the services of an archived one, a generation
 * later than the current one (hosts refuse an older generation as a replay) and `rollbackOf` naming the
 * archive, signed with `signing.secretKey`; the current one is archived first. `to` names an archive, `steps`
 * counts back from the newest (1 = the manifest before the current one). A wave of a staged rollout (an archive
 * whose rollout is open) is no rollback point: `steps` skips it and `to` refuses it, so the manifest before a
 * rollout is the one a rollback during or after it returns to. With `service`, only that service's entries are
 * taken from the archive (with `steps`, its N-th earlier version) and every other service stays as it is now
 * (`rollbackService` says so): a later push of another service is not undone. A rollback that restores the
 * service of an open or done rollout ends it (its record `rolled-back`). The archive must verify with `signing`
 * (it is what the rollback builds on) and be valid today. A current manifest that does not verify is replaced,
 * not built on (a `push.current-unverified` event says so): rollback is the way out of a tampered one. Refuses
 * (`ROLLBACK_UNCHANGED`, nothing written) when the result would run the same services as the current manifest
 * (after an interrupted push, the newest archive can be the current manifest itself).
 */
export async function rollbackManifest(
  ctx: PushContext,
  target: RollbackTarget,
  signing: ManifestSigning,
): Promise<RollbackResult> {
  const { service } = target;
  const read = await chooseArchive(ctx, target, signing);
  const { entry } = read;
  const restored = read.manifest;
  let manifest: Manifest = restored;
  let endedRollout: Rollout | undefined;
  const result = await updateManifest(
    ctx.manifests,
    (currentText) => {
      const current = verifiedOrNothing(ctx, currentText, signing);
      const after = [current?.generation, restored.generation]
        .filter((g) => g !== undefined)
        .sort(compareGenerations)
        .at(-1);
      const now = new Date(ctx.clock.now());
      const generation = nextGeneration(after, now);
      const rollout = current?.rollout;
      // A rollback that touches the rolled-out service ends its rollout (open: always, as a full rollback never
      // returns to a wave; done: when the service changes): the record says so until its next deploy.
      const ofRollout = (m: Manifest | undefined) => m?.services.filter((s) => s.name === rollout?.service);
      const touched =
        service === undefined
          ? isOpenRollout(rollout) || !isDeepStrictEqual(ofRollout(current), ofRollout(restored))
          : rollout?.service === service;
      const ends = rollout !== undefined && touched && (isOpenRollout(rollout) || rollout.state === 'done');
      endedRollout = ends ? rollout : undefined;
      const ended = ends
        ? stepRecord(rollout, { state: 'rolled-back', message: `ended by push rollback to ${entry.id}` }, now)
        : undefined;
      if (service === undefined) {
        if (current && sameServices(current, restored))
          throw new DeployError(
            'ROLLBACK_UNCHANGED',
            `nothing to roll back: ${entry.id} has the same services as the current manifest (generation ${current.generation}); nothing written`,
          );
        const { rollbackOf: _earlier, rollbackService: _one, rollout: _theirs, ...rest } = restored;
        manifest = { ...rest, generation, rollbackOf: entry.id, ...(ended ? { rollout: ended } : {}) };
      } else {
        const entries = (m: Manifest | undefined) => m?.services.filter((s) => s.name === service) ?? [];
        if (isDeepStrictEqual(entries(current), entries(restored)))
          throw new DeployError(
            'ROLLBACK_UNCHANGED',
            `nothing to roll back: ${service} is the same in ${entry.id} as in the current manifest${current ? ` (generation ${current.generation})` : ''}; nothing written`,
          );
        const services = current?.services ?? [];
        const at = services.findIndex((s) => s.name === service);
        const others = services.filter((s) => s.name !== service);
        const index = at < 0 ? others.length : services.slice(0, at).filter((s) => s.name !== service).length;
        const keep = rollout && rollout.service !== service ? rollout : ended;
        manifest = {
          ...(current?.$schema ? { $schema: current.$schema } : {}),
          version: 1,
          generation,
          services: [...others.slice(0, index), ...entries(restored), ...others.slice(index)],
          rollbackOf: entry.id,
          rollbackService: service,
          ...(keep ? { rollout: keep } : {}),
        };
      }
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
  return {
    archive: entry,
    restored,
    manifest,
    etag: result.etag,
    changed: result.changed,
    ...(service === undefined ? {} : { service }),
    ...(endedRollout ? { endedRollout } : {}),
  };
}

/**
 * The archive a rollback restores (read, verified, valid): `to`, or counting back `steps` rollback points
 * (waves of a rollout skipped; with `service`, archives where that service is as it is now, or as in a later
 * archive, skipped too).
 */
async function chooseArchive(
  ctx: PushContext,
  target: RollbackTarget,
  signing: ManifestSigning,
): Promise<ReadArchive> {
  if (target.to !== undefined) {
    const read = await readVerifiedArchive(ctx, (await ctx.manifests.readArchive(target.to)).entry, signing);
    if (isWave(read.manifest, target.service))
      throw new DeployError(
        'USAGE',
        `--to ${read.entry.id}: that manifest is a wave of the rollout of ${read.manifest.rollout?.service} (${read.manifest.rollout?.state}), not a rollback point; ${rollbackPointHint(read.manifest)}; nothing written`,
      );
    return read;
  }
  const steps = target.steps ?? 1;
  const archives = await ctx.manifests.listArchives();
  const current = await ctx.manifests.read();
  const entries = (m: Manifest | undefined) => m?.services.filter((s) => s.name === target.service) ?? [];
  const seen =
    target.service === undefined || current.status !== 'found' ? [] : [entries(parse(current.text))];
  let skipped = 0;
  let found = 0;
  for (const entry of archives) {
    const manifest = parse((await ctx.manifests.readArchive(entry.id)).text);
    // An archive that does not parse counts as a step: verifying it below says what is wrong with it.
    if (manifest && isWave(manifest, target.service)) {
      skipped++;
      continue;
    }
    if (target.service !== undefined) {
      const version = entries(manifest);
      if (seen.some((s) => isDeepStrictEqual(s, version))) continue;
      seen.push(version);
    }
    if (++found === steps) return readVerifiedArchive(ctx, entry, signing);
  }
  const what =
    target.service === undefined
      ? `only ${archives.length} archived manifest(s) exist${skipped ? ` (${skipped} of them waves of a rollout, which are not rollback points)` : ''}`
      : `only ${found} earlier version(s) of ${target.service} are archived`;
  throw new DeployError('USAGE', `--steps ${steps}: ${what}`);
}

/** Where a wave's rollout started: the way to its rollback point. */
function rollbackPointHint(manifest: Manifest): string {
  const point = manifest.rollout?.rollbackPoint;
  return point
    ? `its rollback point is the manifest of generation ${point.generation} (push history lists it; push rollback without --to returns there)`
    : 'it started on an empty bucket';
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
