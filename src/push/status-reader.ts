import { runPool } from '../runtime/pool.js';
import { sameEtag } from '../s3/etag.js';
import { type ManifestStore, STATUS_READ_CONCURRENCY } from '../s3/manifest-store.js';

/** Follows the status objects of some hosts, round after round (see {@link createStatusReader}). */
export interface StatusReader {
  /**
   * Each host's status as last written, by host name: `undefined` when the host never reported; `invalid` set
   * (and `status` undefined) when the object is not JSON, so it is shown as untrusted, never counted.
   */
  read(hosts: readonly string[]): Promise<Map<string, StatusRead | undefined>>;
}

/** One host's status object as read (see {@link StatusReader.read}). */
export interface StatusRead {
  status: unknown;
  invalid?: string;
}

/**
 * A listing page holds 1,000 keys and costs as much as about 12 reads (AWS S3: $0.005 per 1,000 LIST against
 * $0.0004 per 1,000 GET; Cloudflare R2's class A and B operations, the same ratio): with fewer hosts to follow
 * than this per page, reading each is cheaper.
 */
const READS_PER_LISTING = 12;
const PAGE = 1000;

/**
 * Reads hosts' status for `push --wait`, which asks again every few seconds until every host is there. Reading
 * each host's object every round costs a request per host per round (1,000 hosts polled every 2 s: 500 requests
 * a second, for as long as the slowest host takes). Instead, when that is cheaper, each round lists `status/`
 * (a request per 1,000 hosts, ETags included) and reads only the objects whose ETag changed since this reader
 * last read them: over a whole wait, about one read per host and status change. A few hosts are read directly.
 *
 * The ETag kept is the one the read returned, not the listing's: a listing ahead of a lagging read makes the
 * next round read again, never keeps an old status under a new ETag.
 */
export function createStatusReader(manifests: ManifestStore): StatusReader {
  const seen = new Map<string, { etag: string; read: StatusRead }>();
  let pages = 1; // of the last listing

  const readEach = async (hosts: readonly string[], result: Map<string, unknown>) =>
    runPool(hosts, STATUS_READ_CONCURRENCY, async (host) => {
      const record = await manifests.readStatus(host);
      const read: StatusRead | undefined = record
        ? { status: record.status, ...(record.invalid === undefined ? {} : { invalid: record.invalid }) }
        : undefined;
      if (record && read) seen.set(host, { etag: record.etag, read });
      else seen.delete(host);
      result.set(host, read);
    });

  return {
    async read(hosts) {
      const result = new Map<string, StatusRead | undefined>();
      if (hosts.length <= READS_PER_LISTING * pages) {
        await readEach(hosts, result);
        return result;
      }
      const listed = await manifests.listStatusObjects();
      pages = Math.max(1, Math.ceil(listed.length / PAGE));
      const byHost = new Map(listed.map((object) => [object.host, object]));
      const changed: string[] = [];
      for (const host of hosts) {
        const object = byHost.get(host);
        const known = seen.get(host);
        if (!object) {
          seen.delete(host);
          result.set(host, undefined);
        } else if (object.etag !== undefined && known && sameEtag(object.etag, known.etag))
          result.set(host, known.read);
        else changed.push(host);
      }
      await readEach(changed, result);
      return result;
    },
  };
}
