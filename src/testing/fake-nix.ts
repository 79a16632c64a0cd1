import { createHash, createPublicKey } from 'node:crypto';
import { DeployError } from '../errors.js';
import type { ProfileGeneration, SymlinkEntry } from '../nix/generations.js';
import {
  checkAbsolutePath,
  checkGeneration,
  checkKeyName,
  checkStorePaths,
  checkSubstituter,
  checkTrustedKeys,
} from '../nix/input.js';
import type { PathInfo } from '../nix/path-info.js';
import { ed25519PrivateKey, parsePublicKey, publicKeyFromSecretKey } from '../nix/signing.js';
import { untrustedError } from '../nix/trust.js';
import type { Nix } from '../nix/types.js';

/** A store path as the fake knows it. */
export interface FakeStorePath {
  path: string;
  references: string[];
  narSize: number;
  signatures: string[];
}

/** A binary cache of the fake world: store path → entry. */
export type FakeBinaryCache = Map<string, FakeStorePath>;

/** One call a {@link FakeNix} received. */
export interface FakeNixCall {
  method: keyof Nix;
  args: unknown[];
}

/** Options of {@link createFakeNix}. */
export interface FakeNixOptions {
  /**
   * Binary caches by URL, shared between fakes that stand for different machines (a dev machine exporting to
   * `file:///cache`, a host copying from it). Default: a new, empty map.
   */
  caches?: Map<string, FakeBinaryCache>;
}

/** An in-memory {@link Nix} with the real one's contract, plus the handles a test needs. */
export interface FakeNix extends Nix {
  /** The paths in this fake's store. */
  readonly store: Map<string, FakeStorePath>;
  /** Binary caches by URL (see {@link FakeNixOptions.caches}); `exportToCache(dir)` writes `file://<dir>`. */
  readonly caches: Map<string, FakeBinaryCache>;
  /** Files the fake wrote (key files), by absolute path. */
  readonly files: Map<string, string>;
  /** Every call, in order. */
  readonly calls: FakeNixCall[];
  /** Called before each call is carried out; throw from it to make that call fail. */
  beforeCall: ((call: FakeNixCall) => void | Promise<void>) | undefined;
  /** Adds a path to the store as if it had been built: valid, unsigned. References must already be present. */
  addPath(path: string, options?: { references?: string[]; narSize?: number }): void;
}

/**
 * Creates a {@link FakeNix}. Signatures are modelled, not faked away: a key pair is a real ed25519 pair in Nix's
 * format, a store path's signature depends on the public key and the path, so a path signed by another key,
 * even one with the same name, is refused with `NIX_SIGNATURE` exactly like the real `nix copy` refuses it.
 * Unknown cache URLs fail with `NIX_UNREACHABLE`.
 */
