import { DeployError, isDeployError } from '../errors.js';
import { createShell } from '../shell/shell.js';
import type { CommandResult, Shell } from '../shell/types.js';
import { parseGenerationLinks, parseSymlinkListing } from './generations.js';
import {
  checkAbsolutePath,
  checkGeneration,
  checkKeyName,
  checkStorePaths,
  checkSubstituter,
  checkTrustedKeys,
} from './input.js';
import { nixError } from './nix-error.js';
import { type PathInfo, parsePathInfoJson } from './path-info.js';
import { planProfileMove } from './profile-move.js';
import { parsePublicKey } from './signing.js';
import { untrustedError, untrustedPaths } from './trust.js';
import type { Nix } from './types.js';

/** Options of {@link createNix}. */
export interface NixOptions {
  /** Runs the programs. Default: {@link createShell} (use its `prefix` to act inside another host). */
  shell?: Shell;
  /**
   * The store to act on (`--store`), e.g. a chroot store `/tmp/x` in tests. Default: the system store
   * (the nix-daemon on NixOS).
   */
  store?: string;
  /** Extra environment for every command, e.g. `NIX_CONFIG`. */
  env?: Record<string, string>;
  /** Kill any one command after this long. Default: none (a large closure may take a while). */
  timeoutMs?: number;
}

/**
 * The real {@link Nix}: `nix`, `nix-env` and `nix-store` run through a {@link Shell}, one argument per value.
 * Symlinks (profiles, GC roots) are read with `find` through the same shell, so a prefixed shell (nsenter)
 * sees the same filesystem as Nix does.
 */
