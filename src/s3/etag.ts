import { createHash } from 'node:crypto';

/**
 * The ETag the local and in-memory stores give a body: its quoted MD5, as S3 computes it for a single-part
 * upload, so the same bytes have the same ETag in every store.
 */
export function computeEtag(body: string | Uint8Array): string {
  return `"${createHash('md5').update(body).digest('hex')}"`;
}

/**
 * How an ETag is written in `If-Match`: `quoted` as RFC 9110 has it and S3 returns it (`"abc"`), or `unquoted`
 * (`abc`), the only form DigitalOcean Spaces accepts on a conditional PUT.
 */
export type EtagForm = 'quoted' | 'unquoted';

/** An ETag without its surrounding double quotes, if it had them. */
export function unquoteEtag(etag: string): string {
  return etag.length >= 2 && etag.startsWith('"') && etag.endsWith('"') ? etag.slice(1, -1) : etag;
}

/** An ETag in the given form, whichever form it came in. */
export function formatEtag(etag: string, form: EtagForm): string {
  const bare = unquoteEtag(etag);
  return form === 'quoted' ? `"${bare}"` : bare;
}

/** True when two ETags name the same version, whether or not each is quoted. */
export function sameEtag(a: string, b: string): boolean {
  return unquoteEtag(a) === unquoteEtag(b);
}
