import { parseHostStatus } from '../deployer/status.js';
import { isDeployError } from '../errors.js';
import { signManifest } from '../manifest/signature.js';
import { parseStorePath } from '../manifest/store-path.js';
import { parseManifest } from '../manifest/validate.js';
import { parseNarinfo } from '../nix/narinfo.js';
import { renderTable } from '../render-table.js';
import { BUCKET_MODE_KEY, type ProbeFinding, type WriteMode, writeBucketMode } from '../s3/bucket-mode.js';
import { NIX_CACHE_INFO } from '../s3/cache-plan.js';
import type { LeaseOptions } from '../s3/lease.js';
import { LEASE_DIR } from '../s3/manifest-store.js';
import { PROBE_PREFIX, probeBucket } from '../s3/probe.js';
import { updateManifest } from '../s3/update-manifest.js';
import type { PushContext } from './context.js';
import { leaseClock, renderManifestText } from './manifest-change.js';
import { type ManifestSigning, openPushedManifest } from './signing.js';

/** The binary cache metadata a fresh cache gets (what `nix copy --to` writes). */
export const DEFAULT_NIX_CACHE_INFO = 'StoreDir: /nix/store\nWantMassQuery: 1\nPriority: 40\n';

/** What {@link initBucket} did and found. */
export interface BucketInit {
  manifest: 'created' | 'exists';
  /** The manifest's URL. */
  manifestUrl: string;
  cacheInfo: 'created' | 'exists' | 'no cache';
  /** The bucket enforces conditional writes (the write mode is not `lease`). */
  conditionalWrites: boolean;
  /** The write mode found and recorded: every push reads it and writes this way. */
  mode: WriteMode;
  /** The mode recorded before: `none` on a first init, `damaged` when the old record did not parse. */
  previousMode: WriteMode | 'none' | 'damaged';
  /** What the probe found, check by check. */
  findings: ProbeFinding[];
  /** Where the mode is recorded. */
  recordUrl: string;
}

/**
 * `push init`: probes how the manifest's bucket treats conditional writes and records the write mode that
 * follows in `bucket-mode.json` beside the manifest (re-running re-probes: a provider may have changed), then
 * creates an empty manifest in that mode, signed with `options.signing.secretKey` (only if there is none: never
 * overwrites), and the cache's `nix-cache-info`. Print the result with {@link renderBucketInit}.
 * `options.lease` tunes the lease (lease mode).
 */
export async function initBucket(
  ctx: PushContext,
  options: { signing: ManifestSigning; lease?: LeaseOptions },
): Promise<BucketInit> {
  const objects = ctx.manifests.objects;
  let previousMode: BucketInit['previousMode'] = 'none';
  try {
    previousMode = (await ctx.manifests.readWriteMode())?.mode ?? 'none';
  } catch (error) {
    if (!isDeployError(error, 'S3_INVALID')) throw error;
    previousMode = 'damaged'; // replaced below by what the probe finds
  }
  const probe = await probeBucket(objects);
  await writeBucketMode(objects, {
    version: 1,
    mode: probe.mode,
    probedAt: new Date(ctx.clock.now()).toISOString(),
    findings: probe.findings,
  });
  const empty = { version: 1 as const, generation: new Date(ctx.clock.now()).toISOString(), services: [] };
  const signed = () => signManifest(renderManifestText(empty), options.signing.secretKey);
  const created = await updateManifest(ctx.manifests, (current) => current ?? signed(), {
    now: () => new Date(ctx.clock.now()),
    mode: probe.mode,
    lease: { ...leaseClock(ctx), ...options.lease },
  });
  let cacheInfo: BucketInit['cacheInfo'] = 'no cache';
  if (ctx.cache) {
    cacheInfo = (await ctx.cache.head(NIX_CACHE_INFO)) ? 'exists' : 'created';
    // Unconditional: Backblaze B2 refuses If-None-Match outright, and a racing init writes the same bytes.
    if (cacheInfo === 'created') await ctx.cache.put(NIX_CACHE_INFO, DEFAULT_NIX_CACHE_INFO);
  }
  return {
    manifest: created.changed ? 'created' : 'exists',
    manifestUrl: ctx.manifests.url,
    cacheInfo,
    conditionalWrites: probe.mode !== 'lease',
    mode: probe.mode,
    previousMode,
    findings: probe.findings,
    recordUrl: `${objects.url}${BUCKET_MODE_KEY}`,
  };
}

