import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { link, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';

/** Who holds a lock. */
export interface LockOwner {
  pid: number;
  /** The owner's start time as the kernel counts it (`/proc/<pid>/stat` field 22), to survive PID reuse. */
  startTime: string | null;
  acquiredAt: string;
}

/** A held lock. */
export interface LockHandle {
  release(): Promise<void>;
}

/** Mutual exclusion between deployer runs on one host (a timer tick and a manual `deployer apply`). */
export interface Lock {
  /** Takes the lock, or returns `undefined` ("busy") when a live owner holds it. Takes over a dead owner's lock. */
  acquire(): Promise<LockHandle | undefined>;
  /** The current owner, if any. */
  owner(): Promise<LockOwner | undefined>;
}

/** Options of {@link createFileLock}. */
export interface FileLockOptions {
  /** Our own PID (default `process.pid`). */
  pid?: number;
  /** Whether a process with this PID and start time is alive (default: /proc and signal 0). */
  isAlive?: (owner: LockOwner) => boolean;
  /** Current time as ISO text (default: now). */
  now?: () => string;
}

/**
 * A lock file created with `O_EXCL`. A lock left by a dead process (SIGKILL, power loss) is taken over under
 * a second, short-lived `O_EXCL` file (`<path>.takeover`), after checking that the dead owner's lock is still
 * the one in place, so two processes that find the same stale lock cannot both win.
 */
export function createFileLock(path: string, options: FileLockOptions = {}): Lock {
  const pid = options.pid ?? process.pid;
  const isAlive = options.isAlive ?? isProcessAlive;
  const now = options.now ?? (() => new Date().toISOString());
  const takeoverPath = `${path}.takeover`;

  const read = async (file = path): Promise<(LockOwner & { token?: string }) | undefined> => {
    try {
      return JSON.parse(await readFile(file, 'utf8'));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      // A torn or foreign file: owned by nobody alive, so it can be taken over.
      return { pid: -1, startTime: null, acquiredAt: 'unknown', token: 'torn' };
    }
  };
  /**
   * Creates `file` exclusively with `body`; false when it exists. Written to a temp file and hard-linked into
   * place, so nobody can ever read it empty (an empty lock would look torn, and be taken over).
   */
  const create = async (file: string, body: string): Promise<boolean> => {
    const temp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}`;
    await writeFile(temp, body, { mode: 0o600 });
    try {
      await link(temp, file);
      return true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw error;
    } finally {
      await rm(temp, { force: true });
    }
  };

  return {
    owner: async () => {
      const owner = await read();
      return owner && { pid: owner.pid, startTime: owner.startTime, acquiredAt: owner.acquiredAt };
    },
    async acquire() {
      await mkdir(dirname(path), { recursive: true });
      const token = randomBytes(8).toString('hex');
      const body = `${JSON.stringify({ pid, startTime: processStartTime(pid), acquiredAt: now(), token })}\n`;
      const handle: LockHandle = {
        async release() {
          if ((await read())?.token === token) await rm(path, { force: true });
        },
      };
      if (await create(path, body)) return handle;
      const stale = await read();
      if (stale === undefined) return (await create(path, body)) ? handle : undefined;
      if (isAlive(stale)) return undefined;
      if (!(await create(takeoverPath, body))) {
        await clearAbandonedTakeover(takeoverPath);
        return undefined;
      }
      try {
        if ((await read())?.token !== stale.token) return undefined;
        await rm(path, { force: true });
        return (await create(path, body)) ? handle : undefined;
      } finally {
        await rm(takeoverPath, { force: true });
      }
    },
  };
}

/** A takeover file older than this was left by a process that died in the middle of a takeover. */
const ABANDONED_TAKEOVER_MS = 60_000;

async function clearAbandonedTakeover(file: string): Promise<void> {
  try {
    const { mtimeMs } = await stat(file);
    if (Date.now() - mtimeMs > ABANDONED_TAKEOVER_MS) await rm(file, { force: true });
  } catch {
    // Gone already: nothing to clear.
  }
}

/** Reads a process's start time from /proc (Linux); `null` where /proc is unavailable. */
function processStartTime(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 22, counted after the parenthesised command name (which may itself contain spaces).
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

function isProcessAlive(owner: LockOwner): boolean {
  if (owner.pid <= 0) return false;
  try {
    process.kill(owner.pid, 0);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
  return owner.startTime === null || processStartTime(owner.pid) === owner.startTime;
}
