import { readFile } from 'node:fs/promises';
import { DeployError } from '../errors.js';
import { writeFileAtomic } from '../runtime/atomic-write.js';
import { type DeployerState, parseState, type StateStore } from './state.js';

/**
 * A {@link StateStore} in one JSON file, written as temp file + fsync + rename + fsync of the directory, so a
 * power cut leaves the old state or the new one, never a torn file. A missing file is no state yet; a file that
 * cannot be read is `STATE_UNREADABLE`, one that does not parse `STATE_INVALID`: never silently replaced.
 */
export function createFileStateStore(path: string): StateStore {
  return {
    async load() {
      let body: string;
      try {
        body = await readFile(path, 'utf8');
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        // Not an input the user named (exit 2) but the host's truth: stop as for a damaged state (exit 1).
        throw new DeployError(
          'STATE_UNREADABLE',
          `cannot read state ${path}: ${(error as Error).message}; nothing done (fix the file or its permissions, or move it aside to start from an empty state)`,
          { cause: error },
        );
      }
      return parseState(body, path);
    },
    async save(state: DeployerState) {
      await writeFileAtomic(path, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600, dirMode: 0o700 });
    },
  };
}
