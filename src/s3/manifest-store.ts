import { DeployError, isDeployError } from '../errors.js';
import { isHostname } from '../manifest/patterns.js';
import { mapPool } from '../runtime/pool.js';
import { ARCHIVE_DIR, archiveKey, formatArchiveId, parseArchiveId } from './archive-name.js';
import { type BucketModeRecord, readBucketMode } from './bucket-mode.js';
import { type EtagForm, formatEtag, sameEtag } from './etag.js';
import { checkObjectKey } from './keys.js';
import { acquireLease, type Lease, type LeaseOptions } from './lease.js';
import type { ObjectStore } from './object-store.js';

/** The result of {@link ManifestStore.read}. */
export type ManifestRead =
  | {
      status: 'found';
      text: string;
      etag: string;
      /** When the bucket stored it (its `Last-Modified`, to the second on S3), where the store says. */
      lastModified?: Date;
    }
  /** Unchanged since the ETag given as `ifNoneMatch`: no body was transferred, nothing to parse. */
  | { status: 'not-modified'; etag: string }
  | { status: 'missing' };

/** How a manifest write is conditioned: there is no unconditional write. */
export type ManifestWriteCondition =
  /**
   * Replace the manifest only if it still has this ETag (the one read). It is sent in `etagForm` first (default:
   * the form that last worked for this store, at first `quoted`); when the bucket refuses it although the
   * manifest still has that ETag (DigitalOcean Spaces refuses quoted ETags), it is sent once more in the other.
   */
  | { ifMatch: string; etagForm?: EtagForm }
  /** Create the manifest only if there is none yet. */
  | { ifNoneMatch: '*' }
  /**
   * Write while holding this lease (lease mode, for buckets that do not enforce conditions): the lease is read
   * back first, and a lease lost or about to expire is an `S3_CONFLICT` with `details.lease`; nothing is written.
   */
  | { lease: Lease };

/** An archived manifest. */
export interface ArchiveEntry {
  /** Compact UTC archive time, e.g. `20250115T123456.789Z`: what `readArchive` and `push rollback --to` take. */
  id: string;
  /** The object key, e.g. `manifests/manifest-20250115T123456.789Z.json`. */
  key: string;
  /** The archive time as ISO 8601, e.g. `2025-01-15T12:34:56.789Z`. */
  archivedAt: string;
  size?: number;
}

/** A host's status object as stored. */
export interface HostStatusRecord {
  host: string;
  /**
   * The parsed JSON the deployer wrote (validate it before use: it is outside this module's schema);
   * `undefined` when the object is not JSON (`invalid` says so).
   */
  status: unknown;
  /** Why the object could not be read as JSON: it is not a host's report, whoever wrote it. */
  invalid?: string;
  etag: string;
  lastModified?: Date;
}

/** A host's status object as listed, not read. */
export interface StatusObject {
  host: string;
  /** `status/<host>.json`. */
  key: string;
  size: number;
  /** As the listing gives it (absent on a directory store): unchanged ETag, unchanged status. */
  etag?: string;
  lastModified?: Date;
}

/**
 * The manifest, its history and the hosts' status, on any {@link ObjectStore}. Layout relative to the store's
 * root: `manifest.json`, `manifests/manifest-<id>.json` (archives), `status/<host>.json`.
 */
export interface ManifestStore {
  /** The manifest's URL, for messages. */
  readonly url: string;
  /** The objects underneath (also the place for anything else at the same root). */
  readonly objects: ObjectStore;
  /** Where host status objects live, for messages: `<root>status/` by default, or the status store's root. */
  readonly statusUrl: string;
  /**
   * Reads the manifest and its ETag. With `ifNoneMatch` set to the ETag of the last read, an unchanged manifest
   * costs one request and returns `not-modified` without a body.
   */
  read(options?: { ifNoneMatch?: string }): Promise<ManifestRead>;
  /** Writes the manifest with compare-and-swap; a concurrent change fails with `S3_CONFLICT`. */
  write(text: string, condition: ManifestWriteCondition): Promise<{ etag: string }>;
  /**
   * Archives `text` as `manifests/manifest-<now>.json`, never overwriting: if that name exists (two pushes in
   * one millisecond), the next millisecond is tried. Without a lease the name is taken with `If-None-Match: *`,
   * so on a store that ignores it (s3rver) an overwrite is not detected; with a `lease` (held, so no other push
   * archives now) a name is checked with `HEAD` and written without conditions.
   */
  archive(text: string, options: { now: Date; lease?: Lease }): Promise<ArchiveEntry>;
  /** The write mode `push init` recorded beside the manifest (`bucket-mode.json`), if any; `S3_INVALID` if damaged. */
  readWriteMode(): Promise<BucketModeRecord | undefined>;
  /** Takes the manifest's lease, `leases/<manifest stem>.json` (see `acquireLease`). */
  acquireLease(options?: LeaseOptions): Promise<Lease>;
  /** Archived manifests, newest first. Objects under `manifests/` with other names are ignored. */
  listArchives(): Promise<ArchiveEntry[]>;
  /** Reads an archive by id, file name or key (`S3_NOT_FOUND` if absent, `S3_INPUT` if not an archive name). */
  readArchive(id: string): Promise<{ entry: ArchiveEntry; text: string; etag: string; lastModified?: Date }>;
  /** Writes `status/<host>.json` (each host owns its own: unconditional). */
  writeStatus(host: string, status: unknown): Promise<{ etag: string }>;
  /**
   * Reads `status/<host>.json`, or `undefined` when the host never reported. An object that is not JSON is
   * returned with `invalid` set, never thrown: one bad object must not hide the other hosts.
   */
  readStatus(host: string): Promise<HostStatusRecord | undefined>;
  /**
   * Every host's status, in host name order (those that are not JSON with `invalid` set): one listing (a request per 1,000 hosts), then every object read,
   * {@link STATUS_READ_CONCURRENCY} at a time.
   */
  listStatuses(): Promise<HostStatusRecord[]>;
  /**
   * The status objects there are, from the listing alone (a request per 1,000 hosts, nothing read): with their
   * ETags, a reader that follows the fleet re-reads only the statuses that changed.
   */
  listStatusObjects(): Promise<StatusObject[]>;
}

