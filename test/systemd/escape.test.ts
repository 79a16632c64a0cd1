import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isDeployError } from '../../src/errors.js';
import { CONTROL_CHARS_RE } from '../../src/manifest/patterns.js';
import {
  assertUnitValue,
  escapeSpecifiers,
  quoteEnvironmentAssignment,
  quoteExecArgument,
} from '../../src/systemd/index.js';

describe('quoteExecArgument', () => {
  it.each([
    ['plain', 'plain'],
    ['--port=8000', '--port=8000'],
    ['/var/lib/x', '/var/lib/x'],
    ['', '""'],
    ['a b', '"a b"'],
    ["it's", `"it's"`],
    ['"q"', '"\\"q\\""'],
    ['back\\slash', '"back\\\\slash"'],
    ['trailing\\', '"trailing\\\\"'],
    ['%n', '"%%n"'],
    ['100%', '"100%%"'],
    ['$HOME', '"$$HOME"'],
    ['${HOME}', '"$${HOME}"'],
    ['$$', '"$$$$"'],
    [';', '";"'],
    ['\\;', '"\\\\;"'],
    ['é', '"é"'],
    ['#x', '"#x"'],
  ])('%j → %s', (value, expected) => {
    expect(quoteExecArgument(value)).toBe(expected);
  });

  it('never leaves a bare %, $, quote, backslash or whitespace outside quotes', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme' }), (value) => {
        fc.pre(!CONTROL_CHARS_RE.test(value));
        const quoted = quoteExecArgument(value);
        // Every run of % and of $ has even length: each literal one was doubled.
        for (const run of quoted.match(/%+|\$+/g) ?? []) expect(run.length % 2).toBe(0);
        if (!/^"[\s\S]*"$/.test(quoted)) expect(quoted).toMatch(/^[A-Za-z0-9_@+=:,./-]+$/);
      }),
    );
  });
});

describe('quoteEnvironmentAssignment', () => {
  it.each([
    ['A', 'plain', '"A=plain"'],
    ['A', '', '"A="'],
    ['A', 'a b', '"A=a b"'],
    ['A', '$HOME ${X}', '"A=$HOME ${X}"'], // Environment= does no $ expansion
    ['A', '%h', '"A=%%h"'],
    ['A', '"q" \\', '"A=\\"q\\" \\\\"'],
    ['A', 'x=y', '"A=x=y"'],
  ])('%s=%j → %s', (key, value, expected) => {
    expect(quoteEnvironmentAssignment(key, value)).toBe(expected);
  });

  it.each(['A B', 'A=B', '1A', '', 'A\nB', 'Ä'])('refuses the variable name %j', (key) => {
    expect(() => quoteEnvironmentAssignment(key, 'x')).toThrow(/environment variable name/);
  });
});

describe('assertUnitValue', () => {
  it.each([
    ['newline', 'a\nExecStartPre=/bin/sh', 'U+000a at index 1'],
    ['carriage return', 'a\r', 'U+000d'],
    ['tab', '\t', 'U+0009'],
    ['NUL', 'a\u0000b', 'U+0000'],
    ['DEL', '\u007f', 'U+007f'],
    ['C1 next line', '\u0085', 'U+0085'],
    ['lone high surrogate', 'a\ud800', 'U+d800'],
    ['lone low surrogate', '\udc00b', 'U+dc00'],
    ['reversed pair', '\udc00\ud800', 'U+dc00'],
  ])('refuses %s with SYSTEMD_UNIT_VALUE naming the field and the character', (_label, value, found) => {
    let error: unknown;
    try {
      assertUnitValue(value, 'env.X');
    } catch (e) {
      error = e;
    }
    expect(isDeployError(error, 'SYSTEMD_UNIT_VALUE')).toBe(true);
    expect((error as Error).message).toMatch(/^env\.X: expected text without control characters/);
    expect((error as Error).message).toContain(found);
  });

  it.each(['', 'plain', '🦄', '\u2028', 'e\u0301', '\u00a0'])('accepts %j', (value) => {
    expect(() => assertUnitValue(value, 'x')).not.toThrow();
  });
});

describe('escapeSpecifiers', () => {
  it('doubles every %', () => {
    expect(escapeSpecifiers('%%n %')).toBe('%%%%n %%');
  });
});