/** What each write mode means, for people. */
const MODE_MEANING: Record<WriteMode, string> = {
  conditional: 'compare-and-swap with If-Match / If-None-Match, ETags quoted',
  'conditional-unquoted':
    'compare-and-swap with If-Match / If-None-Match, ETags sent unquoted (this bucket refuses them quoted, as DigitalOcean Spaces does)',
  lease: `this bucket does not enforce conditional writes, so each push first takes a lease (${LEASE_DIR}/<manifest>.json: owner, expiry, read back before writing); concurrent pushes still never lose an update`,
};

/**
 * The lines `push init` prints: the manifest and `nix-cache-info`, each probe check (✓ as compare-and-swap
 * needs, ✗ not), and the write mode recorded.
 */
export function renderBucketInit(init: BucketInit): string {
  const manifest = init.manifest === 'created' ? 'created (empty)' : 'already there, left as it is';
  const changed =
    init.previousMode === 'none' || init.previousMode === init.mode
      ? ''
      : init.previousMode === 'damaged'
        ? ' (the old record was damaged and is replaced)'
        : ` (was ${init.previousMode})`;
  return [
    `manifest: ${manifest} at ${init.manifestUrl}`,
    `nix-cache-info: ${init.cacheInfo}`,
    `conditional writes, probed on a scratch object under ${PROBE_PREFIX}:`,
    ...init.findings.map((f) => `  ${f.ok ? '✓' : '✗'} ${f.message}`),
    `write mode: ${init.mode}${changed}: ${MODE_MEANING[init.mode]}`,
    `recorded in ${init.recordUrl}: every push reads it and writes this way`,
  ].join('\n');
}

/** What `push gc` found in the cache. */
export interface CacheGcPlan {
  /** The manifests whose closures are kept (current first, then archives). */
  manifests: string[];
  /** Store paths reachable from them (their whole closures). */
  reachable: string[];
  /** Cache objects to keep and to delete. */
  keep: string[];
  delete: { key: string; size: number }[];
  /** Closure roots whose narinfo is missing from the cache (kept nothing for them; worth knowing). */
  missing: string[];
}

/**
 * Plans a cache garbage collection: every `.narinfo` and NAR not reachable from the closures of the store paths
 * in the current manifest and the newest `keep - 1` archives is garbage. Only `<hash>.narinfo` at the cache root
 * and `nar/*` are ever candidates: `nix-cache-info`, the manifest, its archives and host status never are.
 */
export async function planCacheGc(ctx: PushContext, keep: number): Promise<CacheGcPlan> {
  const cache = ctx.cache;
  if (!cache) throw new Error('push gc needs a cache (--cache)');
  const texts: { id: string; text: string }[] = [];
  const current = await ctx.manifests.read();
  if (current.status === 'found') texts.push({ id: 'manifest.json', text: current.text });
  for (const entry of (await ctx.manifests.listArchives()).slice(0, Math.max(0, keep - 1))) {
    texts.push({ id: entry.id, text: (await ctx.manifests.readArchive(entry.id)).text });
  }
  const roots = new Set<string>();
  for (const { id, text } of texts) {
    // Unverified: keeping more than needed is safe, and a manifest that does not verify still names paths.
    const parsed = parseManifest(openPushedManifest(text, id, 'unverified').payload);
    // A manifest we cannot read still protects the paths it names: never delete what a rollback may need.
    const paths = parsed.ok
      ? parsed.manifest.services.map((s) => s.artifact.storePath)
      : [...text.matchAll(/\/nix\/store\/[0-9a-z]{32}-[A-Za-z0-9+._?=-]+/g)].map((m) => m[0]);
    if (!parsed.ok)
      ctx.onEvent({
        level: 'warn',
        type: 'gc.invalid-manifest',
        message: `${id} is not a valid manifest; keeping every store path it mentions`,
      });
    for (const path of paths) roots.add(path);
  }
  const keepKeys = new Set<string>([NIX_CACHE_INFO]);
  const reachable = new Set<string>();
  const missing: string[] = [];
  const queue = [...roots].map((p) => parseStorePath(p)).filter((p) => p !== undefined);
  while (queue.length) {
    const path = queue.pop() as NonNullable<(typeof queue)[number]>;
    if (reachable.has(path.path)) continue;
    reachable.add(path.path);
    const key = `${path.hash}.narinfo`;
    const got = await cache.get(key);
    if (got.status !== 'found') {
      if (roots.has(path.path)) missing.push(path.path);
      continue;
    }
    const info = parseNarinfo(got.text, `${cache.url}${key}`);
    keepKeys.add(key);
    keepKeys.add(info.url);
    for (const ref of info.references) {
      const dep = parseStorePath(`/nix/store/${ref}`);
      if (dep && !reachable.has(dep.path)) queue.push(dep);
    }
  }
  const candidates = [
    ...(await cache.list('', { recursive: false })).filter((o) => /^[0-9a-z]{32}\.narinfo$/.test(o.key)),
    ...(await cache.list('nar/')),
  ];
  return {
    manifests: texts.map((t) => t.id),
    reachable: [...reachable].sort(),
    keep: [...keepKeys].sort(),
    delete: candidates.filter((o) => !keepKeys.has(o.key)).map((o) => ({ key: o.key, size: o.size })),
    missing,
  };
}