export function createNix(options: NixOptions = {}): Nix {
  const shell = options.shell ?? createShell();
  const storeArgs = options.store === undefined ? [] : ['--store', options.store];
  if (options.store !== undefined) checkAbsolutePath(options.store, 'store');
  const nixArgs = ['--extra-experimental-features', 'nix-command', ...storeArgs];

  async function run(context: string, command: string, args: string[]): Promise<CommandResult> {
    const result = await shell.run(command, args, {
      ...(options.env ? { env: options.env } : {}),
      ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
    });
    if (result.exitCode !== 0) throw nixError(context, result, command);
    return result;
  }

  async function listLinks(dir: string) {
    const result = await shell.run(
      'find',
      [dir, '-mindepth', '1', '-maxdepth', '1', '-type', 'l', '-printf', '%f\\0%l\\0'],
      {
        ...(options.env ? { env: options.env } : {}),
      },
    );
    if (result.exitCode !== 0) {
      if (/No such file or directory/.test(result.stderr)) return [];
      throw nixError(`listing symlinks in ${dir}`, result, 'find');
    }
    return parseSymlinkListing(result.stdout);
  }

  async function ensureDir(dir: string) {
    const result = await shell.run('mkdir', ['-p', '--', dir], options.env ? { env: options.env } : {});
    if (result.exitCode !== 0) throw nixError(`creating ${dir}`, result, 'mkdir');
  }

  const nix: Nix = {
    async copyFrom(substituter, paths, copy) {
      checkSubstituter(substituter);
      checkStorePaths(paths);
      const requireSigs = copy.requireSignatures !== false;
      if (requireSigs || copy.trustedPublicKeys.length) checkTrustedKeys(copy.trustedPublicKeys);
      const fresh = ['--option', 'narinfo-cache-negative-ttl', '0'];
      await run(`nix copy --from ${substituter} ${paths.join(' ')}`, 'nix', [
        ...nixArgs,
        'copy',
        '--from',
        substituter,
        // Exactly these keys, signatures required whatever nix.conf says, and no cached "not in cache"
        // answers: a path pushed a minute ago must be found now.
        '--option',
        'trusted-public-keys',
        copy.trustedPublicKeys.join(' '),
        '--option',
        'require-sigs',
        String(requireSigs),
        ...fresh,
        ...paths,
      ]);
      if (!requireSigs) return;
      // `nix copy` skipped the paths that were valid already: check the top-level ones here (see trust.ts).
      const trusted = copy.trustedPublicKeys.map(parsePublicKey);
      const local = await nix.pathInfo(paths);
      const absent = paths.filter((path) => !local.some((info) => info.path === path));
      if (absent.length) {
        throw new DeployError(
          'NIX_NOT_FOUND',
          `nix copy --from ${substituter}: expected ${absent.join(', ')} in the store after copying, found ${absent.length === 1 ? 'it' : 'them'} missing`,
        );
      }
      const unvouched = untrustedPaths(local, new Map(), trusted);
      if (unvouched.length === 0) return;
      // The store cannot vouch for these; the cache may hold a trusted signature of the same content (a path
      // built here and also pushed). Its narinfo counts only for a signature over this store's own NAR hash.
      const context = `nix path-info --store ${substituter} ${unvouched.join(' ')}`;
      let cached: PathInfo[];
      try {
        const result = await run(context, 'nix', [
          '--extra-experimental-features',
          'nix-command',
          'path-info',
          '--json',
          '--store',
          substituter,
          ...fresh,
          '--option',
          'narinfo-cache-positive-ttl',
          '0',
          ...unvouched,
        ]);
        cached = parsePathInfoJson(result.stdout);
      } catch (error) {
        if (!isDeployError(error)) throw error;
        throw untrustedError(
          unvouched,
          trusted,
          substituter,
          `the cache could not be asked: ${error.message}`,
        );
      }
      const refused = untrustedPaths(
        local.filter((info) => unvouched.includes(info.path)),
        new Map(cached.map((info) => [info.path, info.signatures])),
        trusted,
      );
      if (refused.length) throw untrustedError(refused, trusted, substituter);
    },

    async pathInfo(paths, query = {}) {
      checkStorePaths(paths);
      const context = `nix path-info ${paths.join(' ')}`;
      const flat = await run(context, 'nix', [...nixArgs, 'path-info', '--json', ...paths]);
      const valid = parsePathInfoJson(flat.stdout);
      if (!query.closure || valid.length === 0) return valid;
      // `-r` fails outright on an invalid path, so only ask for the closures of the valid ones.
      const closure = await run(context, 'nix', [
        ...nixArgs,
        'path-info',
        '--json',
        '-r',
        ...valid.map((i) => i.path),
      ]);
      return parsePathInfoJson(closure.stdout);
    },

    async generateKey(name, secretKeyFile, publicKeyFile) {
      checkKeyName(name);
      checkAbsolutePath(secretKeyFile, 'secretKeyFile');
      checkAbsolutePath(publicKeyFile, 'publicKeyFile');
      await run(`generating signing key ${name}`, 'nix-store', [
        '--generate-binary-cache-key',
        name,
        secretKeyFile,
        publicKeyFile,
      ]);
      const read = await run(`reading ${publicKeyFile}`, 'cat', ['--', publicKeyFile]);
      return read.stdout.trim();
    },

    async sign(paths, secretKeyFile) {
      checkStorePaths(paths);
      checkAbsolutePath(secretKeyFile, 'secretKeyFile');
      await run(`signing ${paths.join(' ')} with ${secretKeyFile}`, 'nix', [
        ...nixArgs,
        'store',
        'sign',
        '--recursive',
        '--key-file',
        secretKeyFile,
        ...paths,
      ]);
    },

    async exportToCache(paths, cacheDir, exportOptions = {}) {
      checkStorePaths(paths);
      checkAbsolutePath(cacheDir, 'cacheDir');
      const compression = exportOptions.compression ?? 'xz';
      if (!['xz', 'zstd', 'bzip2', 'none'].includes(compression)) {
        throw new DeployError(
          'NIX_INPUT',
          `compression: expected xz, zstd, bzip2 or none, found ${compression}`,
        );
      }
      await run(`exporting ${paths.join(' ')} to ${cacheDir}`, 'nix', [
        ...nixArgs,
        'copy',
        '--to',
        `file://${cacheDir}?compression=${compression}`,
        ...paths,
      ]);
    },

    async setProfile(profile, storePath) {
      checkAbsolutePath(profile, 'profile');
      checkStorePaths([storePath]);
      // nix-env needs the profile's directory to exist.
      await ensureDir(profile.slice(0, profile.lastIndexOf('/')) || '/');
      await run(`setting profile ${profile} to ${storePath}`, 'nix-env', [
        ...storeArgs,
        '-p',
        profile,
        '--set',
        storePath,
      ]);
    },

    async moveProfile(from, to) {
      checkAbsolutePath(from, 'from');
      checkAbsolutePath(to, 'to');
      const [fromDir, fromName] = splitPath(from);
      const [toDir, toName] = splitPath(to);
      const plan = planProfileMove(
        { name: fromName, entries: await listLinks(fromDir) },
        { name: toName, entries: await listLinks(toDir) },
      );
      if (plan.copy.length === 0 && plan.profile === undefined && plan.remove.length === 0) return;
      await ensureDir(toDir);
      const context = `moving profile ${from} to ${to}`;
      // Each link appears whole (symlink(2)), so a crash leaves links that are either there or not.
      for (const link of plan.copy) {
        await run(context, 'cp', [
          '--no-dereference',
          '--preserve=timestamps', // nix-env --list-generations shows a generation's time from its link
          '--',
          `${fromDir}/${link.from}`,
          `${toDir}/${link.to}`,
        ]);
      }
      if (plan.profile !== undefined) await run(context, 'ln', ['-s', '--', plan.profile, to]);
      if (plan.remove.length === 0) return;
      // Only symlinks are ever deleted, the profile first, so a crash midway leaves a state the plan resumes.
      const result = await shell.run(
        'find',
        [...plan.remove.map((name) => `${fromDir}/${name}`), '-maxdepth', '0', '-type', 'l', '-delete'],
        options.env ? { env: options.env } : {},
      );
      if (result.exitCode !== 0 && !/No such file or directory/.test(result.stderr)) {
        throw nixError(context, result, 'find');
      }
    },

    async switchGeneration(profile, generation) {
      checkAbsolutePath(profile, 'profile');
      checkGeneration(generation);
      await run(`switching profile ${profile} to generation ${generation}`, 'nix-env', [
        ...storeArgs,
        '-p',
        profile,
        '--switch-generation',
        String(generation),
      ]);
    },

    async listGenerations(profile) {
      checkAbsolutePath(profile, 'profile');
      const [dir, name] = splitPath(profile);
      return parseGenerationLinks(name, await listLinks(dir));
    },

    async deleteGenerations(profile, generations) {
      checkAbsolutePath(profile, 'profile');
      if (generations.length === 0) return;
      for (const generation of generations) checkGeneration(generation);
      await run(`deleting generations ${generations.join(' ')} of ${profile}`, 'nix-env', [
        ...storeArgs,
        '-p',
        profile,
        '--delete-generations',
        ...generations.map(String),
      ]);
    },

    async addGcRoot(link, storePath) {
      checkAbsolutePath(link, 'link');
      checkStorePaths([storePath]);
      await ensureDir(link.slice(0, link.lastIndexOf('/')) || '/');
      // --realise on a valid path builds nothing; it is how nix-store registers a root outside gcroots/.
      await run(`adding GC root ${link} -> ${storePath}`, 'nix-store', [
        ...storeArgs,
        '--realise',
        '--add-root',
        link,
        storePath,
      ]);
    },

    async removeGcRoot(link) {
      checkAbsolutePath(link, 'link');
      // Deletes `link` only if it is a symlink into the store: never a file or directory by mistake.
      const result = await shell.run(
        'find',
        [link, '-maxdepth', '0', '-type', 'l', '-lname', '/nix/store/*', '-delete'],
        options.env ? { env: options.env } : {},
      );
      if (result.exitCode !== 0 && !/No such file or directory/.test(result.stderr)) {
        throw nixError(`removing GC root ${link}`, result, 'find');
      }
    },

    async listGcRoots(dir) {
      checkAbsolutePath(dir, 'dir');
      return listLinks(dir);
    },
  };
  return nix;
}

/** An absolute path's directory and file name. */
function splitPath(path: string): [string, string] {
  const slash = path.lastIndexOf('/');
  return [path.slice(0, slash) || '/', path.slice(slash + 1)];
}
