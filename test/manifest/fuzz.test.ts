import fc from 'fast-check';
import * as v from 'valibot';
import { describe, expect, it } from 'vitest';
import { compileAcceptor } from '../../src/manifest/acceptor.js';
import { ManifestSchema, parseManifest, validateManifest } from '../../src/manifest/index.js';
import { makeManifest, makeService } from '../builders.js';

/** Every outcome must be a well-formed result: a manifest, or at least one issue with a path and message. */
function expectWellFormed(result: ReturnType<typeof validateManifest>): void {
  if (result.ok) {
    expect(result.manifest.version).toBe(1);
  } else {
    expect(result.issues.length).toBeGreaterThan(0);
    for (const issue of result.issues) {
      expect(typeof issue.path).toBe('string');
      expect(issue.message.length).toBeGreaterThan(0);
      // Messages are one line: hostile values are quoted, never spliced in raw.
      expect(issue.message).not.toMatch(/[\n\r]/);
    }
  }
}

const valid = makeManifest([
  makeService({ name: 'web', http: { domain: 'a.com', path: '/', internalPort: 8000 }, env: { A: 'b' } }),
  makeService({
    name: 'worker',
    exec: { command: 'bin/w', args: ['x'] },
    hardening: { protectSystem: 'strict' },
    credentials: { token: '/var/lib/biz-secrets/worker/token' },
  }),
]);

/** Replaces the value at a random path of a JSON tree with `replacement`. */
function mutate(tree: unknown, choice: number, replacement: unknown): unknown {
  const paths: (string | number)[][] = [];
  const walk = (node: unknown, path: (string | number)[]) => {
    paths.push(path);
    if (Array.isArray(node)) {
      for (const [i, child] of node.entries()) walk(child, [...path, i]);
    } else if (node && typeof node === 'object')
      for (const [k, child] of Object.entries(node)) walk(child, [...path, k]);
  };
  walk(tree, []);
  const path = paths[choice % paths.length] as (string | number)[];
  if (path.length === 0) return replacement;
  const copy = JSON.parse(JSON.stringify(tree));
  let node = copy;
  for (const key of path.slice(0, -1)) node = node[key];
  node[path[path.length - 1] as string] = replacement;
  return copy;
}

describe('the validator never crashes', () => {
  it('on arbitrary JSON values', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => expectWellFormed(validateManifest(value))),
      { numRuns: 2000 },
    );
  });

  it('on arbitrary text', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (text) => expectWellFormed(parseManifest(text))),
      { numRuns: 2000 },
    );
  });

  it('on a valid manifest with one value replaced by arbitrary JSON', () => {
    fc.assert(
      fc.property(fc.nat(), fc.jsonValue({ maxDepth: 3 }), (choice, replacement) => {
        expectWellFormed(validateManifest(mutate(valid, choice, replacement)));
      }),
      { numRuns: 3000 },
    );
  });

  it('on a valid manifest with one string replaced by a hostile string', () => {
    const hostile = fc.oneof(
      fc.string({ unit: 'binary' }),
      fc.constantFrom(
        '../../etc/passwd',
        'a\nb',
        '%h',
        '${X}',
        '\u0000',
        '/nix/store/../etc',
        '__proto__',
        'constructor',
      ),
    );
    fc.assert(
      fc.property(fc.nat(), hostile, (choice, replacement) => {
        const result = validateManifest(mutate(valid, choice, replacement));
        expectWellFormed(result);
        // A control character can never survive into a valid manifest.
        if (result.ok) expect(JSON.stringify(result.manifest)).not.toMatch(/\\u00[01][0-9a-f]|\\[nrtbf]/);
      }),
      { numRuns: 3000 },
    );
  });
});

describe('the compiled acceptor agrees with valibot', () => {
  const accept = compileAcceptor(ManifestSchema);
  const agree = (value: unknown) => {
    expect(accept(value)).toBe(v.safeParse(ManifestSchema, value).success);
  };

  it('on valid manifests, arbitrary JSON and mutated manifests', () => {
    agree(valid);
    fc.assert(fc.property(fc.jsonValue(), agree), { numRuns: 1000 });
    const hostile = fc.oneof(
      fc.jsonValue({ maxDepth: 2 }),
      fc.constantFrom(
        '',
        '/',
        '/a/',
        '/a/../b',
        'a',
        8000,
        80,
        1.5,
        true,
        [],
        {},
        null,
        'strict',
        '*.a.com',
        'x'.repeat(300),
      ),
    );
    fc.assert(
      fc.property(fc.nat(), hostile, (choice, replacement) => agree(mutate(valid, choice, replacement))),
      {
        numRuns: 5000,
      },
    );
  });

  it('refuses to compile schema kinds it does not implement', () => {
    expect(() => compileAcceptor(v.date())).toThrow('unsupported valibot schema type "date"');
    expect(() => compileAcceptor(v.pipe(v.string(), v.email()))).toThrow(
      'unsupported valibot action "email"',
    );
  });
});
