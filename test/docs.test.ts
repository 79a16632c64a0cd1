import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * The documentation's links can be followed: every relative link in the README and docs/ names a file that
 * exists, and every `#anchor` a heading that exists (as GitHub renders it). Also: nothing in the repository
 * cites a design document that is not in it.
 */
const root = new URL('..', import.meta.url).pathname;
const DOCS = [
  'README.md',
  ...readdirSync(join(root, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .sort()
    .map((f) => `docs/${f}`),
];
const read = (file: string) => readFileSync(join(root, file), 'utf8');

/** The text outside fenced code blocks, one entry per line (blank for lines inside a fence). */
function proseLines(markdown: string): string[] {
  let fence: string | undefined;
  return markdown.split('\n').map((line) => {
    const marker = /^\s*(```|~~~)/.exec(line)?.[1];
    if (marker && (fence === undefined || fence === marker)) {
      fence = fence === undefined ? marker : undefined;
      return '';
    }
    return fence === undefined ? line : '';
  });
}

/** GitHub's anchor for a heading: lowercased, punctuation dropped, spaces to hyphens. */
function slugify(heading: string): string {
  return heading
    .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '')
    .replace(/ /g, '-');
}

/** The anchors of a document's headings, with GitHub's `-1`, `-2` suffixes for repeated ones. */
function anchorsOf(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const anchors = new Set<string>();
  for (const line of proseLines(markdown)) {
    const heading = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line)?.[1];
    if (heading === undefined) continue;
    const base = slugify(heading);
    const count = seen.get(base) ?? 0;
    seen.set(base, count + 1);
    anchors.add(count === 0 ? base : `${base}-${count}`);
  }
  return anchors;
}

/** Every inline link or image target outside code, with its line number. */
function linksOf(markdown: string): { target: string; line: number }[] {
  const links: { target: string; line: number }[] = [];
  proseLines(markdown).forEach((text, i) => {
    const outsideCode = text.replace(/`[^`]*`/g, '');
    for (const m of outsideCode.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g))
      links.push({ target: m[1] as string, line: i + 1 });
  });
  return links;
}

describe('slugify', () => {
  it.each([
    ['Quick start for an operator', 'quick-start-for-an-operator'],
    ['Watching it: status, logs, metrics, hooks', 'watching-it-status-logs-metrics-hooks'],
    ['Three parts: push, the bucket, the deployer', 'three-parts-push-the-bucket-the-deployer'],
    ['`push` (on your machine)', 'push-on-your-machine'],
    ['Caddy routes (`@omni/deploy/caddy`)', 'caddy-routes-omnideploycaddy'],
    ['Nix: closures, profiles, GC roots', 'nix-closures-profiles-gc-roots'],
    ['snake_case and [a link](x.md)', 'snake_case-and-a-link'],
  ])('%s → %s', (heading, anchor) => {
    expect(slugify(heading)).toBe(anchor);
  });
});

describe.each(DOCS)('%s', (file) => {
  const text = read(file);

  it('has relative links that name existing files and headings', () => {
    const broken: string[] = [];
    for (const { target, line } of linksOf(text)) {
      if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // https:, mailto: ...
      const [path = '', anchor] = target.split('#');
      const resolved = path === '' ? file : relative(root, join(root, dirname(file), decodeURI(path)));
      if (!existsSync(join(root, resolved))) {
        broken.push(`${file}:${line}: ${target}: no file ${resolved}`);
        continue;
      }
      if (anchor !== undefined && resolved.endsWith('.md') && !anchorsOf(read(resolved)).has(anchor))
        broken.push(`${file}:${line}: ${target}: no heading #${anchor} in ${resolved}`);
    }
    expect(broken).toEqual([]);
  });
});

describe('the documentation set', () => {
  it('the README links every document in docs/', () => {
    const linked = new Set(linksOf(read('README.md')).map(({ target }) => target.split('#')[0]));
    expect(DOCS.filter((f) => f.startsWith('docs/') && !linked.has(f))).toEqual([]);
  });

  it('nothing cites a design document outside the repository as "the seed"', () => {
    const files = execFileSync('git', ['ls-files', '-z'], { cwd: root, encoding: 'utf8' })
      .split('\0')
      .filter((f) => /\.(ts|js|mjs|md|json|nix|sh|service|timer)$/.test(f) && f !== 'package-lock.json')
      .filter((f) => f !== 'test/docs.test.ts' && existsSync(join(root, f)));
    const citing = /\bthe seed\b|\bseed's\b|\bseed design\b/i;
    const found = files.flatMap((f) =>
      read(f)
        .split('\n')
        .flatMap((line, i) => (citing.test(line) ? [`${f}:${i + 1}: ${line.trim()}`] : [])),
    );
    expect(found).toEqual([]);
  });
});
