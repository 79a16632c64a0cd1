import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  compareGenerations,
  describeReplay,
  type GenerationVerdict,
  judgeGeneration,
  manifestDigest,
} from '../../src/manifest/index.js';

const A = `sha256:${'a'.repeat(64)}`;
const B = `sha256:${'b'.repeat(64)}`;

describe('manifestDigest', () => {
  it('is sha256 of the UTF-8 bytes, labelled', () => {
    expect(manifestDigest('')).toBe(
      'sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    );
    const text = '{"env":"café ☕"}\n';
    expect(manifestDigest(text)).toBe(
      `sha256:${createHash('sha256').update(Buffer.from(text, 'utf8')).digest('hex')}`,
    );
    expect(manifestDigest(`${text} `)).not.toBe(manifestDigest(text));
  });
});

describe('compareGenerations', () => {
  it.each([
    ['2025-01-15T12:34:56Z', '2025-01-15T12:34:56Z', 0],
    ['2025-01-15T12:34:56Z', '2025-01-15T12:34:56.000Z', 0],
    ['2025-01-15T12:34:56.1Z', '2025-01-15T12:34:56.100000000Z', 0],
    ['2025-01-15T12:34:56.0001Z', '2025-01-15T12:34:56Z', 1],
    ['2025-01-15T12:34:56.000000001Z', '2025-01-15T12:34:56Z', 1],
    ['2025-01-15T12:34:56.999Z', '2025-01-15T12:34:57Z', -1],
    ['2024-12-31T23:59:59.999999999Z', '2025-01-01T00:00:00Z', -1],
    ['0999-01-01T00:00:00Z', '1000-01-01T00:00:00Z', -1],
    ['9999-12-31T23:59:59Z', '2025-01-01T00:00:00Z', 1],
  ])('%s vs %s → %i', (a, b, order) => {
    expect(compareGenerations(a, b)).toBe(order);
    expect(compareGenerations(b, a)).toBe(-order || 0);
  });

  it('agrees with Date for millisecond timestamps (property)', () => {
    const instant = fc.date({
      min: new Date('0001-01-01T00:00:00Z'),
      max: new Date('9999-12-31T23:59:59Z'),
      noInvalidDate: true,
    });
    fc.assert(
      fc.property(instant, instant, (a, b) => {
        const expected = Math.sign(a.getTime() - b.getTime());
        expect(compareGenerations(a.toISOString(), b.toISOString())).toBe(expected || 0);
      }),
    );
  });

  it.each(['2025-01-15 12:34:56Z', '2025-01-15T12:34:56+00:00', '', 'yesterday', '+012025-01-15T12:34:56Z'])(
    'refuses %j, naming the field (MANIFEST_GENERATION)',
    (bad) => {
      expect(() => compareGenerations(bad, '2025-01-15T12:34:56Z')).toThrow(
        /^generation: expected an ISO-8601 UTC timestamp/,
      );
    },
  );
});

describe('judgeGeneration', () => {
  const at = (generation: string, digest = A) => ({ generation, digest });
  it.each<[string, Parameters<typeof judgeGeneration>[0], ReturnType<typeof at>, GenerationVerdict]>([
    ['nothing applied yet: anything', undefined, at('2000-01-01T00:00:00Z'), 'new'],
    ['a later generation', at('2025-01-15T12:34:56Z'), at('2025-01-15T12:34:56.001Z', B), 'new'],
    ['the same manifest read again', at('2025-01-15T12:34:56Z'), at('2025-01-15T12:34:56Z'), 'same'],
    ['an older generation', at('2025-01-15T12:34:56Z'), at('2024-06-01T00:00:00Z', B), 'stale'],
    ['an older generation, same digest', at('2025-01-15T12:34:56Z'), at('2024-06-01T00:00:00Z'), 'stale'],
    [
      'the same generation, other content',
      at('2025-01-15T12:34:56Z'),
      at('2025-01-15T12:34:56Z', B),
      'replayed',
    ],
    [
      'the same instant written otherwise is other content',
      at('2025-01-15T12:34:56Z'),
      at('2025-01-15T12:34:56.000Z', B),
      'replayed',
    ],
    [
      'state from before digests: the same generation is the same manifest',
      { generation: '2025-01-15T12:34:56Z' },
      at('2025-01-15T12:34:56Z', B),
      'same',
    ],
    [
      'state from before digests: an older generation is still stale',
      { generation: '2025-01-15T12:34:56Z' },
      at('2025-01-15T12:34:55Z'),
      'stale',
    ],
  ])('%s → %s', (_label, last, incoming, verdict) => {
    expect(judgeGeneration(last, incoming)).toBe(verdict);
    const message = describeReplay(verdict, last, incoming);
    if (verdict === 'new' || verdict === 'same') expect(message).toBeUndefined();
    else expect(message).toMatch(/^stale or replayed manifest: .*; nothing changed$/);
  });

  it('explains a refusal with both generations and the digests it compared', () => {
    const last = at('2025-01-15T12:34:56Z');
    expect(describeReplay('stale', last, at('2024-06-01T00:00:00Z', B))).toBe(
      'stale or replayed manifest: generation 2024-06-01T00:00:00Z is older than 2025-01-15T12:34:56Z, the last generation this host applied; nothing changed',
    );
    expect(describeReplay('replayed', last, at('2025-01-15T12:34:56Z', B))).toBe(
      'stale or replayed manifest: generation 2025-01-15T12:34:56Z is the one this host last applied, but its content differs (sha256:bbbbbbbbbbbb…, applied sha256:aaaaaaaaaaaa…); nothing changed',
    );
  });

  it('only ever moves forward: applying what it accepts never lets an earlier manifest back in (property)', () => {
    const generation = fc
      .date({
        min: new Date('2020-01-01T00:00:00Z'),
        max: new Date('2030-01-01T00:00:00Z'),
        noInvalidDate: true,
      })
      .map((d) => d.toISOString());
    const manifest = fc.record({ generation, digest: fc.constantFrom(A, B) });
    fc.assert(
      fc.property(fc.array(manifest, { maxLength: 30 }), (sequence) => {
        let last: { generation: string; digest: string } | undefined;
        const applied: { generation: string; digest: string }[] = [];
        for (const incoming of sequence) {
          const verdict = judgeGeneration(last, incoming);
          if (verdict === 'new') {
            last = incoming;
            applied.push(incoming);
          }
        }
        for (let i = 1; i < applied.length; i++) {
          const [before, after] = [applied[i - 1], applied[i]] as [typeof last & {}, typeof last & {}];
          expect(compareGenerations(after.generation, before.generation)).toBeGreaterThan(0);
        }
      }),
    );
  });
});
