import type { DeployerState, StateStore } from '../deployer/state.js';

/** An in-memory {@link StateStore} that keeps every saved version, for asserting what a tick wrote. */
export interface MemoryStateStore extends StateStore {
  /** Every state saved, oldest first (deep copies). */
  readonly saves: DeployerState[];
  /** The current state (a deep copy), if any. */
  readonly current: DeployerState | undefined;
}

/** Creates a {@link MemoryStateStore}, optionally with an initial state. */
export function createMemoryStateStore(initial?: DeployerState): MemoryStateStore {
  const copy = <T>(value: T): T => structuredClone(value);
  let current = initial && copy(initial);
  const saves: DeployerState[] = [];
  return {
    saves,
    get current() {
      return current && copy(current);
    },
    async load() {
      return current && copy(current);
    },
    async save(state) {
      current = copy(state);
      saves.push(copy(state));
    },
  };
}
