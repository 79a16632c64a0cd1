export { makeManifest, makeService, makeStorePath } from './builders.js';
export { createFakeCaddyAdmin, type FakeCaddyAdmin, type FakeCaddyAdminOptions } from './fake-caddy.js';
export { createFakeClock, type FakeClock } from './fake-clock.js';
export { busyConnection, createFakeConnections, type FakeConnections } from './fake-connections.js';
export {
  createFakeHostChecks,
  type FakeAccount,
  type FakeHostChecks,
  type FakeHostChecksInit,
} from './fake-host-checks.js';
export { createFakeLock, type FakeLock } from './fake-lock.js';
export {
  createFakeNix,
  type FakeBinaryCache,
  type FakeNix,
  type FakeNixCall,
  type FakeNixOptions,
  type FakeStorePath,
} from './fake-nix.js';
export { createFakeHealthProbe, type FakeHealthProbe } from './fake-probe.js';
export { createFakeShell, type FakeShell, type ShellCall, type ShellScript } from './fake-shell.js';
export {
  createFakeSystemd,
  type FakeOutcome,
  type FakeStart,
  type FakeSystemd,
  type FakeSystemdOptions,
} from './fake-systemd.js';
export {
  createFakeWorld,
  type FakeWorld,
  type FakeWorldOptions,
  type FakeWorldServiceSpec,
} from './fake-world.js';
export { createMemoryManifestStore, type MemoryManifestStore } from './memory-manifest-store.js';
export {
  type ConditionBehaviour,
  createMemoryObjectStore,
  type MemoryObject,
  type MemoryObjectStore,
  type MemoryObjectStoreOptions,
} from './memory-object-store.js';
export { createMemoryStateStore, type MemoryStateStore } from './memory-state-store.js';
