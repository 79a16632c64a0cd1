import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DeployErrorCode, isDeployError } from '../../src/errors.js';
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
  /** An absolute scratch directory for keys, caches, profiles and GC roots. */
  dir: string;
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
      // Present paths are not fetched again, whatever the keys.
      await h.target.copyFrom(cache(), [h.versions[0] as string], { trustedPublicKeys: [key2] });
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
