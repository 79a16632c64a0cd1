import { describe, expect, it } from 'vitest';
import { isDeployError } from '../../src/errors.js';
import { planProfileMove, type SymlinkEntry } from '../../src/nix/index.js';

import { storePath } from '../builders.js';

const v = (n: number) => storePath(`web-${n}`);
/** The old layout's links of `web` (profile on generation `current`) among another service's. */
const oldLinks = (numbers: number[], current?: number): SymlinkEntry[] => [
  ...(current === undefined ? [] : [{ name: 'web', target: `web-${current}-link` }]),
  ...numbers.map((n) => ({ name: `web-${n}-link`, target: v(n) })),
  { name: 'api', target: 'api-1-link' },
  { name: 'api-1-link', target: storePath('api-1') },
];
const newLinks = (numbers: number[], current?: number): SymlinkEntry[] => [
  ...(current === undefined ? [] : [{ name: 'profile', target: `profile-${current}-link` }]),
  ...numbers.map((n) => ({ name: `profile-${n}-link`, target: v(n) })),
];
const plan = (from: SymlinkEntry[], to: SymlinkEntry[]) =>
  planProfileMove({ name: 'web', entries: from }, { name: 'profile', entries: to });
const copies = (numbers: number[]) =>
  numbers.map((n) => ({ from: `web-${n}-link`, to: `profile-${n}-link`, storePath: v(n) }));

describe('planProfileMove', () => {
  it.each([
    {
      label: 'a profile of the earlier layout: every generation, the current one, then the old links',
      from: oldLinks([3, 4, 5], 4),
      to: [],
      expected: {
        copy: copies([3, 4, 5]),
        profile: 'profile-4-link',
        remove: ['web', 'web-3-link', 'web-4-link', 'web-5-link'],
      },
    },
    {
      label: 'nothing there: nothing to do',
      from: oldLinks([]),
      to: [],
      expected: { copy: [], remove: [] },
    },
    {
      label: 'already moved: nothing to do, the new profile untouched',
      from: oldLinks([]),
      to: newLinks([3, 4, 5, 6], 6),
      expected: { copy: [], remove: [] },
    },
    {
      label: 'cut short after copying some generations: the rest, then the profile',
      from: oldLinks([3, 4, 5], 4),
      to: newLinks([3]),
      expected: {
        copy: copies([4, 5]),
        profile: 'profile-4-link',
        remove: ['web', 'web-3-link', 'web-4-link', 'web-5-link'],
      },
    },
    {
      label: 'cut short after creating the profile: only the old links go',
      from: oldLinks([3, 4, 5], 4),
      to: newLinks([3, 4, 5], 4),
      expected: { copy: [], remove: ['web', 'web-3-link', 'web-4-link', 'web-5-link'] },
    },
    {
      label: 'cut short while deleting: the remaining old links go',
      from: oldLinks([5]),
      to: newLinks([3, 4, 5], 4),
      expected: { copy: [], remove: ['web-5-link'] },
    },
    {
      label:
        'a generation of web overwritten by the profile of a service named web-4-link (the old collision)',
      from: [...oldLinks([3, 5], 4), { name: 'web-4-link', target: 'web-4-link-1-link' }],
      to: [],
      // web's profile pointed into another service's profile: it is dropped, not carried over.
      expected: { copy: copies([3, 5]), remove: ['web', 'web-3-link', 'web-5-link'] },
    },
  ])('$label', ({ from, to, expected }) => {
    expect(plan(from, to)).toEqual(expected);
  });

  it('never takes a neighbour service’s links for its own', () => {
    const entries = [
      { name: 'web-1', target: 'web-1-2-link' }, // the profile of a service called web-1
      { name: 'web-1-2-link', target: storePath('web-1-two') },
      { name: 'web-2-link', target: v(2) }, // the first generation of web... or the profile of "web-2-link"? A store path: a generation.
    ];
    const moved = planProfileMove({ name: 'web-1', entries }, { name: 'profile', entries: [] });
    expect(moved).toEqual({
      copy: [{ from: 'web-1-2-link', to: 'profile-2-link', storePath: storePath('web-1-two') }],
      profile: 'profile-2-link',
      remove: ['web-1', 'web-1-2-link'],
    });
    // "web-2-link" as a service: the link of that name is web's generation (it points to a store path), not its profile.
    expect(planProfileMove({ name: 'web-2-link', entries }, { name: 'profile', entries: [] })).toEqual({
      copy: [],
      remove: [],
    });
  });

  it('refuses when both places hold one generation number for different store paths', () => {
    let error: unknown;
    try {
      plan(oldLinks([3], 3), [{ name: 'profile-3-link', target: storePath('other') }]);
    } catch (e) {
      error = e;
    }
    expect(isDeployError(error, 'NIX_PROFILE')).toBe(true);
    expect((error as Error).message).toContain('generation 3');
  });
});
