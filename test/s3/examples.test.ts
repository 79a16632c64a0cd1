import { readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseArchiveId } from '../../src/s3/index.js';

describe('examples/manifests', () => {
  it('names every archived example the way the manifest store does', () => {
    const names = readdirSync(new URL('../../examples/manifests/', import.meta.url));
    expect(names.length).toBeGreaterThan(0);
    for (const name of names) expect(parseArchiveId(name), name).toBeDefined();
  });
});
