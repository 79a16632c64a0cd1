import { createHash } from 'node:crypto';

/**
 * The ETag the local and in-memory stores give a body: its quoted MD5, as S3 computes it for a single-part
 * upload, so the same bytes have the same ETag in every store.
 */
export function computeEtag(body: string | Uint8Array): string {
  return `"${createHash('md5').update(body).digest('hex')}"`;
}
