import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { sourceFiles } from './import-graph.js';

const root = new URL('../..', import.meta.url).pathname;

/** Every exported `...Event` type of src/ with its declaration text (up to the first blank line). */
function eventTypes(): { name: string; file: string; text: string }[] {
  return sourceFiles(root, 'src').flatMap((file) =>
    [
      ...readFileSync(join(root, file), 'utf8').matchAll(
        /^export (?:type|interface) (\w+Event)\b[\s\S]*?(?=\n\n|(?![\s\S]))/gm,
      ),
    ].map((m) => ({ name: m[1] as string, file, text: m[0] })),
  );
}

describe('event shapes', () => {
  it('every event type is discriminated by `type`, never `kind`', () => {
    const events = eventTypes();
    expect(events.map((e) => e.name)).toEqual(
      expect.arrayContaining(['DeployerEvent', 'CacheUploadEvent', 'CaddyEvent', 'CaddyRequestEvent']),
    );
    expect(events.filter((e) => /\bkind\??:/.test(e.text)).map((e) => `${e.file}: ${e.name}`)).toEqual([]);
  });
});
