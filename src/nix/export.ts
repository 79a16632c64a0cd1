import type { NarCompression, Nix } from './types.js';

/** Options of {@link exportClosure}. */
export interface ExportClosureOptions {
  /** Top-level store paths; their whole closures are signed and exported. */
  paths: readonly string[];
  /** The Nix secret key file to sign with. Read by Nix only; never copied into the cache. */
  secretKeyFile: string;
  /** An absolute directory that becomes (or already is) a `file://` binary cache. */
  cacheDir: string;
  /** Default `xz`: the bucket's `nar/*.nar.xz` (docs/design.md). */
  compression?: NarCompression;
}

/**
 * What `bild --cache` does before uploading: signs the closures of `paths`, then writes them to a local binary
 * cache directory (upload it with `uploadClosure` from `@omni/deploy/s3`). Signing comes first because
 * `nix copy` skips paths already in the cache and would never add a signature to them afterwards.
 */
export async function exportClosure(nix: Nix, options: ExportClosureOptions): Promise<void> {
  await nix.sign(options.paths, options.secretKeyFile);
  await nix.exportToCache(
    options.paths,
    options.cacheDir,
    options.compression === undefined ? {} : { compression: options.compression },
  );
}
