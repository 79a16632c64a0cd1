import { randomUUID } from 'node:crypto';
import { isDeployError } from '../errors.js';
import type { ObjectStore } from './object-store.js';

/** Which write conditions a store enforces. */
export interface ConditionalWriteSupport {
  /** A create with `If-None-Match: *` over an existing object is refused. */
  ifNoneMatch: boolean;
  /** A write with a stale `If-Match` ETag is refused. */
  ifMatch: boolean;
}

/**
 * Finds out whether a store really enforces conditional writes, by trying both on a scratch object
 * (`probes/conditional-write-<uuid>`, deleted afterwards). Compare-and-swap of the manifest is only as good as
 * this: AWS S3 enforces both; s3rver and some S3-compatible stores silently ignore them, and then two concurrent
 * pushes can lose an update. Costs about six requests.
 */
export async function probeConditionalWrites(objects: ObjectStore): Promise<ConditionalWriteSupport> {
  const key = `probes/conditional-write-${randomUUID()}`;
  const refused = (write: Promise<unknown>) =>
    write.then(
      () => false,
      (error: unknown) => {
        if (isDeployError(error, 'S3_CONFLICT')) return true;
        throw error;
      },
    );
  try {
    const { etag } = await objects.put(key, 'probe 1', { ifNoneMatch: '*' });
    const ifNoneMatch = await refused(objects.put(key, 'probe 2', { ifNoneMatch: '*' }));
    const current = (await objects.head(key))?.etag ?? etag;
    const stale =
      current === '"00000000000000000000000000000000"'
        ? '"11111111111111111111111111111111"'
        : '"00000000000000000000000000000000"';
    const ifMatch = await refused(objects.put(key, 'probe 3', { ifMatch: stale }));
    return { ifNoneMatch, ifMatch };
  } finally {
    await objects.delete(key);
  }
}
