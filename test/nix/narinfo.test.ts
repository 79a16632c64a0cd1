import { describe, expect, it } from 'vitest';
import { parseNarinfo } from '../../src/nix/index.js';
import { storePath } from '../builders.js';

const app = storePath('app-1.0');
const lib = storePath('lib-2.0');
const HASH = '0igg0jhyjk9k5y7i46d45ykamzi2kyimiq66zgf2p17v60rp1svi';

function narinfo(fields: Record<string, string | undefined> = {}): string {
  const all: Record<string, string | undefined> = {
    StorePath: app,
    URL: `nar/${HASH}.nar.xz`,
    Compression: 'xz',
    FileHash: `sha256:${HASH}`,
    FileSize: '260',
    NarHash: 'sha256:1zwsi29ympbp0v5d68w9mnq3c5nhm61lpj8zcsn5vlslj5hfz1fq',
    NarSize: '568',
    References: lib.slice('/nix/store/'.length),
    Deriver: 'vcp0lnhhc73b0yznri2zhznjq7vc2x5a-app-1.0.drv',
    Sig: 'k1:abc==',
    ...fields,
  };
  return Object.entries(all)
    .filter(([, value]) => value !== undefined)
    .map(([key, value]) => `${key}: ${value}`)
    .join('\n');
}

describe('parseNarinfo', () => {
  it('reads what nix copy --to file:// writes', () => {
    expect(parseNarinfo(`${narinfo()}\nSig: k2:def==\n`)).toEqual({
      storePath: app,
      url: `nar/${HASH}.nar.xz`,
      compression: 'xz',
      fileSize: 260,
      narHash: 'sha256:1zwsi29ympbp0v5d68w9mnq3c5nhm61lpj8zcsn5vlslj5hfz1fq',
      narSize: 568,
      references: [lib.slice('/nix/store/'.length)],
      deriver: 'vcp0lnhhc73b0yznri2zhznjq7vc2x5a-app-1.0.drv',
      signatures: ['k1:abc==', 'k2:def=='],
    });
  });

  it('accepts an unsigned narinfo with no references (the caller decides about signatures)', () => {
    const info = parseNarinfo(narinfo({ Sig: undefined, References: '' }));
    expect(info.signatures).toEqual([]);
    expect(info.references).toEqual([]);
  });

  it.each([
    ['URL: ../cache-priv-key.pem', { URL: '../cache-priv-key.pem' }, /URL/],
    ['URL: nar/../../etc/shadow', { URL: 'nar/../../etc/shadow.nar' }, /URL/],
    ['URL: absolute', { URL: '/etc/passwd' }, /URL/],
    ['URL: another directory', { URL: `log/${HASH}.nar` }, /URL/],
    ['a StorePath outside the store', { StorePath: '/etc/passwd' }, /StorePath/],
    ['a reference with a slash', { References: '../../etc' }, /References/],
    ['a NarSize that is not a number', { NarSize: '1e9' }, /NarSize/],
    ['a missing NarHash', { NarHash: undefined }, /NarHash: missing/],
  ])('refuses %s', (_label, fields, message) => {
    expect(() => parseNarinfo(narinfo(fields), 'cache/x.narinfo')).toThrow(message);
  });

  it('refuses a repeated field and lines that are not "Key: value"', () => {
    expect(() => parseNarinfo(`${narinfo()}\nURL: nar/${HASH}.nar`)).toThrow(/twice/);
    expect(() => parseNarinfo(`${narinfo()}\ngarbage`)).toThrow(/Key: value/);
  });
});
