import type { Lock, LockOwner } from '../deployer/lock.js';

/** An in-memory {@link Lock}; locks created from the same `createFakeLock()` exclude each other via `share()`. */
export interface FakeLock extends Lock {
  /** Another handle on the same lock, as a second deployer process would have. */
  share(pid?: number): FakeLock;
  /** Leaves the lock held by a process that no longer exists (what SIGKILL leaves behind). */
  abandon(): void;
}

/** Creates a {@link FakeLock}. */
export function createFakeLock(pid = 1): FakeLock {
  const cell: { owner?: LockOwner & { alive: boolean } } = {};
  const make = (me: number): FakeLock => ({
    async owner() {
      return (
        cell.owner && {
          pid: cell.owner.pid,
          startTime: cell.owner.startTime,
          acquiredAt: cell.owner.acquiredAt,
        }
      );
    },
    async acquire() {
      if (cell.owner?.alive) return undefined;
      const mine = { pid: me, startTime: null, acquiredAt: new Date(0).toISOString(), alive: true };
      cell.owner = mine;
      return {
        async release() {
          if (cell.owner === mine) cell.owner = undefined;
        },
      };
    },
    share: (other = me + 1) => make(other),
    abandon() {
      if (cell.owner) cell.owner.alive = false;
    },
  });
  return make(pid);
}
