import { describe, expect, it } from 'vitest';
import { isDeployError } from '../../src/errors.js';
import { parsePathInfoJson } from '../../src/nix/index.js';
import { storePath } from '../builders.js';

const app = storePath('app-1.0');
const lib = storePath('lib-2.0');
const gone = storePath('gone-1');

describe('parsePathInfoJson', () => {
  it.each([
    [
      'Nix 2.8: an array, invalid paths as { valid: false }',
      [
        {
          path: app,
          narHash: 'sha256-A',
          narSize: 568,
          references: [lib],
          signatures: ['k:s'],
          deriver: `${app}.drv`,
        },
        { path: gone, valid: false },
      ],
    ],
    [
      'Nix >= 2.19: an object keyed by path, invalid paths as null',
      {
        [app]: {
          narHash: 'sha256-A',
          narSize: 568,
          references: [lib],
          signatures: ['k:s'],
          deriver: `${app}.drv`,
        },
        [gone]: null,
      },
    ],
    [
      'newer Nix: references as base names',
      {
        [app]: {
          narHash: 'sha256-A',
          narSize: 568,
          references: [lib.slice('/nix/store/'.length)],
          signatures: ['k:s'],
          deriver: `${app}.drv`,
        },
      },
    ],
  ])('reads %s', (_label, json) => {
    expect(parsePathInfoJson(JSON.stringify(json))).toEqual([
      {
        path: app,
        narHash: 'sha256-A',
        narSize: 568,
        references: [lib],
        signatures: ['k:s'],
        deriver: `${app}.drv`,
      },
    ]);
  });

  it('gives unsigned paths an empty signature list', () => {
    const [info] = parsePathInfoJson(
      JSON.stringify([{ path: app, narHash: 'h', narSize: 1, references: [] }]),
    );
    expect(info?.signatures).toEqual([]);
  });

  it.each([
    ['not JSON', 'error: something'],
    ['a number', '42'],
    ['an entry without narHash', JSON.stringify([{ path: app, narSize: 1, references: [] }])],
    [
      'a path outside the store',
      JSON.stringify([{ path: '/etc/passwd', narHash: 'h', narSize: 1, references: [] }]),
    ],
    [
      'a traversal key',
      JSON.stringify({ '/nix/store/../etc': { narHash: 'h', narSize: 1, references: [] } }),
    ],
    [
      'references that are not strings',
      JSON.stringify([{ path: app, narHash: 'h', narSize: 1, references: [1] }]),
    ],
  ])('refuses %s with NIX_OUTPUT', (_label, text) => {
    const error = (() => {
      try {
        parsePathInfoJson(text);
      } catch (caught) {
        return caught;
      }
    })();
    expect(isDeployError(error, 'NIX_OUTPUT')).toBe(true);
  });
});