/**
 * How many status objects {@link ManifestStore.listStatuses} reads at once: one after the other, 1,000 hosts cost
 * 1,000 round trips in a row; S3 serves thousands of reads per second per prefix.
 */
export const STATUS_READ_CONCURRENCY = 16;

/** Options of {@link createManifestStore}. */
export interface ManifestStoreOptions {
  /** The manifest's key at the store's root. Default `manifest.json`; archives are named after its stem. */
  manifestKey?: string;
  /**
   * Where host status objects live, as `<host>.json` at this store's root. Default: `status/` in the manifest's
   * store. Another bucket or prefix lets hosts write their status without write access beside the manifest.
   */
  status?: ObjectStore;
}

const STATUS_DIR = 'status';
/** Where the lock objects of lease mode live, one per manifest. */
export const LEASE_DIR = 'leases';
/** How many later milliseconds {@link ManifestStore.archive} tries when the name is taken. */
const ARCHIVE_NAME_ATTEMPTS = 1000;

/** Builds a {@link ManifestStore} on an object store. */
export function createManifestStore(objects: ObjectStore, options: ManifestStoreOptions = {}): ManifestStore {
  const manifestKey = checkObjectKey(options.manifestKey ?? 'manifest.json');
  if (manifestKey.includes('/') || !manifestKey.endsWith('.json')) {
    throw new DeployError(
      'S3_INPUT',
      `manifestKey: expected a file name ending in .json at the root, found ${JSON.stringify(manifestKey)}`,
    );
  }
  const stem = manifestKey.slice(0, -'.json'.length);
  const url = `${objects.url}${manifestKey}`;
  /** The `If-Match` form that last worked here: a bucket that wants one form wants it every time. */
  let etagForm: EtagForm = 'quoted';

  const entryOf = (id: string, date: Date, size?: number): ArchiveEntry => ({
    id,
    key: archiveKey(id, stem),
    archivedAt: date.toISOString(),
    ...(size === undefined ? {} : { size }),
  });

  const statusObjects = options.status ?? objects;
  const statusPrefix = options.status ? '' : `${STATUS_DIR}/`;
  const statusKey = (host: string) => {
    if (!isHostname(host))
      throw new DeployError(
        'S3_INPUT',
        `host: expected an RFC 1123 host name, found ${JSON.stringify(host)}`,
      );
    return `${statusPrefix}${host}.json`;
  };

  async function readStatus(host: string): Promise<HostStatusRecord | undefined> {
    const key = statusKey(host);
    const result = await statusObjects.get(key);
    if (result.status !== 'found') return undefined;
    let status: unknown;
    let invalid: string | undefined;
    try {
      status = JSON.parse(result.text);
    } catch {
      // Anyone who can write there can put anything: reported, never thrown, never shown (it is untrusted).
      invalid = `${statusObjects.url}${key}: expected JSON, found something else`;
    }
    return {
      host,
      status,
      ...(invalid === undefined ? {} : { invalid }),
      etag: result.etag,
      ...(result.lastModified ? { lastModified: result.lastModified } : {}),
    };
  }

  async function listStatusObjects(): Promise<StatusObject[]> {
    const found: StatusObject[] = [];
    for (const object of await statusObjects.list(statusPrefix, { recursive: false })) {
      const host = object.key.slice(statusPrefix.length, -'.json'.length);
      if (!object.key.endsWith('.json') || !isHostname(host)) continue;
      found.push({
        host,
        key: object.key,
        size: object.size,
        ...(object.etag === undefined ? {} : { etag: object.etag }),
        ...(object.lastModified ? { lastModified: object.lastModified } : {}),
      });
    }
    return found;
  }

  return {
    url,
    objects,
    statusUrl: `${statusObjects.url}${statusPrefix}`,

    async read(read = {}) {
      const result = await objects.get(
        manifestKey,
        read.ifNoneMatch ? { ifNoneMatch: read.ifNoneMatch } : {},
      );
      if (result.status === 'found') {
        return {
          status: 'found',
          text: result.text,
          etag: result.etag,
          ...(result.lastModified ? { lastModified: result.lastModified } : {}),
        };
      }
      return result;
    },

    async write(text, condition) {
      const contentType = 'application/json';
      if ('lease' in condition) {
        const state = await condition.lease.check();
        if (state !== 'held') {
          throw new DeployError(
            'S3_CONFLICT',
            `${url}: expected to hold the lease ${condition.lease.key} when writing, found it ${state === 'lost' ? 'taken over by another push' : 'about to expire'}; nothing was written`,
            { details: { lease: state } },
          );
        }
        return objects.put(manifestKey, text, { contentType });
      }
      if ('ifNoneMatch' in condition)
        return objects.put(manifestKey, text, { ifNoneMatch: '*', contentType });
      const { ifMatch } = condition;
      if (!ifMatch)
        throw new DeployError('S3_INPUT', `${url}: ifMatch: expected the ETag read, found an empty string`);
      const first = condition.etagForm ?? etagForm;
      try {
        return await objects.put(manifestKey, text, { ifMatch: formatEtag(ifMatch, first), contentType });
      } catch (error) {
        if (!isDeployError(error, 'S3_CONFLICT')) throw error;
        // Refused: changed by another writer, or the bucket wants the other form. Only the ETag tells which.
        const current = await objects.head(manifestKey);
        if (!current || !sameEtag(current.etag, ifMatch)) throw error;
        const other: EtagForm = first === 'quoted' ? 'unquoted' : 'quoted';
        const written = await objects.put(manifestKey, text, {
          ifMatch: formatEtag(ifMatch, other),
          contentType,
        });
        etagForm = other;
        return written;
      }
    },

    async archive(text, archive) {
      const start = archive.now.getTime();
      if (Number.isNaN(start)) throw new DeployError('S3_INPUT', 'archive: expected a valid date as now');
      for (let ms = 0; ms < ARCHIVE_NAME_ATTEMPTS; ms++) {
        const date = new Date(start + ms);
        const id = formatArchiveId(date);
        const key = archiveKey(id, stem);
        if (archive.lease) {
          if (await objects.head(key)) continue;
          await objects.put(key, text, { contentType: 'application/json' });
          return entryOf(id, date, Buffer.byteLength(text));
        }
        try {
          await objects.put(key, text, { ifNoneMatch: '*', contentType: 'application/json' });
          return entryOf(id, date, Buffer.byteLength(text));
        } catch (error) {
          if ((error as DeployError).code !== 'S3_CONFLICT') throw error;
        }
      }
      throw new DeployError(
        'S3_CONFLICT',
        `${objects.url}${ARCHIVE_DIR}/: every archive name for ${archive.now.toISOString()} and the next second is taken`,
      );
    },

    readWriteMode: () => readBucketMode(objects),

    acquireLease: (lease = {}) => acquireLease(objects, `${LEASE_DIR}/${stem}.json`, lease),

    async listArchives() {
      const entries: ArchiveEntry[] = [];
      for (const object of await objects.list(`${ARCHIVE_DIR}/${stem}-`)) {
        const parsed = parseArchiveId(object.key, stem);
        // manifests/manifest-x.json or manifests/other-stem-... are not archives of this manifest.
        if (parsed && object.key === archiveKey(parsed.id, stem))
          entries.push(entryOf(parsed.id, parsed.date, object.size));
      }
      return entries.sort((a, b) => (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));
    },

    async readArchive(id) {
      const parsed = parseArchiveId(id, stem);
      if (!parsed) {
        throw new DeployError(
          'S3_INPUT',
          `archive: expected an id like 20250115T123456.789Z (or ${stem}-<id>.json), found ${JSON.stringify(id.slice(0, 100))}`,
        );
      }
      const entry = entryOf(parsed.id, parsed.date);
      const result = await objects.get(entry.key);
      if (result.status !== 'found')
        throw new DeployError('S3_NOT_FOUND', `${objects.url}${entry.key}: no such archived manifest`);
      return {
        entry: { ...entry, size: Buffer.byteLength(result.text) },
        text: result.text,
        etag: result.etag,
        ...(result.lastModified ? { lastModified: result.lastModified } : {}),
      };
    },

    async writeStatus(host, status) {
      return statusObjects.put(statusKey(host), `${JSON.stringify(status, null, 2)}\n`, {
        contentType: 'application/json',
      });
    },

    readStatus,

    listStatusObjects,

    async listStatuses() {
      const listed = await listStatusObjects();
      const records = await mapPool(listed, STATUS_READ_CONCURRENCY, (object) => readStatus(object.host));
      return records.filter((record) => record !== undefined);
    },
  };
}
