import { isDeepStrictEqual } from 'node:util';
import { DeployError } from '../errors.js';
import type { Manifest } from '../manifest/schema.js';
import { signManifest } from '../manifest/signature.js';
import { formatIssues, parseManifest, validateManifest } from '../manifest/validate.js';
import type { WriteMode } from '../s3/bucket-mode.js';
import type { LeaseOptions } from '../s3/lease.js';
import type { ArchiveEntry } from '../s3/manifest-store.js';
import { type UpdateManifestOptions, updateManifest } from '../s3/update-manifest.js';
import type { PushContext } from './context.js';
import { checkTextNotPutBack, readArchiveFloor, readBefore } from './freshness.js';
import { type ManifestSigning, type ManifestTrust, openPushedManifest } from './signing.js';
import { applyServiceChange, type ServiceChange } from './spec.js';

/** Renders a manifest as stored: pretty JSON with a final newline (readable diffs in the bucket's history). */
export function renderManifestText(manifest: Manifest): string {
  return `${JSON.stringify(manifest, null, 2)}\n`;
}

/**
 * Verifies and parses the current manifest text for a change (see `openPushedManifest`): one that does not
 * verify with `trust`, or is invalid, stops the push (fix it or roll back).
 */
export function currentManifest(
  text: string | undefined,
  url: string,
  secretsDir: string,
  trust: ManifestTrust | 'unverified',
): Manifest | undefined {
  if (text === undefined) return undefined;
  const { payload } = openPushedManifest(text, `the current manifest at ${url}`, trust);
  const parsed = parseManifest(payload, { secretsDir });
  if (parsed.ok) return parsed.manifest;
  throw new DeployError(
    'MANIFEST_INVALID',
    `the current manifest at ${url} is invalid; fix it or push rollback first:\n${formatIssues(parsed.issues)}`,
    {
      details: parsed.issues,
    },
  );
}

/** The manifest a change would produce from `current` (unchanged when the service is already exactly so). */
export function nextManifest(
  current: Manifest | undefined,
  change: ServiceChange,
  now: Date,
  secretsDir: string,
): Manifest {
  const next = applyServiceChange(current, change, now);
  const before = current?.services.find((s) => s.name === change.spec.name);
  const after = next.services.find((s) => s.name === change.spec.name);
  if (current && isDeepStrictEqual(before, after)) return current;
  const result = validateManifest(next, { secretsDir });
  if (!result.ok) {
    throw new DeployError(
      'MANIFEST_INVALID',
      `the manifest after this change would be invalid; nothing was written:\n${formatIssues(result.issues)}`,
      {
        details: result.issues,
      },
    );
  }
  return next;
}

/** What {@link writeServiceChange} did. */
export interface ManifestWrite {
  changed: boolean;
  manifest: Manifest;
  /** The manifest before, as read for the successful write. */
  previous: Manifest | undefined;
  etag: string;
  archive?: ArchiveEntry;
  attempts: number;
  /** How it was written (the mode `push init` recorded in the bucket). */
  mode: WriteMode;
}

/** Lease timing on the push's clock (a fake clock in tests: settling and waiting take no real time). */
export function leaseClock(ctx: Pick<PushContext, 'clock'>): LeaseOptions {
  return { now: () => ctx.clock.now(), sleep: (ms) => ctx.clock.sleep(ms) };
}

/**
 * The `updateManifest` options of every push write: the push's clock, the lease on it (tuned by `lease`), and
 * conflicts, lease waits and lost leases reported as `push.*` events.
 */
export function manifestUpdateOptions(
  ctx: Pick<PushContext, 'clock' | 'onEvent'>,
  lease?: LeaseOptions,
): UpdateManifestOptions {
  return {
    now: () => new Date(ctx.clock.now()),
    lease: { ...leaseClock(ctx), ...lease },
    onConflict: (attempt) =>
      ctx.onEvent({
        level: 'warn',
        type: 'push.conflict',
        message: `the manifest changed while writing (attempt ${attempt}); re-reading and re-applying`,
      }),
    onEvent: (event) =>
      ctx.onEvent({
        level: event.type === 'lease-wait' ? 'info' : 'warn',
        type: `push.${event.type}`,
        message: event.message,
      }),
  };
}

/**
 * Applies a service change to the bucket's manifest with compare-and-swap: read with its ETag, verify it (it is
 * what the change builds on), archive the current version, write the new one, signed with `signing.secretKey`,
 * only if nobody wrote in between; on a conflict, re-read and re-apply the change (bounded), so concurrent
 * pushes of different services both land and none is lost. On a bucket that `push init` found not to enforce
 * conditional writes, the same happens under a lease (see `updateManifest`; `options.lease` tunes it, on
 * `ctx.clock` by default). Refuses (`MANIFEST_STALE`, nothing written) to build on a current manifest that was put
 * back over a newer one (see `checkNotPutBack`).
 */
export async function writeServiceChange(
  ctx: PushContext,
  change: ServiceChange,
  options: { signing: ManifestSigning; lease?: LeaseOptions },
): Promise<ManifestWrite> {
  let previous: Manifest | undefined;
  let manifest: Manifest | undefined;
  const floor = await readArchiveFloor(ctx, options.signing);
  const before = await readBefore(ctx);
  const result = await updateManifest(
    ctx.manifests,
    (text) => {
      previous = currentManifest(text, ctx.manifests.url, ctx.secretsDir, options.signing);
      checkTextNotPutBack(floor, text, previous, ctx.manifests.url, before);
      manifest = nextManifest(previous, change, new Date(ctx.clock.now()), ctx.secretsDir);
      if (manifest === previous && text !== undefined) return text;
      return signManifest(renderManifestText(manifest), options.signing.secretKey);
    },
    manifestUpdateOptions(ctx, options.lease),
  );
  return {
    changed: result.changed,
    manifest: manifest as Manifest,
    previous,
    etag: result.etag,
    ...(result.archive ? { archive: result.archive } : {}),
    attempts: result.attempts,
    mode: result.mode,
  };
}
