import { mkdir, open, readFile, rename } from 'node:fs/promises';
import { dirname } from 'node:path';
import { DeployError } from '../errors.js';
import { type DeployerState, parseState, type StateStore } from './state.js';

/**
 * A {@link StateStore} in one JSON file, written as temp file + fsync + rename + fsync of the directory, so a
 * power cut leaves the old state or the new one, never a torn file.
 */
export function createFileStateStore(path: string): StateStore {
  return {
    async load() {
      let body: string;
      try {
        body = await readFile(path, 'utf8');
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw new DeployError('IO', `cannot read state ${path}: ${(error as Error).message}`, {
          cause: error,
        });
      }
      return parseState(body, path);
    },
    async save(state: DeployerState) {
      const dir = dirname(path);
      await mkdir(dir, { recursive: true, mode: 0o700 });
      const temp = `${path}.${process.pid}.tmp`;
      const file = await open(temp, 'w', 0o600);
      try {
        await file.writeFile(`${JSON.stringify(state, null, 2)}\n`);
        await file.sync();
      } finally {
        await file.close();
      }
      await rename(temp, path);
      const directory = await open(dir, 'r');
      try {
        await directory.sync();
      } finally {
        await directory.close();
      }
    },
  };
}
