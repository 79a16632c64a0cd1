import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DeployErrorCode, isDeployError } from '../../src/errors.js';
import { signManifest, verifyManifest } from '../../src/manifest/index.js';
import {
  exportClosure,
  gcRootPath,
  type Nix,
  parsePublicKey,
  pinServiceVersion,
  serviceLayout,
} from '../../src/nix/index.js';

/** Two machines' stores and seven closures, from the real Nix or the fake. */
export interface NixHarness {
  /** The dev machine: `versions` are built there (valid, unsigned). */
  source: Nix;
  /** The host: an empty store. */
  target: Nix;
  /** Seven top-level store paths, each with one dependency of its own. */
  versions: string[];
  /** Dependencies: `deps[i]` is the one reference of `versions[i]`. */
  deps: string[];
  /** Another closure, never signed by anyone. */
  unsigned: string;
  /** Two more closures for the trust cases: paths a host already has that the bucket then names. */
  hostile: string[];
  /** An absolute scratch directory for keys, caches, profiles and GC roots. */
  dir: string;
  /** The text of a key file `generateKey` wrote (on disk for the real Nix, in memory for the fake). */
  readKeyFile(path: string): Promise<string>;
  cleanup(): Promise<void>;
}

async function expectCode(promise: Promise<unknown>, code: DeployErrorCode, pattern?: RegExp) {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(isDeployError(error, code), `expected DeployError ${code}, got ${String(error)}`).toBe(true);
  if (pattern) expect((error as Error).message).toMatch(pattern);
  return error as Error;
}

