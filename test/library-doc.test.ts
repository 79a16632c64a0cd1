import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import * as root from '../src/index.js';
import * as testing from '../src/testing/index.js';

/**
 * docs/library.md shows the library example verbatim; the example itself runs against the packed tarball in
 * test/package.test.ts. Here: the page and the files agree, and the example imports only what a user has.
 */
const read = (path: string) => readFileSync(new URL(`../${path}`, import.meta.url), 'utf8');
const doc = read('docs/library.md');
const FILES = ['examples/library/deploy.ts', 'examples/library/deploy.test.ts'];

/** Each `<!-- example: path -->` of the page with the code block right after it. */
function shownExamples(): Map<string, string> {
  const shown = new Map<string, string>();
  for (const m of doc.matchAll(/<!-- example: (\S+) -->\n```ts\n([\s\S]*?)```\n/g))
    shown.set(m[1] as string, m[2] as string);
  return shown;
}

describe('docs/library.md', () => {
  it('shows every file of examples/library exactly as it is', () => {
    const shown = shownExamples();
    expect([...shown.keys()].sort()).toEqual([...FILES].sort());
    for (const file of FILES) expect(shown.get(file), file).toBe(read(file));
  });

  it('the example imports only the package by name, vitest and itself', () => {
    const imports = FILES.flatMap((file) =>
      [...read(file).matchAll(/^import [\s\S]*? from '([^']+)';$/gm)].map((m) => m[1]),
    );
    expect(new Set(imports)).toEqual(
      new Set(['@omni/deploy', '@omni/deploy/testing', 'vitest', './deploy.js']),
    );
  });

  it('every name the example imports from the package is exported there', () => {
    const exported: Record<string, Record<string, unknown>> = {
      '@omni/deploy': root,
      '@omni/deploy/testing': testing,
    };
    for (const file of FILES) {
      for (const m of read(file).matchAll(/^import \{([^}]*)\} from '(@omni\/deploy[^']*)';$/gm)) {
        const names = (m[1] as string)
          .split(',')
          .map((n) => n.trim())
          .filter((n) => n && !n.startsWith('type '));
        for (const name of names) expect(exported[m[2] as string], `${name} in ${m[2]}`).toHaveProperty(name);
      }
    }
  });
});
