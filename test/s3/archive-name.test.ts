import { describe, expect, it } from 'vitest';
import { archiveKey, formatArchiveId, parseArchiveId } from '../../src/s3/index.js';

describe('archive names', () => {
  it('are compact UTC with milliseconds, colon-free, and sort in time order', () => {
    expect(formatArchiveId(new Date('2025-01-15T12:34:56.000Z'))).toBe('20250115T123456.000Z');
    expect(archiveKey('20250115T123456.000Z')).toBe('manifests/manifest-20250115T123456.000Z.json');
    const dates = ['2025-01-15T12:34:56.999Z', '2025-01-15T12:34:57.000Z', '2026-01-01T00:00:00.000Z'];
    const ids = dates.map((d) => formatArchiveId(new Date(d)));
    expect([...ids].sort()).toEqual(ids);
  });

  it.each([
    ['20250115T123456.789Z', '2025-01-15T12:34:56.789Z'],
    ['manifest-20250115T123456.789Z.json', '2025-01-15T12:34:56.789Z'],
    ['manifests/manifest-20250115T123456.789Z.json', '2025-01-15T12:34:56.789Z'],
    ['20240229T000000.000Z', '2024-02-29T00:00:00.000Z'],
  ])('reads %s', (text, iso) => {
    expect(parseArchiveId(text)?.date.toISOString()).toBe(iso);
  });

  it.each([
    ['20250115T123456Z'], // no milliseconds: the format is exact
    ['20250229T000000.000Z'], // not a leap year
    ['20251301T000000.000Z'],
    ['20250115T246000.000Z'],
    ['2025-01-15T12:34:56.789Z'],
    ['manifest-20250115T123456.789Z.json.bak'],
    ['../manifest-20250115T123456.789Z.json'],
    ['other-20250115T123456.789Z.json'],
  ])('refuses %s', (text) => {
    expect(parseArchiveId(text)).toBeUndefined();
  });

  it('names archives after the manifest stem', () => {
    expect(archiveKey('20250115T123456.789Z', 'staging')).toBe('manifests/staging-20250115T123456.789Z.json');
    expect(parseArchiveId('staging-20250115T123456.789Z.json', 'staging')?.id).toBe('20250115T123456.789Z');
  });
});