/** Deletes a plan's garbage: narinfos first, so no narinfo ever points at a deleted NAR. */
export async function applyCacheGc(ctx: PushContext, plan: CacheGcPlan): Promise<number> {
  const cache = ctx.cache;
  if (!cache) return 0;
  const order = [...plan.delete].sort(
    (a, b) => Number(b.key.endsWith('.narinfo')) - Number(a.key.endsWith('.narinfo')),
  );
  for (const { key } of order) await cache.delete(key);
  return order.length;
}

/** One host of `push status`. */
export interface FleetRow {
  host: string;
  generation: string;
  lastTick: string;
  outcome: string;
  services: string;
}

/**
 * `push status`: every host's last report, from `status/*.json` (or the status location), with the services the
 * host refused (policy, pre-flight). A report is untrusted input (whoever may write there may write anything):
 * one that is not JSON, or names another host than the one it is stored for, is listed with outcome
 * `untrusted-status`; one that is not a valid host status with outcome `invalid-status`. Either way it says why,
 * and none of its services is counted.
 */
export async function readFleet(ctx: PushContext): Promise<FleetRow[]> {
  const statuses = await ctx.manifests.listStatuses();
  const notCounted = (host: string, outcome: string, why: string): FleetRow => ({
    host,
    generation: 'unknown',
    lastTick: 'unknown',
    outcome,
    services: `not counted: ${why}`,
  });
  return statuses.map(({ host, status, invalid }) => {
    if (invalid !== undefined) return notCounted(host, 'untrusted-status', invalid);
    const parsed = parseHostStatus(status ?? {});
    if (!parsed.ok) return notCounted(host, 'invalid-status', parsed.message);
    const s = parsed.status;
    const other = otherHost(host, s.host);
    if (other !== undefined) return notCounted(host, 'untrusted-status', other);
    const services = s.services ?? [];
    const unhealthy = services.filter((x) => x.health !== 'healthy').map((x) => x.name);
    // A deployer before the host policy reports no `refused`.
    const refused = [...new Set((s.refused ?? []).map((r) => r.service))];
    return {
      host,
      generation: s.generation ?? 'none',
      lastTick: s.lastTick?.at ?? 'never',
      outcome: s.lastTick?.outcome ?? 'unknown',
      services: `${services.length - unhealthy.length}/${services.length} healthy${unhealthy.length ? ` (not: ${unhealthy.join(', ')})` : ''}${refused.length ? `; refused: ${refused.join(', ')}` : ''}`,
    };
  });
}

/**
 * Why a report stored as `host`'s is not that host's (it names another), or `undefined`. Host names compare
 * case-insensitively, as DNS names do; the name is quoted as found (untrusted text).
 */
export function otherHost(host: string, named: string | undefined): string | undefined {
  if (named === undefined || named.toLowerCase() === host.toLowerCase()) return undefined;
  return `stored as ${host}'s status, but it reports host ${JSON.stringify(named.slice(0, 253))}`;
}

/** Renders `push status` as a table. */
export function renderFleet(rows: FleetRow[]): string {
  if (rows.length === 0) return 'no host has reported yet';
  return renderTable(
    ['HOST', 'GENERATION', 'LAST TICK', 'OUTCOME', 'SERVICES'],
    rows.map((r) => [r.host, r.generation, r.lastTick, r.outcome, r.services]),
  );
}
