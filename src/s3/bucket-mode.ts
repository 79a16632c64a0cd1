import * as v from 'valibot';
import { DeployError } from '../errors.js';
import { describeValue, formatPath } from '../manifest/describe.js';
import type { ObjectStore } from './object-store.js';

/**
 * How pushes write the manifest on a bucket, as `push init` found it:
 * - `conditional`: compare-and-swap with `If-Match: "<etag>"` and `If-None-Match: *` (AWS S3, R2, MinIO);
 * - `conditional-unquoted`: the same with the ETag sent unquoted, `If-Match: <etag>` (DigitalOcean Spaces);
 * - `lease`: the bucket does not enforce conditional writes (Garage, B2, s3rver): a push first takes a lease, a
 *   lock object checked by reading it back, and writes without conditions while it holds it.
 */
export type WriteMode = 'conditional' | 'conditional-unquoted' | 'lease';

/** Every {@link WriteMode}, in order of preference. */
export const WRITE_MODES: readonly WriteMode[] = ['conditional', 'conditional-unquoted', 'lease'];

/** Where `push init` records the write mode, at the manifest store's root (beside `manifest.json`). */
export const BUCKET_MODE_KEY = 'bucket-mode.json';

/** One check of a probe: what was tried, and whether the bucket did what a compare-and-swap needs. */
export interface ProbeFinding {
  /** Stable id, e.g. `create-existing`. */
  check: string;
  /** The bucket did what compare-and-swap needs. */
  ok: boolean;
  /** One line for people, e.g. `If-None-Match: * on an existing key: refused (412), as needed`. */
  message: string;
}

/** What `push init` records in {@link BUCKET_MODE_KEY}; every push reads it and writes in that mode. */
export interface BucketModeRecord {
  version: 1;
  mode: WriteMode;
  /** When the bucket was probed (ISO 8601). */
  probedAt: string;
  /** What the probe found, for people reading the bucket. */
  findings: ProbeFinding[];
}

/** The record is read on every push: anything bigger than this is not one. */
const MAX_RECORD_BYTES = 64 * 1024;
const line = v.pipe(v.string(), v.maxLength(1000));
const RecordSchema = v.object({
  version: v.literal(1),
  mode: v.picklist(WRITE_MODES),
  probedAt: v.pipe(v.string(), v.isoTimestamp()),
  findings: v.pipe(
    v.array(v.object({ check: v.pipe(v.string(), v.maxLength(100)), ok: v.boolean(), message: line })),
    v.maxLength(50),
  ),
});

/**
 * Parses a bucket-mode record. Anything else is refused (`S3_INVALID`, naming `where`, the field and what was
 * expected) rather than guessed at: a wrong mode could let two pushes lose an update.
 */
export function parseBucketMode(text: string, where: string): BucketModeRecord {
  const again = `; run "push init" to probe the bucket and write it again`;
  if (Buffer.byteLength(text) > MAX_RECORD_BYTES)
    throw new DeployError('S3_INVALID', `${where}: expected at most ${MAX_RECORD_BYTES} bytes${again}`);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (cause) {
    throw new DeployError('S3_INVALID', `${where}: expected JSON, found something else${again}`, { cause });
  }
  const expected = `expected {"version":1,"mode":${WRITE_MODES.map((m) => JSON.stringify(m)).join('|')},"probedAt":ISO time,"findings":[...]}`;
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new DeployError('S3_INVALID', `${where}: ${expected}, found ${describeValue(value)}${again}`);
  const parsed = v.safeParse(RecordSchema, value);
  if (!parsed.success) {
    const issues = parsed.issues.map((issue) => {
      const path = formatPath((issue.path ?? []).map((p) => p.key as string | number));
      return `${path === 'manifest' ? 'record' : path}: ${issue.message}`;
    });
    const version = (value as { version?: unknown }).version;
    const newer =
      version !== undefined && version !== 1
        ? ' (version 1 is the only one this push knows; a newer push may have written it)'
        : '';
    throw new DeployError(
      'S3_INVALID',
      `${where}: ${expected}, found ${issues.slice(0, 3).join('; ')}${newer}${again}`,
      { details: issues },
    );
  }
  return parsed.output as BucketModeRecord;
}

/** Renders a record as stored: pretty JSON with a final newline. */
export function renderBucketMode(record: BucketModeRecord): string {
  return `${JSON.stringify(record, null, 2)}\n`;
}

/** Reads the bucket's write mode, or `undefined` when `push init` never recorded one. */
export async function readBucketMode(objects: ObjectStore): Promise<BucketModeRecord | undefined> {
  const got = await objects.get(BUCKET_MODE_KEY);
  if (got.status !== 'found') return undefined;
  return parseBucketMode(got.text, `${objects.url}${BUCKET_MODE_KEY}`);
}

/** Records the bucket's write mode (unconditionally: `push init` is the one writer, and it re-probes). */
export async function writeBucketMode(objects: ObjectStore, record: BucketModeRecord): Promise<void> {
  await objects.put(BUCKET_MODE_KEY, renderBucketMode(record), { contentType: 'application/json' });
}
