import { describe, expect, it } from 'vitest';
import { isObject } from '../../src/runtime/json.js';

describe('isObject', () => {
  it.each([
    [{}, true],
    [{ a: 1 }, true],
    [Object.create(null), true],
    [[], false],
    [null, false],
    [undefined, false],
    ['{}', false],
    [1, false],
  ])('%j is an object: %s', (value, expected) => {
    expect(isObject(value)).toBe(expected);
  });
});
