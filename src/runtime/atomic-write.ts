import { randomBytes } from 'node:crypto';
import { chmod, mkdir, open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/** Options of {@link writeFileAtomic} and {@link replaceFileAtomic}. */
export interface AtomicWriteOptions {
  /** Mode of the new file, set exactly (not narrowed by the umask). Default: 0o666 less the umask. */
  mode?: number;
  /** Mode of parent directories created on the way (`mkdir -p`). Default: 0o777 less the umask. */
  dirMode?: number;
}

/**
 * Replaces `path` atomically with what `write(temp)` puts in a temporary file: the temporary file is created in
 * the same directory (a rename across file systems is not atomic), written, fsynced, given its mode, renamed
 * over `path`, and the directory is fsynced so the rename itself survives a power cut. A reader sees the old
 * content or the new, never a mix; after a crash at any point the file is old or new, never torn. On failure
 * the temporary file is removed and the error (from `node:fs`, untouched) is thrown: callers name the file.
 *
 * Temporary files start with a dot (`.<name>.<pid>-<random>.tmp`), so listings that skip dot files never see
 * one.
 */
export async function replaceFileAtomic(
  path: string,
  write: (temp: string) => Promise<void>,
  options: AtomicWriteOptions = {},
): Promise<void> {
  const dir = dirname(path);
  await mkdir(dir, { recursive: true, ...(options.dirMode === undefined ? {} : { mode: options.dirMode }) });
  const temp = join(dir, `.${basename(path)}.${process.pid}-${randomBytes(6).toString('hex')}.tmp`);
  try {
    await write(temp);
    const file = await open(temp, 'r');
    try {
      await file.sync();
    } finally {
      await file.close();
    }
    if (options.mode !== undefined) await chmod(temp, options.mode);
    await rename(temp, path);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
  await syncDirectory(dir);
}

/** {@link replaceFileAtomic} with the content given: the common case (state, units, status, metrics). */
export async function writeFileAtomic(
  path: string,
  data: string | Uint8Array,
  options: AtomicWriteOptions = {},
): Promise<void> {
  await replaceFileAtomic(
    path,
    async (temp) => {
      // `wx`: a temporary name that somehow exists is never followed or reused.
      const file = await open(temp, 'wx', options.mode ?? 0o666);
      try {
        await file.writeFile(data);
      } finally {
        await file.close();
      }
    },
    options,
  );
}

/** Makes a rename in `dir` durable: the directory entry is on disk once this returns. */
async function syncDirectory(dir: string): Promise<void> {
  const directory = await open(dir, 'r');
  try {
    await directory.sync();
  } finally {
    await directory.close();
  }
}
