import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { findCycles, importsOf, moduleOf, sourceFiles } from './import-graph.js';

const root = new URL('../..', import.meta.url).pathname;
const files = sourceFiles(root, 'src');
const edges = files.flatMap((file) => importsOf(root, file));

describe('the import graph of src/', () => {
  it('finds the imports it walks (a broken walker would pass every check below)', () => {
    expect(files).toContain('src/deployer/tick.ts');
    expect(edges).toContainEqual({ from: 'src/deployer/tick.ts', to: 'src/errors.ts', typeOnly: false });
    expect(edges).toContainEqual({ from: 'src/push/context.ts', to: 'src/runtime/clock.ts', typeOnly: true });
    expect(
      findCycles([
        { from: 'a', to: 'b' },
        { from: 'b', to: 'c' },
        { from: 'c', to: 'a' },
      ]),
    ).toEqual([['a', 'b', 'c']]);
  });

  it('imports only files that exist', () => {
    expect(edges.filter((e) => !existsSync(join(root, e.to))).map((e) => `${e.from} -> ${e.to}`)).toEqual([]);
  });

  it('has no cycle between files, counting type-only imports', () => {
    expect(findCycles(edges)).toEqual([]);
  });

  it('has no cycle between modules (src/<dir> and the files at the top of src/)', () => {
    const between = edges
      .filter((e) => e.from !== 'src/index.ts' && e.to.startsWith('src/'))
      .map((e) => ({ from: moduleOf(e.from), to: moduleOf(e.to) }))
      .filter((e) => e.from !== e.to);
    expect(findCycles(between)).toEqual([]);
  });

  it('never imports the CLI or the bins from library code', () => {
    const bad = edges.filter(
      (e) => !e.from.startsWith('src/cli/') && (e.to.startsWith('src/cli/') || !e.to.startsWith('src/')),
    );
    expect(bad.map((e) => `${e.from} -> ${e.to}`)).toEqual([]);
  });

  it('keeps the runtime module free of every other module', () => {
    const bad = edges.filter((e) => e.from.startsWith('src/runtime/') && !e.to.startsWith('src/runtime/'));
    expect(bad.map((e) => `${e.from} -> ${e.to}`)).toEqual([]);
  });

  it('lets push use the deployer only through names the deployer exports publicly (its planner, its status schema)', async () => {
    const deployer = await import('../../src/deployer/index.js');
    const publicTypes = readFileSync(join(root, 'src/deployer/index.ts'), 'utf8');
    const used: string[] = [];
    for (const file of files.filter((f) => f.startsWith('src/push/'))) {
      const text = readFileSync(join(root, file), 'utf8');
      for (const m of text.matchAll(/^import (type )?\{([^}]*)\} from '\.\.\/deployer\/[^']+';$/gm)) {
        for (const raw of (m[2] as string)
          .split(',')
          .map((n) => n.trim())
          .filter(Boolean)) {
          const name = raw.replace(/^type /, '');
          const isType = m[1] !== undefined || raw.startsWith('type ');
          used.push(name);
          if (isType) expect(publicTypes, `${file}: type ${name}`).toMatch(new RegExp(`\\b${name}\\b`));
          else expect(deployer, `${file}: ${name}`).toHaveProperty(name);
        }
      }
    }
    expect(used).toEqual(expect.arrayContaining(['planDeploy', 'parseHostStatus']));
  });
});