/** The contract every {@link Nix} honours. `make` is called once; the tests share its stores in order. */
export function nixContract(name: string, make: () => Promise<NixHarness>) {
  describe(`Nix contract: ${name}`, () => {
    let h: NixHarness;
    let key1: string;
    let key2: string;
    const cache = () => `file://${h.dir}/cache`;

    beforeAll(async () => {
      h = await make();
      key1 = await h.source.generateKey('test-1', `${h.dir}/k1.sk`, `${h.dir}/k1.pk`);
      key2 = await h.source.generateKey('test-2', `${h.dir}/k2.sk`, `${h.dir}/k2.pk`);
    }, 120_000);
    afterAll(async () => h?.cleanup());

    it('generates key pairs whose public half is a Nix public key', () => {
      expect(parsePublicKey(key1).name).toBe('test-1');
      expect(parsePublicKey(key2).name).toBe('test-2');
      expect(key1).not.toBe(key2);
    });

    it('generates secret keys that also sign manifests, verified by their public half only', async () => {
      const secret = await h.readKeyFile(`${h.dir}/k1.sk`);
      expect(secret.trim()).toMatch(/^test-1:[A-Za-z0-9+/]{86}==$/);
      const signed = signManifest('{"version":1}\n', secret);
      expect(verifyManifest(signed, [key1])).toMatchObject({ ok: true, keyName: 'test-1' });
      expect(verifyManifest(signed, [key2])).toMatchObject({ ok: false, code: 'MANIFEST_UNTRUSTED_KEY' });
    });

    it('reports path info with references, and nothing for paths that are not in the store', async () => {
      const [v1, d1] = [h.versions[0] as string, h.deps[0] as string];
      const flat = await h.source.pathInfo([v1]);
      expect(flat.map((i) => i.path)).toEqual([v1]);
      expect(flat[0]?.references).toContain(d1);
      expect(flat[0]?.signatures).toEqual([]);
      const closure = await h.source.pathInfo([v1], { closure: true });
      expect(closure.map((i) => i.path).sort()).toEqual([v1, d1].sort());
      expect(await h.target.pathInfo([v1], { closure: true })).toEqual([]);
    });

    it('refuses a closure signed by another key, says "signature", and installs nothing of it', async () => {
      await exportClosure(h.source, {
        paths: h.versions,
        secretKeyFile: `${h.dir}/k1.sk`,
        cacheDir: `${h.dir}/cache`,
      });
      await expectCode(
        h.target.copyFrom(cache(), [h.versions[0] as string], { trustedPublicKeys: [key2] }),
        'NIX_SIGNATURE',
        /signature/,
      );
      expect(await h.target.pathInfo([h.versions[0] as string, h.deps[0] as string])).toEqual([]);
    });

    it('copies a closure signed by a trusted key, with its signatures', async () => {
      await h.target.copyFrom(cache(), [h.versions[0] as string], { trustedPublicKeys: [key2, key1] });
      const closure = await h.target.pathInfo([h.versions[0] as string], { closure: true });
      expect(closure).toHaveLength(2);
      for (const info of closure) expect(info.signatures.some((s) => s.startsWith('test-1:'))).toBe(true);
      // Present paths are not fetched again, but their signatures are still checked against the keys given.
      await h.target.copyFrom(cache(), [h.versions[0] as string], { trustedPublicKeys: [key1] });
      await expectCode(
        h.target.copyFrom(cache(), [h.versions[0] as string], { trustedPublicKeys: [key2] }),
        'NIX_SIGNATURE',
        /test-2/,
      );
    });

    it('refuses an unsigned closure', async () => {
      const dir = `${h.dir}/unsigned`;
      expect((await h.source.pathInfo([h.unsigned]))[0]?.signatures).toEqual([]);
      await h.source.exportToCache([h.unsigned], dir, { compression: 'none' });
      await expectCode(
        h.target.copyFrom(`file://${dir}`, [h.unsigned], { trustedPublicKeys: [key1] }),
        'NIX_SIGNATURE',
      );
      expect(await h.target.pathInfo([h.unsigned])).toEqual([]);
    });

    describe('closure trust: a path already in the store is checked too', () => {
      let present: string;
      let foreign: string;
      beforeAll(async () => {
        [present, foreign] = h.hostile as [string, string];
        // The host got both some other way, unsigned (here: an explicitly insecure copy).
        await h.source.exportToCache([present], `${h.dir}/hostile-unsigned`);
        await h.target.copyFrom(`file://${h.dir}/hostile-unsigned`, [present], {
          trustedPublicKeys: [],
          requireSignatures: false,
        });
        // The attacker's narinfo for the other one is signed, by a key of their own (test-2, not trusted).
        await h.source.sign([foreign], `${h.dir}/k2.sk`);
        await h.source.exportToCache([foreign], `${h.dir}/hostile-foreign`);
        await h.target.copyFrom(`file://${h.dir}/hostile-foreign`, [foreign], {
          trustedPublicKeys: [],
          requireSignatures: false,
        });
        expect((await h.target.pathInfo([present, foreign])).map((i) => i.path).sort()).toEqual(
          [present, foreign].sort(),
        );
      }, 60_000);

      it('refuses a present path whose bucket narinfo is unsigned, naming the path and the trusted keys', async () => {
        const error = await expectCode(
          h.target.copyFrom(`file://${h.dir}/hostile-unsigned`, [present], { trustedPublicKeys: [key1] }),
          'NIX_SIGNATURE',
          /signature/,
        );
        expect(error.message).toContain(present);
        expect(error.message).toContain('(test-1)');
      });

      it('refuses a present path whose bucket narinfo is signed by a key that is not trusted', async () => {
        const error = await expectCode(
          h.target.copyFrom(`file://${h.dir}/hostile-foreign`, [foreign], { trustedPublicKeys: [key1] }),
          'NIX_SIGNATURE',
        );
        expect(error.message).toContain(foreign);
        // Trusting that key is the operator's decision, and then it passes.
        await h.target.copyFrom(`file://${h.dir}/hostile-foreign`, [foreign], { trustedPublicKeys: [key2] });
      });

      it('refuses the whole request when one of several paths is untrusted, naming only that one', async () => {
        // The bucket holds a signed version and, beside it, the unsigned narinfo for the present path.
        await h.source.exportToCache([h.versions[0] as string], `${h.dir}/hostile-unsigned`);
        const error = await expectCode(
          h.target.copyFrom(`file://${h.dir}/hostile-unsigned`, [h.versions[0] as string, present], {
            trustedPublicKeys: [key1],
          }),
          'NIX_SIGNATURE',
        );
        expect(error.message).toContain(present);
        expect(error.message).not.toContain(h.versions[0] as string);
      });

      it('refuses a present path the cache does not have at all (Nix reads it from the cache all the same)', async () => {
        await expectCode(
          h.target.copyFrom(cache(), [present], { trustedPublicKeys: [key1] }),
          'NIX_NOT_FOUND',
        );
      });

      it('skips the check only when signatures are explicitly not required (--insecure-allow-unsigned)', async () => {
        await h.target.copyFrom(`file://${h.dir}/hostile-unsigned`, [present], {
          trustedPublicKeys: [],
          requireSignatures: false,
        });
      });

      it('accepts a present, locally unsigned path once the cache offers a trusted signature of its content', async () => {
        await h.source.sign([present], `${h.dir}/k1.sk`);
        await h.source.exportToCache([present], `${h.dir}/hostile-signed`);
        await h.target.copyFrom(`file://${h.dir}/hostile-signed`, [present], { trustedPublicKeys: [key1] });
        // Its local signatures are as they were: the cache's signature was checked, not copied.
        expect((await h.target.pathInfo([present]))[0]?.signatures).toEqual([]);
      });
    });

    it('reports a path the cache does not have as NIX_NOT_FOUND', async () => {
      const other = `${h.dir}/partial`;
      await h.source.exportToCache([h.deps[1] as string], other);
      await expectCode(
        h.target.copyFrom(`file://${other}`, [h.versions[1] as string], { trustedPublicKeys: [key1] }),
        'NIX_NOT_FOUND',
      );
    });

    it('keeps exactly the last 5 versions over 7 deploys: generations and GC roots', async () => {
      await h.target.copyFrom(cache(), h.versions, { trustedPublicKeys: [key1] });
      const layout = serviceLayout('web', {
        profilesDir: `${h.dir}/profiles`,
        gcrootsDir: `${h.dir}/gcroots`,
      });
      let previous: string | undefined;
      for (const version of h.versions) {
        const result = await pinServiceVersion(h.target, { layout, storePath: version, keep: 5 });
        expect(result.previousStorePath).toBe(previous);
        expect(result.generation.storePath).toBe(version);
        previous = version;
      }
      const generations = await h.target.listGenerations(layout.profile);
      expect(generations.map((g) => g.number)).toEqual([3, 4, 5, 6, 7]);
      expect(generations.map((g) => g.storePath)).toEqual(h.versions.slice(2));
      expect(generations.filter((g) => g.current).map((g) => g.number)).toEqual([7]);
      const roots = await h.target.listGcRoots(layout.gcrootsDir);
      expect(roots.map((r) => `${layout.gcrootsDir}/${r.name}`).sort()).toEqual(
        h.versions
          .slice(2)
          .map((v) => gcRootPath(layout, v))
          .sort(),
      );
      expect(roots.map((r) => r.target).sort()).toEqual(h.versions.slice(2).sort());
    });

    it('switches back to the explicit previous path after out-of-order history (not the next one down)', async () => {
      const layout = serviceLayout('web', {
        profilesDir: `${h.dir}/profiles`,
        gcrootsDir: `${h.dir}/gcroots`,
      });
      // Someone switched by hand to generation 5 (versions[4]); the deployer knows it ran versions[5] before.
      await h.target.switchGeneration(layout.profile, 5);
      const wanted = h.versions[5] as string;
      const before = await h.target.listGenerations(layout.profile);
      const nextDown = before.filter((g) => g.number < 5).at(-1)?.storePath;
      expect(nextDown).not.toBe(wanted); // what `nix-env --rollback` would have picked
      const result = await pinServiceVersion(h.target, { layout, storePath: wanted, keep: 5 });
      expect(result.previousStorePath).toBe(h.versions[4]);
      const after = await h.target.listGenerations(layout.profile);
      expect(after.find((g) => g.current)?.storePath).toBe(wanted);
      expect(after).toHaveLength(5);
      const roots = await h.target.listGcRoots(layout.gcrootsDir);
      expect(roots.map((r) => r.target).sort()).toEqual([...new Set(after.map((g) => g.storePath))].sort());
    });

    describe('profiles: a directory per service, and the upgrade from the earlier layout', () => {
      const dirs = () => ({ profilesDir: `${h.dir}/layout/profiles`, gcrootsDir: `${h.dir}/layout/gcroots` });
      const v = (i: number) => h.versions[i] as string;

      it('keeps a service named web-1-link away from web’s profile and generations', async () => {
        const web = serviceLayout('web', dirs());
        const other = serviceLayout('web-1-link', dirs());
        await pinServiceVersion(h.target, { layout: web, storePath: v(0) });
        await pinServiceVersion(h.target, { layout: other, storePath: v(2) });
        await pinServiceVersion(h.target, { layout: web, storePath: v(1) });
        expect(await h.target.listGenerations(web.profile)).toEqual([
          { number: 1, storePath: v(0), current: false },
          { number: 2, storePath: v(1), current: true },
        ]);
        expect(await h.target.listGenerations(other.profile)).toEqual([
          { number: 1, storePath: v(2), current: true },
        ]);
        expect((await h.target.listGcRoots(web.gcrootsDir)).map((r) => r.target).sort()).toEqual(
          [v(0), v(1)].sort(),
        );
      });

      it('moves a profile the earlier code made into the service’s directory: numbers, current, roots kept', async () => {
        const layout = serviceLayout('api', dirs());
        // What serviceLayout returned before: the profile among every other service's links.
        const earlier = {
          service: 'api',
          profile: layout.legacyProfile as string,
          gcrootsDir: layout.gcrootsDir,
        };
        for (const i of [0, 1, 2]) await pinServiceVersion(h.target, { layout: earlier, storePath: v(i) });
        await h.target.switchGeneration(earlier.profile, 2); // the current one is not the newest
        const before = await h.target.listGenerations(earlier.profile);
        expect(before.map((g) => [g.number, g.current])).toEqual([
          [1, false],
          [2, true],
          [3, false],
        ]);

        await h.target.moveProfile(earlier.profile, layout.profile);
        expect(await h.target.listGenerations(layout.profile)).toEqual(before);
        expect(await h.target.listGenerations(earlier.profile)).toEqual([]);
        await h.target.moveProfile(earlier.profile, layout.profile); // again: nothing left to do
        expect(await h.target.listGenerations(layout.profile)).toEqual(before);

        // The next deploy goes on from there, and switching back still means the version that ran.
        const pinned = await pinServiceVersion(h.target, { layout, storePath: v(3) });
        expect(pinned.previousStorePath).toBe(v(1));
        expect((await h.target.listGenerations(layout.profile)).map((g) => [g.number, g.current])).toEqual([
          [1, false],
          [2, false],
          [3, false],
          [4, true],
        ]);
        expect((await h.target.listGcRoots(layout.gcrootsDir)).map((r) => r.target).sort()).toEqual(
          [v(0), v(1), v(2), v(3)].sort(),
        );
      });

      it('moves the earlier profile on the first pin by itself', async () => {
        const layout = serviceLayout('worker', dirs());
        const earlier = {
          service: 'worker',
          profile: layout.legacyProfile as string,
          gcrootsDir: layout.gcrootsDir,
        };
        await pinServiceVersion(h.target, { layout: earlier, storePath: v(4) });
        const pinned = await pinServiceVersion(h.target, { layout, storePath: v(5) });
        expect(pinned.previousStorePath).toBe(v(4));
        expect((await h.target.listGenerations(layout.profile)).map((g) => g.storePath)).toEqual([
          v(4),
          v(5),
        ]);
        expect(await h.target.listGenerations(earlier.profile)).toEqual([]);
      });

      it('refuses to merge a generation number that means different paths in the two places', async () => {
        const from = `${h.dir}/layout/clash/cron`;
        const to = `${h.dir}/layout/clash/cron.d/profile`;
        await h.target.setProfile(from, v(0));
        await h.target.setProfile(to, v(1));
        await expectCode(h.target.moveProfile(from, to), 'NIX_PROFILE', /generation 1/);
        expect((await h.target.listGenerations(to)).map((g) => g.storePath)).toEqual([v(1)]);
        expect((await h.target.listGenerations(from)).map((g) => g.storePath)).toEqual([v(0)]);
      });
    });

    it('adds no generation when the newest already is that path', async () => {
      const profile = `${h.dir}/profiles/same`;
      await h.target.setProfile(profile, h.versions[0] as string);
      await h.target.setProfile(profile, h.versions[0] as string);
      expect((await h.target.listGenerations(profile)).map((g) => g.number)).toEqual([1]);
      await expectCode(h.target.deleteGenerations(profile, [1]), 'NIX_COMMAND', /current/);
    });

    it('refuses to point a profile or a GC root at a path that is not in the store', async () => {
      const missing = h.versions[1]?.replace(/svc-2$/, 'svc-99') as string;
      await expectCode(h.target.setProfile(`${h.dir}/profiles/x`, missing), 'NIX_NOT_FOUND');
      await expectCode(h.target.addGcRoot(`${h.dir}/gcroots/x/y`, missing), 'NIX_NOT_FOUND');
    });

    it('lists nothing for a profile or GC-root directory that does not exist', async () => {
      expect(await h.target.listGenerations(`${h.dir}/nowhere/web`)).toEqual([]);
      expect(await h.target.listGcRoots(`${h.dir}/nowhere`)).toEqual([]);
      await h.target.removeGcRoot(`${h.dir}/nowhere/x`);
    });

    it.each([
      ['a relative profile', (n: Nix) => n.setProfile('profiles/web', h.versions[0] as string)],
      ['a profile with ..', (n: Nix) => n.listGenerations(`${h.dir}/../etc/web`)],
      ['a store path with ..', (n: Nix) => n.setProfile(`${h.dir}/p/web`, '/nix/store/../../etc/passwd')],
      ['a path inside a store path', (n: Nix) => n.addGcRoot(`${h.dir}/r/x`, `${h.versions[0]}/bin/svc`)],
      [
        'an option as a substituter',
        (n: Nix) => n.copyFrom('--help', h.versions, { trustedPublicKeys: [key1] }),
      ],
      [
        'a substituter with a space',
        (n: Nix) => n.copyFrom('file:///a b', h.versions, { trustedPublicKeys: [key1] }),
      ],
      ['no trusted key', (n: Nix) => n.copyFrom(cache(), h.versions, { trustedPublicKeys: [] })],
      [
        'a key list smuggled in one key',
        (n: Nix) => n.copyFrom(cache(), h.versions, { trustedPublicKeys: [`${key1} ${key2}`] }),
      ],
      [
        'a newline in a key',
        (n: Nix) => n.copyFrom(cache(), h.versions, { trustedPublicKeys: [`${key1}\nx`] }),
      ],
      ['generation 0', (n: Nix) => n.switchGeneration(`${h.dir}/profiles/web`, 0)],
      ['a key name that is an option', (n: Nix) => n.generateKey('--help', `${h.dir}/a`, `${h.dir}/b`)],
      ['no paths', (n: Nix) => n.sign([], `${h.dir}/k1.sk`)],
    ])('refuses %s before running anything (NIX_INPUT)', async (_label, call) => {
      await expectCode(call(h.target), 'NIX_INPUT');
    });
  });
}
