import { describe, expect, it } from 'vitest';
import { formatLocation, parseLocation, toNixSubstituter } from '../../src/s3/index.js';

describe('parseLocation', () => {
  it.each([
    ['s3://omni-nix-cache/manifest.json', { kind: 's3', bucket: 'omni-nix-cache', key: 'manifest.json' }],
    ['s3://omni-nix-cache', { kind: 's3', bucket: 'omni-nix-cache', key: '' }],
    ['s3://omni-nix-cache/', { kind: 's3', bucket: 'omni-nix-cache', key: '' }],
    ['s3://b.example/prod/', { kind: 's3', bucket: 'b.example', key: 'prod/' }],
    [
      // Nix's own S3 URL style (docs/design.md): a bare endpoint host plus scheme.
      's3://omni-nix-cache/manifest.json?profile=digitalocean&scheme=https&endpoint=nyc3.digitaloceanspaces.com',
      {
        kind: 's3',
        bucket: 'omni-nix-cache',
        key: 'manifest.json',
        profile: 'digitalocean',
        endpoint: 'https://nyc3.digitaloceanspaces.com',
      },
    ],
    [
      's3://bkt/m.json?region=nyc3&endpoint=http://127.0.0.1:9000',
      { kind: 's3', bucket: 'bkt', key: 'm.json', region: 'nyc3', endpoint: 'http://127.0.0.1:9000' },
    ],
    ['file:///srv/deploy/manifest.json', { kind: 'file', path: '/srv/deploy/manifest.json' }],
    ['/srv/deploy/', { kind: 'file', path: '/srv/deploy' }],
    ['deploy/manifest.json', { kind: 'file', path: '/home/op/deploy/manifest.json' }],
    ['../shared/manifest.json', { kind: 'file', path: '/home/shared/manifest.json' }],
  ])('%s', (text, expected) => {
    expect(parseLocation(text, { cwd: '/home/op' })).toEqual(expected);
  });

  it.each([
    ['s3://Bucket/x', /bucket name/],
    ['s3://ab/x', /bucket name/],
    ['s3://a..b/x', /bucket name/],
    ['s3://bkt/../etc', /object key/],
    ['s3://bkt/a//b', /object key/],
    ['s3://bkt/x?regoin=us-east-1', /unknown parameter "regoin"; allowed: region, endpoint, profile, scheme/],
    ['s3://bkt/x?region=a&region=b', /twice/],
    ['s3://bkt/x?endpoint=evil.com/path', /endpoint/],
    ['s3://bkt/x?endpoint=h&scheme=ftp', /scheme/],
    ['s3://bkt/x?scheme=http', /only meaningful with endpoint/],
    ['s3://bkt/x?profile=a%2Fb', /profile/],
    ['s3://bkt/x?region=%zz', /percent-encoding/],
    ['file://host/etc/x', /file:\/\/\/absolute/],
    ['file:///srv/../etc/shadow', /"\." or "\.\." segments/],
    ['file:///srv/x?y', /query/],
    ['https://example.com/manifest.json', /s3:\/\/ or file:\/\//],
    ['relative/path', /absolute path/],
    ['', /non-empty/],
    [' s3://bkt/x', /surrounding spaces/],
    ['s3://bkt/x\n', /control characters/],
  ])('refuses %j', (text, message) => {
    expect(() => parseLocation(text)).toThrow(message);
  });

  it('does not echo query parameters (they may be secrets in other tools) in errors', () => {
    expect(() => parseLocation('s3://Bucket/x?token=SECRET')).toThrow(/^location "s3:\/\/Bucket\/x\?\.\.\."/);
  });
});

describe('toNixSubstituter and formatLocation', () => {
  it.each([
    [
      's3://omni-nix-cache?profile=digitalocean&scheme=https&endpoint=nyc3.digitaloceanspaces.com',
      's3://omni-nix-cache?endpoint=nyc3.digitaloceanspaces.com&scheme=https&profile=digitalocean',
    ],
    ['s3://bkt/?region=eu-west-1', 's3://bkt?region=eu-west-1'],
    ['s3://bkt?endpoint=http://127.0.0.1:9000', 's3://bkt?endpoint=127.0.0.1:9000&scheme=http'],
    ['/var/cache/nix', 'file:///var/cache/nix'],
  ])('%s → %s', (text, substituter) => {
    expect(toNixSubstituter(parseLocation(text))).toBe(substituter);
  });

  it('refuses a cache under a key prefix: Nix reads caches at the bucket root', () => {
    expect(() => toNixSubstituter(parseLocation('s3://bkt/cache/'))).toThrow(/root of its bucket/);
  });

  it('writes a location back so that it parses to the same thing', () => {
    for (const text of [
      's3://bkt/p/m.json?region=nyc3&endpoint=https://h.example&profile=do',
      'file:///srv/m.json',
    ]) {
      const parsed = parseLocation(text);
      expect(parseLocation(formatLocation(parsed))).toEqual(parsed);
    }
  });
});
