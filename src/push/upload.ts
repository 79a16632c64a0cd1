import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeployError } from '../errors.js';
import { exportClosure } from '../nix/export.js';
import { publicKeyFromSecretKey } from '../nix/signing.js';
import { type CacheUploadEvent, uploadClosure } from '../s3/cache-upload.js';
import type { PushContext } from './context.js';

/** What {@link publishClosure} did. */
export interface PublishResult {
  /** False when there was nothing to upload (already in the cache). */
  uploaded: boolean;
  files: number;
  bytes: number;
}

/**
 * Makes a built closure available to the hosts: signs it with `keyFile`, exports it to a temporary local
 * binary cache and uploads what the bucket lacks (NARs before their narinfos). Without a key, or when the path
 * is not in this machine's store (built elsewhere: by CI, by the build tool), the closure must already be in the
 * cache; that is checked, so a deploy never names a path the hosts cannot pull. The key never leaves this
 * machine: only narinfos and NARs are read for upload.
 */
export async function publishClosure(
  ctx: PushContext,
  storePath: string,
  keyFile: string | undefined,
  onProgress?: (event: CacheUploadEvent) => void,
): Promise<PublishResult> {
  const cache = ctx.cache;
  if (!cache) return { uploaded: false, files: 0, bytes: 0 };
  const hash = storePath.slice('/nix/store/'.length, '/nix/store/'.length + 32);
  const local = keyFile !== undefined && (await ctx.nix.pathInfo([storePath])).length > 0;
  if (!keyFile || !local) {
    if (await cache.head(`${hash}.narinfo`)) return { uploaded: false, files: 0, bytes: 0 };
    throw new DeployError(
      'CACHE_MISSING',
      keyFile
        ? `${storePath} is neither in the binary cache ${cache.url} nor in this machine's Nix store (to sign and upload it)`
        : `${storePath} is not in the binary cache ${cache.url} and there is no signing key to upload it (--key-file or NIX_CACHE_KEY)`,
    );
  }
  const publicKey = publicKeyFromSecretKey((await readFile(keyFile, 'utf8')).trim());
  const dir = await mkdtemp(join(tmpdir(), 'omni-push-cache-'));
  try {
    ctx.onEvent({ level: 'info', type: 'push.sign', message: `signing and exporting ${storePath}` });
    await exportClosure(ctx.nix, { paths: [storePath], secretKeyFile: keyFile, cacheDir: dir });
    const result = await uploadClosure({
      cacheDir: dir,
      paths: [storePath],
      target: cache,
      trustedPublicKeys: [publicKey],
      ...(onProgress ? { onEvent: onProgress } : {}),
    });
    return { uploaded: result.files > 0, files: result.files, bytes: result.bytes };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
