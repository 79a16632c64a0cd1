import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { isDeployError } from '../../src/errors.js';
import {
  createNix,
  parseNarinfo,
  pinServiceVersion,
  publicKeyFromSecretKey,
  serviceLayout,
  signatureFingerprint,
} from '../../src/nix/index.js';
import { createShell } from '../../src/shell/index.js';
import { createFakeNix, createFakeShell } from '../../src/testing/index.js';
import { storePath } from '../builders.js';
import { makeKeyPair } from '../support/local-cache.js';
import { buildClosures, NIX_ENV, requireNix } from '../support/real-nix.js';
import { nixContract } from './nix-contract.js';

const VERSIONS = ['1', '2', '3', '4', '5', '6', '7'];

nixContract('createNix (real nix-bin, chroot target store)', async () => {
  requireNix();
  const dir = mkdtempSync(join(tmpdir(), 'omni-nix-contract-'));
  const built = buildClosures('nixs3-contract', [...VERSIONS, 'unsigned', 'hostile-a', 'hostile-b']);
  const paths = built.slice(0, VERSIONS.length);
  const deps = paths.map((p) => {
    const refs = execFileSync('nix-store', ['-q', '--references', p], { encoding: 'utf8' })
      .trim()
      .split('\n');
    return refs.find((r) => r !== p) as string;
  });
  // The dev machine is a chroot store too, so signatures from earlier runs never leak into this one.
  execFileSync(
    'nix',
    [
      '--extra-experimental-features',
      'nix-command',
      'copy',
      '--no-check-sigs',
      '--to',
      `${dir}/source`,
      ...built,
    ],
    { env: { ...process.env, ...NIX_ENV }, stdio: 'pipe' },
  );
  return {
    source: createNix({ env: NIX_ENV, store: `${dir}/source` }),
    target: createNix({ env: NIX_ENV, store: `${dir}/store` }),
    versions: paths,
    deps,
    unsigned: built[VERSIONS.length] as string,
    hostile: built.slice(VERSIONS.length + 1),
    dir,
    readKeyFile: (path) => readFile(path, 'utf8'),
    async cleanup() {
      // A chroot store's files are read-only, as in /nix/store.
      execFileSync('chmod', ['-R', 'u+w', dir]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

nixContract('createFakeNix', async () => {
  const caches = new Map();
  const source = createFakeNix({ caches });
  const versions: string[] = [];
  const deps: string[] = [];
  for (const v of [...VERSIONS, 'unsigned', 'hostile-a', 'hostile-b']) {
    const dep = storePath(`dep-${v}`);
    const svc = storePath(`svc-${v}`);
    source.addPath(dep);
    source.addPath(svc, { references: [dep] });
    versions.push(svc);
    deps.push(dep);
  }
  return {
    source,
    target: createFakeNix({ caches }),
    versions: versions.slice(0, VERSIONS.length),
    deps: deps.slice(0, VERSIONS.length),
    unsigned: versions[VERSIONS.length] as string,
    hostile: versions.slice(VERSIONS.length + 1),
    dir: '/fake/scratch',
    readKeyFile: async (path) => source.files.get(path) ?? '',
    async cleanup() {},
  };
});

describe('createNix', () => {
  beforeAll(() => requireNix());

  it('passes every value as one argument and adds the nix-command feature itself', async () => {
    const shell = createFakeShell();
    const path = storePath('svc');
    // What `nix path-info --json` then says of the path: signed by the second trusted key.
    const signer = makeKeyPair('b');
    const info = { path, narHash: `sha256:${'0'.repeat(52)}`, narSize: 512, references: [] };
    const signature = signer.sign(signatureFingerprint({ storePath: path, ...info }));
    shell.on(() => ({ stdout: '[]' }));
    shell.on((call) =>
      call.args.includes('path-info')
        ? { stdout: JSON.stringify([{ ...info, signatures: [signature] }]) }
        : undefined,
    );
    const nix = createNix({ shell, store: '/tmp/x' });
    await nix.copyFrom('file:///tmp/cache', [path], {
      trustedPublicKeys: [`a:${'A'.repeat(43)}=`, signer.publicKey],
    });
    expect(shell.calls[0]?.command).toBe('nix');
    expect(shell.calls[0]?.args).toEqual([
      '--extra-experimental-features',
      'nix-command',
      '--store',
      '/tmp/x',
      'copy',
      '--from',
      'file:///tmp/cache',
      '--option',
      'trusted-public-keys',
      `a:${'A'.repeat(43)}= ${signer.publicKey}`,
      '--option',
      'require-sigs',
      'true',
      '--option',
      'narinfo-cache-negative-ttl',
      '0',
      path,
    ]);
    // Then the path's own signatures, in this store: the copy skips a path that is already valid.
    expect(shell.calls[1]?.args).toEqual([
      '--extra-experimental-features',
      'nix-command',
      '--store',
      '/tmp/x',
      'path-info',
      '--json',
      path,
    ]);
    expect(shell.calls).toHaveLength(2);
  });

  it('runs nothing for refused input', async () => {
    const shell = createFakeShell();
    const nix = createNix({ shell });
    const attempts = [
      nix.setProfile('/p/web', '/nix/store/x'),
      nix.removeGcRoot('relative/link'),
      nix.copyFrom('ftp://x', [storePath('a')], { trustedPublicKeys: [`a:${'A'.repeat(43)}=`] }),
      nix.exportToCache([storePath('a')], '/tmp/c', { compression: 'gzip; rm -rf /' as 'xz' }),
    ];
    for (const attempt of attempts) {
      expect(
        await attempt.then(
          () => 'ok',
          (e) => (isDeployError(e, 'NIX_INPUT') ? 'refused' : String(e)),
        ),
      ).toBe('refused');
    }
    expect(shell.calls).toEqual([]);
  });

  it('says which package to install when nix is missing', async () => {
    const nix = createNix({ shell: createShell({ env: { PATH: '/nonexistent' } }) });
    const error = await nix.pathInfo([storePath('a')]).catch((e: unknown) => e);
    expect(isDeployError(error, 'NIX_MISSING')).toBe(true);
    expect((error as Error).message).toMatch(/nix-bin/);
  });

  it('removes only symlinks into the store as GC roots, never a file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'omni-nix-rm-'));
    try {
      writeFileSync(join(dir, 'precious'), 'data');
      symlinkSync('/etc/hostname', join(dir, 'elsewhere'));
      const nix = createNix({ env: NIX_ENV });
      await nix.removeGcRoot(join(dir, 'precious'));
      await nix.removeGcRoot(join(dir, 'elsewhere'));
      expect(readFileSync(join(dir, 'precious'), 'utf8')).toBe('data');
      expect(existsSync(join(dir, 'elsewhere'))).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('real Nix store: retention and garbage collection', () => {
  it('collects pruned versions and keeps the rooted ones', async () => {
    requireNix();
    const dir = mkdtempSync(join(tmpdir(), 'omni-nix-gc-'));
    try {
      const versions = buildClosures('nixs3-gc', VERSIONS);
      const store = `${dir}/store`;
      // Install into a chroot store without signatures: this test is about roots, not trust.
      execFileSync(
        'nix',
        [
          '--extra-experimental-features',
          'nix-command',
          'copy',
          '--no-check-sigs',
          '--to',
          store,
          ...versions,
        ],
        {
          env: { ...process.env, ...NIX_ENV },
          stdio: 'pipe',
        },
      );
      const nix = createNix({ env: NIX_ENV, store });
      const layout = serviceLayout('api', { profilesDir: `${dir}/profiles`, gcrootsDir: `${dir}/gcroots` });
      for (const storePath of versions) await pinServiceVersion(nix, { layout, storePath, keep: 5 });
      execFileSync('nix-store', ['--store', store, '--gc'], {
        env: { ...process.env, ...NIX_ENV },
        stdio: 'pipe',
      });
      const valid = (await nix.pathInfo(versions)).map((i) => i.path);
      expect(valid.sort()).toEqual(versions.slice(2).sort());
      // The GC roots alone keep them: without the profile, they survive a collection.
      rmSync(`${dir}/profiles`, { recursive: true, force: true });
      execFileSync('nix-store', ['--store', store, '--gc'], {
        env: { ...process.env, ...NIX_ENV },
        stdio: 'pipe',
      });
      expect((await nix.pathInfo(versions)).map((i) => i.path).sort()).toEqual(versions.slice(2).sort());
    } finally {
      execFileSync('chmod', ['-R', 'u+w', dir]);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('real Nix: moving a profile of the earlier layout survives a kill at any step', () => {
  const MUTATING = (command: string, args: readonly string[]) =>
    command === 'cp' || command === 'ln' || (command === 'find' && args.includes('-delete'));

  it.each(['before', 'after'] as const)(
    'converges on the next run when killed %s each step, with nix-env seeing the same history',
    async (when) => {
      requireNix();
      const dir = mkdtempSync(join(tmpdir(), 'omni-nix-move-'));
      try {
        const versions = buildClosures('nixs3-move', ['1', '2', '3']);
        const store = `${dir}/store`;
        execFileSync(
          'nix',
          [
            '--extra-experimental-features',
            'nix-command',
            'copy',
            '--no-check-sigs',
            '--to',
            store,
            ...versions,
          ],
          { env: { ...process.env, ...NIX_ENV }, stdio: 'pipe' },
        );
        const nix = createNix({ env: NIX_ENV, store });
        const history = (profile: string) =>
          execFileSync('nix-env', ['--store', store, '-p', profile, '--list-generations'], {
            env: { ...process.env, ...NIX_ENV },
            encoding: 'utf8',
          });
        for (let kill = 1; ; kill++) {
          const layout = serviceLayout('web', {
            profilesDir: `${dir}/p${kill}`,
            gcrootsDir: `${dir}/r${kill}`,
          });
          const earlier = {
            service: 'web',
            profile: layout.legacyProfile as string,
            gcrootsDir: layout.gcrootsDir,
          };
          for (const storePath of versions) await pinServiceVersion(nix, { layout: earlier, storePath });
          await nix.switchGeneration(earlier.profile, 2);
          const before = await nix.listGenerations(earlier.profile);
          const listed = history(earlier.profile);
          // A shell that dies at the kill-th change (before or after carrying it out).
          let changes = 0;
          const real = createShell();
          const dying: typeof real = {
            async run(command, args, options) {
              if (MUTATING(command, args) && ++changes === kill) {
                if (when === 'after') await real.run(command, args, options);
                throw new Error('killed');
              }
              return real.run(command, args, options);
            },
          };
          const killed = await createNix({ env: NIX_ENV, store, shell: dying })
            .moveProfile(earlier.profile, layout.profile)
            .then(
              () => false,
              () => true,
            );
          await nix.moveProfile(earlier.profile, layout.profile);
          expect(await nix.listGenerations(layout.profile)).toEqual(before);
          expect(await nix.listGenerations(earlier.profile)).toEqual([]);
          expect(history(layout.profile)).toBe(listed);
          if (!killed) break; // the kill came after the last step: every step was covered
        }
      } finally {
        execFileSync('chmod', ['-R', 'u+w', dir]);
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );
});

describe('signing keys and narinfo from the real Nix', () => {
  it('derives the public key from the secret key file, and reads the narinfo Nix wrote', async () => {
    requireNix();
    const dir = mkdtempSync(join(tmpdir(), 'omni-nix-keys-'));
    try {
      const [path] = buildClosures('nixs3-keys', ['1']);
      execFileSync(
        'nix',
        [
          '--extra-experimental-features',
          'nix-command',
          'copy',
          '--no-check-sigs',
          '--to',
          `${dir}/store`,
          path as string,
        ],
        { env: { ...process.env, ...NIX_ENV }, stdio: 'pipe' },
      );
      // Signing happens in a chroot store: the system store's paths are left as they were.
      const nix = createNix({ env: NIX_ENV, store: `${dir}/store` });
      const publicKey = await nix.generateKey('derive-1', `${dir}/sk`, `${dir}/pk`);
      expect(publicKeyFromSecretKey(readFileSync(`${dir}/sk`, 'utf8'))).toBe(publicKey);
      await nix.sign([path as string], `${dir}/sk`);
      await nix.exportToCache([path as string], `${dir}/cache`);
      const hash = (path as string).slice('/nix/store/'.length, '/nix/store/'.length + 32);
      const narinfo = parseNarinfo(readFileSync(`${dir}/cache/${hash}.narinfo`, 'utf8'));
      expect(narinfo.storePath).toBe(path);
      expect(narinfo.signatures.some((s) => s.startsWith('derive-1:'))).toBe(true);
    } finally {
      execFileSync('chmod', ['-R', 'u+w', dir]);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