export function createFakeNix(options: FakeNixOptions = {}): FakeNix {
  const store = new Map<string, FakeStorePath>();
  const caches = options.caches ?? new Map<string, FakeBinaryCache>();
  const files = new Map<string, string>();
  const calls: FakeNixCall[] = [];
  const profiles = new Map<string, { generations: Map<number, string>; current: number }>();
  const links = new Map<string, string>(); // GC-root symlink path → store path

  async function record(method: keyof Nix, args: unknown[]) {
    const call = { method, args };
    calls.push(call);
    await fake.beforeCall?.(call);
  }

  function closure(
    paths: readonly string[],
    from: Map<string, FakeStorePath>,
    where: string,
  ): FakeStorePath[] {
    const seen = new Map<string, FakeStorePath>();
    const visit = (path: string) => {
      if (seen.has(path)) return;
      const entry = from.get(path);
      if (!entry)
        throw new DeployError('NIX_NOT_FOUND', `${where}: the path is not in that store or cache: ${path}`);
      seen.set(path, entry);
      for (const ref of entry.references) visit(ref);
    };
    for (const path of paths) visit(path);
    return [...seen.values()];
  }

  function profileOf(profile: string) {
    let state = profiles.get(profile);
    if (!state) {
      state = { generations: new Map(), current: 0 };
      profiles.set(profile, state);
    }
    return state;
  }

  const fake: FakeNix = {
    store,
    caches,
    files,
    calls,
    beforeCall: undefined,

    addPath(path, add = {}) {
      checkStorePaths([path]);
      for (const ref of add.references ?? []) {
        if (!store.has(ref) && ref !== path)
          throw new Error(`fake nix: reference ${ref} of ${path} is not in the store`);
      }
      store.set(path, {
        path,
        references: add.references ?? [],
        narSize: add.narSize ?? 1024,
        signatures: [],
      });
    },

    async copyFrom(substituter, paths, copy) {
      checkSubstituter(substituter);
      checkStorePaths(paths);
      const requireSigs = copy.requireSignatures !== false;
      if (requireSigs || copy.trustedPublicKeys.length) checkTrustedKeys(copy.trustedPublicKeys);
      await record('copyFrom', [substituter, [...paths], copy]);
      const where = `nix copy --from ${substituter}`;
      const cache = caches.get(substituter);
      // Like `nix copy`, which reads the requested paths' closure from the cache even when they are present.
      if (!cache) {
        throw new DeployError(
          'NIX_UNREACHABLE',
          `${where}: the binary cache could not be reached (fake: no such cache)`,
        );
      }
      const wanted = closure(paths, cache, where).filter((entry) => !store.has(entry.path));
      // All checked before any is added, so a refused closure leaves nothing behind.
      for (const entry of wanted) {
        if (requireSigs && !signedByAny(entry, entry.signatures, copy.trustedPublicKeys)) {
          throw new DeployError(
            'NIX_SIGNATURE',
            `${where}: signature check failed: the path lacks a valid signature by any of the trusted public keys: ${entry.path}`,
          );
        }
      }
      for (const entry of wanted) store.set(entry.path, structuredClone(entry));
      if (!requireSigs) return;
      // As the real adapter: the top-level paths, fetched or already present, each need a trusted signature,
      // from this store or from the cache's entry for the same content.
      const refused = paths.filter((path) => {
        const entry = store.get(path) as FakeStorePath;
        if (signedByAny(entry, entry.signatures, copy.trustedPublicKeys)) return false;
        const offered = cache.get(path);
        return !offered || !signedByAny(entry, offered.signatures, copy.trustedPublicKeys);
      });
      if (refused.length)
        throw untrustedError(refused, copy.trustedPublicKeys.map(parsePublicKey), substituter);
    },

    async pathInfo(paths, query = {}) {
      checkStorePaths(paths);
      await record('pathInfo', [[...paths], query]);
      const valid = paths.filter((path) => store.has(path));
      const entries = query.closure
        ? closure(valid, store, 'nix path-info')
        : valid.map((p) => store.get(p) as FakeStorePath);
      return entries.map(
        (entry): PathInfo => ({
          path: entry.path,
          narHash: `sha256-${createHash('sha256').update(entry.path).digest('base64')}`,
          narSize: entry.narSize,
          references: [...entry.references],
          signatures: [...entry.signatures],
        }),
      );
    },

    async generateKey(name, secretKeyFile, publicKeyFile) {
      checkKeyName(name);
      checkAbsolutePath(secretKeyFile, 'secretKeyFile');
      checkAbsolutePath(publicKeyFile, 'publicKeyFile');
      await record('generateKey', [name, secretKeyFile, publicKeyFile]);
      // A real ed25519 key pair in Nix's format (deterministic for a test's repeatability), so what the key signs
      // besides closures (manifests) verifies as with a key from nix-store --generate-binary-cache-key.
      const seed = createHash('sha256').update(`${name}\0${secretKeyFile}\0${files.size}`).digest();
      const half = createPublicKey(ed25519PrivateKey(seed))
        .export({ format: 'der', type: 'spki' })
        .subarray(-32);
      const secret = `${name}:${Buffer.concat([seed, half]).toString('base64')}`;
      const publicKey = publicKeyFromSecretKey(secret);
      files.set(secretKeyFile, secret);
      files.set(publicKeyFile, publicKey);
      return publicKey;
    },

    async sign(paths, secretKeyFile) {
      checkStorePaths(paths);
      checkAbsolutePath(secretKeyFile, 'secretKeyFile');
      await record('sign', [[...paths], secretKeyFile]);
      const secret = files.get(secretKeyFile);
      if (!secret) {
        throw new DeployError(
          'NIX_KEY',
          `signing with ${secretKeyFile}: the signing key file is missing (fake)`,
        );
      }
      const publicKey = publicKeyFromSecretKey(secret);
      for (const entry of closure(paths, store, 'nix store sign')) {
        const signature = signatureFor(publicKey, entry);
        if (!entry.signatures.includes(signature)) entry.signatures.push(signature);
      }
    },

    async exportToCache(paths, cacheDir, exportOptions = {}) {
      checkStorePaths(paths);
      checkAbsolutePath(cacheDir, 'cacheDir');
      await record('exportToCache', [[...paths], cacheDir, exportOptions]);
      const url = `file://${cacheDir}`;
      const cache = caches.get(url) ?? new Map<string, FakeStorePath>();
      caches.set(url, cache);
      for (const entry of closure(paths, store, 'nix copy --to')) {
        if (!cache.has(entry.path)) cache.set(entry.path, structuredClone(entry)); // present paths are skipped
      }
    },

    async setProfile(profile, storePath) {
      checkAbsolutePath(profile, 'profile');
      checkStorePaths([storePath]);
      await record('setProfile', [profile, storePath]);
      if (!store.has(storePath)) {
        throw new DeployError(
          'NIX_NOT_FOUND',
          `setting profile ${profile}: the path is not in that store or cache: ${storePath}`,
        );
      }
      const state = profileOf(profile);
      const newest = Math.max(0, ...state.generations.keys());
      if (state.generations.get(newest) === storePath) {
        state.current = newest;
        return;
      }
      state.generations.set(newest + 1, storePath);
      state.current = newest + 1;
    },

    async moveProfile(from, to) {
      checkAbsolutePath(from, 'from');
      checkAbsolutePath(to, 'to');
      await record('moveProfile', [from, to]);
      const old = profiles.get(from);
      if (!old) return;
      const target = profiles.get(to);
      for (const [number, storePath] of old.generations) {
        const there = target?.generations.get(number);
        if (there !== undefined && there !== storePath) {
          throw new DeployError(
            'NIX_PROFILE',
            `cannot move profile ${from} to ${to}: generation ${number} is ${storePath} in the old place and ${there} in the new one`,
          );
        }
      }
      const moved = profileOf(to);
      for (const [number, storePath] of old.generations) moved.generations.set(number, storePath);
      // An existing new profile is the one in use: its current generation stays.
      if (!target?.current && old.generations.has(old.current)) moved.current = old.current;
      profiles.delete(from);
    },

    async switchGeneration(profile, generation) {
      checkAbsolutePath(profile, 'profile');
      checkGeneration(generation);
      await record('switchGeneration', [profile, generation]);
      const state = profiles.get(profile);
      if (!state?.generations.has(generation)) {
        throw new DeployError(
          'NIX_COMMAND',
          `switching ${profile}: profile version ${generation} does not exist`,
        );
      }
      state.current = generation;
    },

    async listGenerations(profile) {
      checkAbsolutePath(profile, 'profile');
      await record('listGenerations', [profile]);
      const state = profiles.get(profile);
      if (!state) return [];
      return [...state.generations]
        .sort(([a], [b]) => a - b)
        .map(
          ([number, storePath]): ProfileGeneration => ({
            number,
            storePath,
            current: number === state.current,
          }),
        );
    },

    async deleteGenerations(profile, generations) {
      checkAbsolutePath(profile, 'profile');
      for (const generation of generations) checkGeneration(generation);
      if (generations.length === 0) return;
      await record('deleteGenerations', [profile, [...generations]]);
      const state = profiles.get(profile);
      if (state && generations.includes(state.current)) {
        throw new DeployError(
          'NIX_COMMAND',
          `deleting generations of ${profile}: cannot delete current version of profile`,
        );
      }
      for (const generation of generations) state?.generations.delete(generation);
    },

    async addGcRoot(link, storePath) {
      checkAbsolutePath(link, 'link');
      checkStorePaths([storePath]);
      await record('addGcRoot', [link, storePath]);
      if (!store.has(storePath)) {
        throw new DeployError(
          'NIX_NOT_FOUND',
          `adding GC root ${link}: the path is not in that store or cache: ${storePath}`,
        );
      }
      links.set(link, storePath);
    },

    async removeGcRoot(link) {
      checkAbsolutePath(link, 'link');
      await record('removeGcRoot', [link]);
      links.delete(link);
    },

    async listGcRoots(dir) {
      checkAbsolutePath(dir, 'dir');
      await record('listGcRoots', [dir]);
      const entries: SymlinkEntry[] = [];
      for (const [link, target] of links) {
        if (link.slice(0, link.lastIndexOf('/')) === dir)
          entries.push({ name: link.slice(dir.length + 1), target });
      }
      return entries;
    },
  };
  return fake;
}

/**
 * The fake signature of a store path by the key pair whose public half is `publicKey`. Like a real one it covers
 * the content (size and references) as well as the path: another build of the same path does not inherit it.
 */
function signatureFor(publicKey: string, entry: FakeStorePath): string {
  const { name } = parsePublicKey(publicKey);
  const content = `${entry.path}\0${entry.narSize}\0${[...entry.references].sort().join(',')}`;
  return `${name}:${createHash('sha512').update(`${publicKey}\0${content}`).digest('base64')}`;
}

/** True when `signatures` hold a fake signature of `entry` by one of `keys`. */
function signedByAny(entry: FakeStorePath, signatures: readonly string[], keys: readonly string[]): boolean {
  return keys.some((key) => signatures.includes(signatureFor(key, entry)));
}
