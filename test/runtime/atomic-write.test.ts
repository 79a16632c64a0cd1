import { mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { copyFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { replaceFileAtomic, writeFileAtomic } from '../../src/runtime/atomic-write.js';

const dir = () => mkdtempSync(join(tmpdir(), 'omni-atomic-'));
const umask = process.umask();
afterEach(() => {
  process.umask(umask);
});

describe('writeFileAtomic', () => {
  it('writes the content, creating parent directories, and leaves no temporary file', async () => {
    const d = dir();
    const path = join(d, 'a', 'b', 'state.json');
    await writeFileAtomic(path, '{"x":1}\n');
    expect(readFileSync(path, 'utf8')).toBe('{"x":1}\n');
    expect(readdirSync(join(d, 'a', 'b'))).toEqual(['state.json']);
    await writeFileAtomic(path, Buffer.from([0, 1, 2]));
    expect([...readFileSync(path)]).toEqual([0, 1, 2]);
  });

  it.each([0o600, 0o644, 0o640])('sets mode %o exactly, whatever the umask', async (mode) => {
    process.umask(0o077);
    const path = join(dir(), 'f');
    await writeFileAtomic(path, 'x', { mode });
    expect(statSync(path).mode & 0o777).toBe(mode);
    // Replacing keeps the asked mode too (the new inode is the temporary file's).
    await writeFileAtomic(path, 'y', { mode });
    expect(statSync(path).mode & 0o777).toBe(mode);
  });

  it('creates missing parent directories with dirMode', async () => {
    process.umask(0o022);
    const d = dir();
    await writeFileAtomic(join(d, 'private', 'f'), 'x', { dirMode: 0o700 });
    expect(statSync(join(d, 'private')).mode & 0o777).toBe(0o700);
  });

  it('ignores temporary files a crash left behind, and is not confused by one with its own name pattern', async () => {
    const d = dir();
    const path = join(d, 'f');
    await writeFileAtomic(path, 'old');
    writeFileSync(join(d, `.f.${process.pid}-000000000000.tmp`), 'torn');
    await writeFileAtomic(path, 'new');
    expect(readFileSync(path, 'utf8')).toBe('new');
  });

  it('leaves the old file whole and no temporary file when writing fails', async () => {
    const d = dir();
    const path = join(d, 'f');
    await writeFileAtomic(path, 'old');
    const error = await replaceFileAtomic(path, async (temp) => {
      writeFileSync(temp, 'half');
      throw new Error('disk full');
    }).catch((e: Error) => e);
    expect((error as Error).message).toBe('disk full');
    expect(readFileSync(path, 'utf8')).toBe('old');
    expect(readdirSync(d)).toEqual(['f']);
  });

  it('throws the file system error, untouched, when the directory cannot be made', async () => {
    const d = dir();
    writeFileSync(join(d, 'file'), 'x');
    const error = await writeFileAtomic(join(d, 'file', 'f'), 'x').catch((e: NodeJS.ErrnoException) => e);
    expect((error as NodeJS.ErrnoException).code).toMatch(/^(ENOTDIR|EEXIST)$/);
  });

  it('concurrent writers each replace the whole file: the result is one of them, never a mix', async () => {
    const d = dir();
    const path = join(d, 'f');
    const bodies = Array.from({ length: 20 }, (_, i) => String(i).repeat(50_000));
    await Promise.all(bodies.map((body) => writeFileAtomic(path, body)));
    expect(bodies).toContain(readFileSync(path, 'utf8'));
    expect(readdirSync(d)).toEqual(['f']);
  });
});

describe('replaceFileAtomic', () => {
  it('lets the caller fill the temporary file (a copy, a stream) in the same directory', async () => {
    const d = dir();
    const source = join(d, 'source');
    writeFileSync(source, 'copied');
    const seen: string[] = [];
    await replaceFileAtomic(join(d, 'out', 'target'), async (temp) => {
      seen.push(temp);
      await copyFile(source, temp);
    });
    expect(readFileSync(join(d, 'out', 'target'), 'utf8')).toBe('copied');
    expect(seen[0]).toMatch(new RegExp(`^${d}/out/\\.target\\.\\d+-[0-9a-f]{12}\\.tmp$`));
    expect(readdirSync(join(d, 'out'))).toEqual(['target']);
  });
});
