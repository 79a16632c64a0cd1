import { describe, expect, it } from 'vitest';
import type { Lock } from '../../src/deployer/lock.js';

/** Two handles on one lock, as two deployer processes have, and a way to make the holder "die". */
export interface LockPair {
  first: Lock;
  second: Lock;
  /** Leaves the lock held by a process that no longer exists. */
  abandon(): Promise<void>;
}

/** The contract of {@link Lock}, run against the real file lock and the fake. */
export function lockContract(name: string, make: () => LockPair): void {
  describe(`Lock contract: ${name}`, () => {
    it('excludes a second holder until release', async () => {
      const { first, second } = make();
      const held = await first.acquire();
      expect(held).toBeDefined();
      expect(await second.acquire()).toBeUndefined();
      expect(await second.owner()).toBeDefined();
      await held?.release();
      expect(await second.owner()).toBeUndefined();
      const next = await second.acquire();
      expect(next).toBeDefined();
      await next?.release();
    });

    it('hands a dead holder’s lock to the next process', async () => {
      const pair = make();
      expect(await pair.first.acquire()).toBeDefined();
      await pair.abandon();
      expect(await pair.second.acquire()).toBeDefined();
    });
  });
}
