import { DeployError } from '../errors.js';
import { isStorePath } from '../manifest/store-path.js';

/** What Nix knows about one valid store path (`nix path-info --json`). */
export interface PathInfo {
  /** The store path. */
  path: string;
  /** `sha256:...` or `sha256-...` hash of the path's NAR serialisation, as Nix printed it. */
  narHash: string;
  /** Size of the NAR serialisation in bytes. */
  narSize: number;
  /** Store paths this path refers to (may include itself). */
  references: string[];
  /** Signatures `keyname:base64`; empty when unsigned. */
  signatures: string[];
  /** The derivation that built it, when known. */
  deriver?: string;
}

/**
 * Parses the output of `nix path-info --json`: the array Nix 2.8 prints and the object keyed by store path that
 * Nix >= 2.19 prints. Entries Nix marks invalid (`"valid": false`, or `null` in the map shape) are left out, so
 * the result lists exactly the valid paths. Throws `NIX_OUTPUT` on anything else: a changed format must be a
 * loud error, not an empty closure.
 */
export function parsePathInfoJson(text: string): PathInfo[] {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (cause) {
    throw new DeployError('NIX_OUTPUT', 'nix path-info --json: expected JSON output, found something else', {
      cause,
      details: { output: text.slice(0, 200) },
    });
  }
  const entries: [string | undefined, unknown][] = Array.isArray(value)
    ? value.map((entry) => [undefined, entry])
    : isRecord(value)
      ? Object.entries(value)
      : fail(`expected an array (Nix < 2.19) or an object keyed by store path, found ${typeof value}`);
  const infos: PathInfo[] = [];
  for (const [key, entry] of entries) {
    if (entry === null) continue; // >= 2.19: an invalid path maps to null
    if (!isRecord(entry)) fail(`expected an object for ${key ?? 'an entry'}, found ${typeof entry}`);
    if (entry.valid === false) continue; // 2.8: `{ path, valid: false }`
    const path = key ?? entry.path;
    if (typeof path !== 'string' || !isStorePath(path)) fail(`expected a store path, found ${String(path)}`);
    const { narHash, narSize, references, signatures, deriver } = entry;
    if (typeof narHash !== 'string') fail(`${path}: expected narHash to be a string`);
    if (typeof narSize !== 'number') fail(`${path}: expected narSize to be a number`);
    if (!isStringArray(references)) fail(`${path}: expected references to be a list of store paths`);
    if (signatures !== undefined && !isStringArray(signatures))
      fail(`${path}: expected signatures to be a list`);
    infos.push({
      path,
      narHash,
      narSize,
      references: references.map((ref) => (ref.startsWith('/') ? ref : `/nix/store/${ref}`)),
      signatures: signatures ?? [],
      ...(typeof deriver === 'string' ? { deriver } : {}),
    });
  }
  return infos;
}

function fail(message: string): never {
  throw new DeployError('NIX_OUTPUT', `nix path-info --json: ${message}`);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isStringArray(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((item) => typeof item === 'string');
}
