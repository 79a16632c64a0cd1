import { describe, expect, it } from 'vitest';
import { findJsonSyntaxError } from '../../src/manifest/index.js';

describe('findJsonSyntaxError', () => {
  it.each([
    ['{"a":1,}', 1, 8, 'a double-quoted property name, found "}"'],
    ['{"a" 1}', 1, 6, "':' after a property name"],
    ['x', 1, 1, 'a JSON value, found "x"'],
    ['', 1, 1, 'a JSON value, found end of input'],
    ['{"a":"b', 1, 8, "a closing '\"'"],
    ['[1,2', 1, 5, "',' or ']' after an array element, found end of input"],
    ['{"a":1}}', 1, 8, 'end of input after the JSON value'],
    ['{\n  "a": tru\n}', 2, 11, '"true"'],
    ['{\n\t"a": "x\ny"}', 2, 9, 'no raw control character'],
    ['{"a": "\\q"}', 1, 9, 'an escape'],
    ['{"a": "\\u12x4"}', 1, 12, '4 hex digits'],
    ['[01]', 1, 3, "',' or ']'"],
    ['[-]', 1, 2, 'a number'],
  ])('%j → line %i column %i', (text, line, column, fragment) => {
    const error = findJsonSyntaxError(text);
    expect(error).toMatchObject({ line, column });
    expect(error?.message).toContain(fragment);
    expect(() => JSON.parse(text)).toThrow();
  });

  it.each(['{}', '[]', ' {"a": [1, -2.5e3, true, false, null, "\\u00e9\\n"]} ', '"x"', '0'])(
    'accepts valid JSON %j',
    (text) => {
      expect(findJsonSyntaxError(text)).toBeUndefined();
    },
  );

  it('reports excessive nesting instead of overflowing the stack', () => {
    expect(findJsonSyntaxError('['.repeat(100_000))?.message).toContain('nesting deeper than');
  });
});

describe('findJsonSyntaxError agrees with JSON.parse', () => {
  const accepts = (text: string) => {
    try {
      JSON.parse(text);
      return true;
    } catch {
      return false;
    }
  };
  it('on arbitrary text and on JSON with one character changed', async () => {
    const fc = (await import('fast-check')).default;
    const nearJson = fc
      .tuple(
        fc.json(),
        fc.nat(),
        fc.constantFrom('', ',', '}', ']', '"', '\\', '\n', 'x', ':', '-', '0', ' '),
      )
      .map(
        ([json, at, ch]) =>
          json.slice(0, at % (json.length + 1)) + ch + json.slice((at % (json.length + 1)) + 1),
      );
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.json(), nearJson), (text) => {
        expect(findJsonSyntaxError(text) === undefined).toBe(accepts(text));
      }),
      { numRuns: 5000 },
    );
  });
});
