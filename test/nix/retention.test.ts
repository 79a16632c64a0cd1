import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  gcRootPath,
  type ProfileGeneration,
  parseGenerationLinks,
  parseSymlinkListing,
  planRetention,
  serviceLayout,
} from '../../src/nix/index.js';
import { storePath } from '../builders.js';

const layout = serviceLayout('web', { profilesDir: '/p', gcrootsDir: '/r' });
const v = (n: number) => storePath(`web-${n}`);
const gens = (numbers: number[], current: number): ProfileGeneration[] =>
  numbers.map((number) => ({ number, storePath: v(number), current: number === current }));
const root = (n: number) => ({ name: gcRootPath(layout, v(n)).slice('/r/web/'.length), target: v(n) });

describe('serviceLayout', () => {
  it('puts the profile and roots of a service under the default directories, each in its own directory', () => {
    expect(serviceLayout('podcastitlater-web')).toEqual({
      service: 'podcastitlater-web',
      profile: '/nix/var/nix/profiles/biz/podcastitlater-web.d/profile',
      gcrootsDir: '/nix/var/nix/gcroots/biz/podcastitlater-web',
      legacyProfile: '/nix/var/nix/profiles/biz/podcastitlater-web',
    });
    expect(gcRootPath(layout, v(1))).toBe(`/r/web/${v(1).slice('/nix/store/'.length)}`);
  });

  it('gives no service a path that another service name can reach, in this layout or the one before', () => {
    const name = fc.stringMatching(/^[a-z][a-z0-9-]{0,62}$/);
    /** Every file name a service owns directly under the profiles directory, and its roots directory. */
    const owned = (service: string) => {
      const l = serviceLayout(service, { profilesDir: '/p', gcrootsDir: '/r' });
      return { dir: l.profile.slice(0, -'/profile'.length), roots: l.gcrootsDir, legacy: l.legacyProfile };
    };
    fc.assert(
      fc.property(name, name, fc.integer({ min: 1, max: 999_999_999 }), (a, b, n) => {
        fc.pre(a !== b);
        const [x, y] = [owned(a), owned(b)];
        expect(x.dir).not.toBe(y.dir);
        expect(x.roots).not.toBe(y.roots);
        // Nothing of the earlier layout (a profile or a generation link of any service) is a service directory.
        for (const old of [y.legacy, `${y.legacy}-${n}-link`]) expect(x.dir).not.toBe(old);
      }),
    );
    // The pair of the original report, spelled out.
    expect(owned('web-1-link').dir).toBe('/p/web-1-link.d');
    expect(serviceLayout('web', { profilesDir: '/p' }).profile).toBe('/p/web.d/profile');
  });

  it.each([['../etc'], ['a/b'], ['Web'], [''], ['web\n'], ['-rf']])('refuses the service name %j', (name) => {
    expect(() => serviceLayout(name)).toThrow(/service name/);
  });

  it.each([['relative'], ['/a/../b'], ['/a/'], ['/a b']])('refuses the directory %j', (dir) => {
    expect(() => serviceLayout('web', { profilesDir: dir })).toThrow(/profilesDir/);
  });

  it('refuses a GC root for something that is not a top-level store path', () => {
    expect(() => gcRootPath(layout, `${v(1)}/bin/web`)).toThrow(/store path/);
  });
});

describe('parseGenerationLinks', () => {
  it('reads generations and the current one, ignoring a neighbour profile with a similar name', () => {
    const links = [
      { name: 'web', target: 'web-3-link' },
      { name: 'web-2-link', target: v(2) },
      { name: 'web-3-link', target: v(3) },
      { name: 'web-1', target: 'web-1-4-link' }, // the profile of a service called "web-1"
      { name: 'web-1-4-link', target: v(9) },
      { name: 'web-x-link', target: v(8) },
      { name: 'web-5-link', target: '/etc/passwd' },
    ];
    expect(parseGenerationLinks('web', links)).toEqual([
      { number: 2, storePath: v(2), current: false },
      { number: 3, storePath: v(3), current: true },
    ]);
    expect(parseGenerationLinks('web-1', links)).toEqual([{ number: 4, storePath: v(9), current: true }]);
  });

  it('splits a NUL-separated listing exactly, whatever the names contain', () => {
    expect(parseSymlinkListing('a b\0/t 1\0new\nline\0x\0')).toEqual([
      { name: 'a b', target: '/t 1' },
      { name: 'new\nline', target: 'x' },
    ]);
    expect(parseSymlinkListing('')).toEqual([]);
  });
});

describe('planRetention', () => {
  it.each([
    {
      label: 'seven deploys keep the last five',
      generations: gens([1, 2, 3, 4, 5, 6, 7], 7),
      roots: [1, 2, 3, 4, 5, 6].map(root),
      keep: 5,
      kept: [3, 4, 5, 6, 7],
      deleted: [1, 2],
      added: [7],
      removed: [1, 2],
    },
    {
      label: 'a current generation older than the newest stays, with the newest others',
      generations: gens([1, 2, 3, 4, 5, 6, 7], 2),
      roots: [],
      keep: 3,
      kept: [2, 6, 7],
      deleted: [1, 3, 4, 5],
      added: [2, 6, 7],
      removed: [],
    },
    {
      label: 'fewer generations than keep: nothing deleted',
      generations: gens([1, 2], 2),
      roots: [root(1)],
      keep: 5,
      kept: [1, 2],
      deleted: [],
      added: [2],
      removed: [],
    },
    {
      label: 'keep 1',
      generations: gens([4, 9], 9),
      roots: [root(4), root(9)],
      keep: 1,
      kept: [9],
      deleted: [4],
      added: [],
      removed: [4],
    },
  ])('$label', ({ generations, roots, keep, kept, deleted, added, removed }) => {
    const plan = planRetention({ layout, generations, roots, keep });
    expect(plan.keep.map((g) => g.number)).toEqual(kept);
    expect(plan.deleteGenerations).toEqual(deleted);
    expect(plan.addRoots).toEqual(added.map((n) => ({ link: gcRootPath(layout, v(n)), storePath: v(n) })));
    expect(plan.removeRoots.sort()).toEqual(removed.map((n) => gcRootPath(layout, v(n))).sort());
  });

  it('re-points a root whose link exists but targets something else, and leaves foreign files alone', () => {
    const wrong = { name: root(2).name, target: v(1) };
    const plan = planRetention({
      layout,
      generations: gens([2], 2),
      roots: [wrong, { name: 'README', target: '/etc/motd' }],
      keep: 5,
    });
    expect(plan.addRoots).toEqual([{ link: gcRootPath(layout, v(2)), storePath: v(2) }]);
    expect(plan.removeRoots).toEqual([]);
  });

  it('roots a store path once even when several kept generations point to it', () => {
    const generations = [
      { number: 1, storePath: v(1), current: false },
      { number: 2, storePath: v(2), current: false },
      { number: 3, storePath: v(1), current: true },
    ];
    expect(planRetention({ layout, generations, roots: [], keep: 5 }).addRoots).toHaveLength(2);
  });

  it.each([[0], [-1], [1.5], [Number.NaN]])('refuses keep = %s', (keep) => {
    expect(() => planRetention({ layout, generations: [], roots: [], keep })).toThrow(/keep/);
  });
});
