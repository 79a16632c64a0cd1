import { DeployError } from '../errors.js';
import { NIX_BASE32_CHARS, parseStorePath } from '../manifest/store-path.js';

/** A parsed `.narinfo` file: how a binary cache describes one store path. */
export interface Narinfo {
  storePath: string;
  /** Where the NAR is, relative to the cache root: always `nar/<base32>.nar[.ext]` (checked). */
  url: string;
  compression: string;
  fileSize?: number;
  narHash: string;
  narSize: number;
  /** Base names of referenced store paths (`<hash>-<name>`), as the file lists them. */
  references: string[];
  deriver?: string;
  /** Signatures `keyname:base64`. */
  signatures: string[];
}

const NAR_URL_RE = new RegExp(`^nar/[${NIX_BASE32_CHARS}]{32,64}\\.nar(?:\\.(?:xz|bz2|zst|br|gz|lz4))?$`);

/**
 * Parses a `.narinfo`. Strict where a value later becomes a file or object key: `URL` must be
 * `nar/<base32>.nar[.ext]` (so `../cache-priv-key.pem` can never be read or uploaded) and references must be
 * store-path base names. `where` names the file in error messages. Throws `CACHE_INVALID`.
 */
export function parseNarinfo(text: string, where = 'narinfo'): Narinfo {
  const fields = new Map<string, string>();
  const signatures: string[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const colon = line.indexOf(': ');
    if (colon <= 0) invalid(where, `expected "Key: value" lines, found ${JSON.stringify(line.slice(0, 80))}`);
    const key = line.slice(0, colon);
    const value = line.slice(colon + 2);
    if (key === 'Sig') signatures.push(value);
    else if (fields.has(key)) invalid(where, `${key} appears twice`);
    else fields.set(key, value);
  }
  const storePath = required(fields, 'StorePath', where);
  if (!parseStorePath(storePath))
    invalid(where, `StorePath: expected a store path, found ${JSON.stringify(storePath)}`);
  const url = required(fields, 'URL', where);
  if (!NAR_URL_RE.test(url))
    invalid(where, `URL: expected nar/<base32>.nar[.xz|.zst|...], found ${JSON.stringify(url)}`);
  const references = (fields.get('References') ?? '').split(' ').filter((ref) => ref !== '');
  for (const ref of references) {
    if (!parseStorePath(`/nix/store/${ref}`))
      invalid(where, `References: expected store path base names, found ${JSON.stringify(ref)}`);
  }
  const deriver = fields.get('Deriver');
  const fileSize = fields.get('FileSize');
  return {
    storePath,
    url,
    compression: fields.get('Compression') ?? 'bzip2', // Nix's default when the field is absent
    ...(fileSize === undefined ? {} : { fileSize: count(fileSize, 'FileSize', where) }),
    narHash: required(fields, 'NarHash', where),
    narSize: count(required(fields, 'NarSize', where), 'NarSize', where),
    references,
    ...(deriver === undefined || deriver === 'unknown-deriver' ? {} : { deriver }),
    signatures,
  };
}

function required(fields: Map<string, string>, key: string, where: string): string {
  const value = fields.get(key);
  if (value === undefined || value === '') invalid(where, `${key}: missing`);
  return value;
}

function count(value: string, key: string, where: string): number {
  if (!/^[0-9]{1,15}$/.test(value))
    invalid(where, `${key}: expected a byte count, found ${JSON.stringify(value)}`);
  return Number(value);
}

function invalid(where: string, message: string): never {
  throw new DeployError('CACHE_INVALID', `${where}: ${message}`);
}
