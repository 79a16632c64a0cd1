export {
  createFakeNix,
  type FakeBinaryCache,
  type FakeNix,
  type FakeNixCall,
  type FakeNixOptions,
  type FakeStorePath,
} from './fake-nix.js';
export { createFakeShell, type FakeShell, type ShellCall, type ShellScript } from './fake-shell.js';
export { createMemoryManifestStore, type MemoryManifestStore } from './memory-manifest-store.js';
export {
  createMemoryObjectStore,
  type MemoryObject,
  type MemoryObjectStore,
  type MemoryObjectStoreOptions,
} from './memory-object-store.js';
