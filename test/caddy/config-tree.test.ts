import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalJson, sameJson } from '../../src/caddy/config-tree.js';

describe('sameJson', () => {
  it('agrees with comparing canonical JSON, and ignores key order, for any JSON values', () => {
    const json = fc.jsonValue({ maxDepth: 3 });
    const reorder = (value: unknown): unknown =>
      JSON.parse(
        JSON.stringify(value, (_, x) =>
          x && typeof x === 'object' && !Array.isArray(x)
            ? Object.fromEntries(Object.entries(x).reverse())
            : x,
        ),
      );
    fc.assert(
      fc.property(json, json, (a, b) => sameJson(a, b) === (canonicalJson(a) === canonicalJson(b))),
      { numRuns: 500 },
    );
    fc.assert(fc.property(json, (a) => sameJson(a, reorder(a))));
  });

  it.each([
    [{ a: 1, b: [1, { c: 2 }] }, { b: [1, { c: 2 }], a: 1 }, true],
    [{ a: 1 }, { a: 1, b: undefined }, true],
    [{ a: 1 }, { a: 1, b: null }, false],
    [[1, 2], [2, 1], false],
    [{}, [], false],
    ['1', 1, false],
  ])('%j vs %j → %s', (a, b, equal) => {
    expect(sameJson(a, b)).toBe(equal);
    expect(sameJson(b, a)).toBe(equal);
  });
});
