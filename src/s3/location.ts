import { fileURLToPath } from 'node:url';
import { DeployError } from '../errors.js';
import { CONTROL_CHARS_RE } from '../manifest/patterns.js';
import { checkObjectKey } from './keys.js';

/** Where a manifest store or a binary cache lives. */
export type Location = S3Location | FileLocation;

/** An S3 (or S3-compatible: DigitalOcean Spaces, MinIO, ...) bucket and key. */
export interface S3Location {
  kind: 's3';
  bucket: string;
  /** The key or key prefix inside the bucket, without a leading `/`; may be empty. */
  key: string;
  region?: string;
  /** Full endpoint URL, e.g. `https://nyc3.digitaloceanspaces.com`. Unset: AWS. */
  endpoint?: string;
  /** A named profile of the AWS credentials/config files. Unset: the SDK's default chain. */
  profile?: string;
}

/** A local directory (demos, tests, air-gapped hosts). */
export interface FileLocation {
  kind: 'file';
  /** Absolute, normalised path. */
  path: string;
}

/** Options of {@link parseLocation}. */
export interface ParseLocationOptions {
  /** Directory that relative plain paths are resolved against; without it they are refused. */
  cwd?: string;
}

const PARAMS = ['region', 'endpoint', 'profile', 'scheme'] as const;
const BUCKET_RE = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
const REGION_RE = /^[a-z0-9][a-z0-9-]{0,30}$/;
const PROFILE_RE = /^[A-Za-z0-9_.+-]{1,64}$/;
const HOST_PORT_RE = /^[A-Za-z0-9.-]+(?::[0-9]{1,5})?$/;

/**
 * Parses a location: `s3://bucket/key?region=...&endpoint=...&profile=...` (Nix's spelling `scheme=https`
 * with a bare endpoint host works too), `file:///dir/manifest.json`, or a plain path. Unknown query parameters
 * are errors (a typo like `regoin` must not silently mean "AWS"). Throws `S3_LOCATION`.
 */
export function parseLocation(text: string, options: ParseLocationOptions = {}): Location {
  if (CONTROL_CHARS_RE.test(text) || text.trim() !== text || text === '') {
    throw bad(text, 'expected a non-empty location without control characters or surrounding spaces');
  }
  if (text.startsWith('s3://')) return parseS3(text);
  if (text.startsWith('file:')) {
    if (!text.startsWith('file:///')) throw bad(text, 'expected file:///absolute/path');
    if (/(^|\/)\.\.?(\/|$)/.test(text.slice('file://'.length)))
      throw bad(text, 'expected a path without "." or ".." segments');
    if (/[?#]/.test(text)) throw bad(text, 'expected no query or fragment in a file:// URL');
    return { kind: 'file', path: normalise(fileURLToPath(text)) };
  }
  if (/^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(text))
    throw bad(text, 'expected an s3:// or file:// URL or a path');
  if (text.startsWith('/')) return { kind: 'file', path: normalise(text) };
  if (options.cwd === undefined || !options.cwd.startsWith('/')) {
    throw bad(text, 'expected an absolute path (a relative one needs a working directory)');
  }
  return { kind: 'file', path: normalise(`${options.cwd}/${text}`) };
}

function parseS3(text: string): S3Location {
  const match = /^s3:\/\/([^/?#]*)(?:\/([^?#]*))?(?:\?([^#]*))?$/.exec(text);
  if (!match) throw bad(text, 'expected s3://bucket/key?region=...&endpoint=...&profile=...');
  const [, bucket = '', key = '', query] = match;
  if (!BUCKET_RE.test(bucket) || bucket.includes('..')) {
    throw bad(
      text,
      `expected a bucket name of 3-63 lowercase letters, digits, "." and "-", found ${JSON.stringify(bucket)}`,
    );
  }
  const trimmedKey = key.replace(/\/+$/, '');
  if (trimmedKey !== '') {
    try {
      checkObjectKey(trimmedKey);
    } catch (cause) {
      throw bad(text, (cause as Error).message);
    }
  }
  const params = new Map<string, string>();
  for (const pair of query === undefined || query === '' ? [] : query.split('&')) {
    const eq = pair.indexOf('=');
    const name = eq < 0 ? pair : pair.slice(0, eq);
    let value = '';
    try {
      value = eq < 0 ? '' : decodeURIComponent(pair.slice(eq + 1));
    } catch {
      throw bad(text, `parameter ${name}: malformed percent-encoding`);
    }
    if (!(PARAMS as readonly string[]).includes(name)) {
      throw bad(text, `unknown parameter ${JSON.stringify(name)}; allowed: ${PARAMS.join(', ')}`);
    }
    if (params.has(name)) throw bad(text, `parameter ${name} given twice`);
    params.set(name, value);
  }
  const region = params.get('region');
  if (region !== undefined && !REGION_RE.test(region))
    throw bad(text, `region: expected e.g. us-east-1 or nyc3, found ${JSON.stringify(region)}`);
  const profile = params.get('profile');
  if (profile !== undefined && !PROFILE_RE.test(profile))
    throw bad(text, `profile: expected a profile name, found ${JSON.stringify(profile)}`);
  const endpoint = endpointUrl(text, params.get('endpoint'), params.get('scheme'));
  return {
    kind: 's3',
    bucket,
    key: key === '' ? '' : key.endsWith('/') ? `${trimmedKey}/` : trimmedKey,
    ...(region === undefined ? {} : { region }),
    ...(endpoint === undefined ? {} : { endpoint }),
    ...(profile === undefined ? {} : { profile }),
  };
}

function endpointUrl(
  text: string,
  endpoint: string | undefined,
  scheme: string | undefined,
): string | undefined {
  if (scheme !== undefined && scheme !== 'http' && scheme !== 'https')
    throw bad(text, `scheme: expected http or https, found ${JSON.stringify(scheme)}`);
  if (endpoint === undefined) {
    if (scheme !== undefined) throw bad(text, 'scheme: only meaningful with endpoint');
    return undefined;
  }
  const full = /^https?:\/\//.test(endpoint)
    ? endpoint.replace(/\/+$/, '')
    : `${scheme ?? 'https'}://${endpoint}`;
  const hostPort = full.replace(/^https?:\/\//, '');
  if (!HOST_PORT_RE.test(hostPort))
    throw bad(
      text,
      `endpoint: expected host[:port] or http(s)://host[:port], found ${JSON.stringify(endpoint)}`,
    );
  if (scheme !== undefined && !full.startsWith(`${scheme}://`))
    throw bad(text, 'scheme: contradicts the endpoint URL');
  return full;
}

function normalise(path: string): string {
  const out: string[] = [];
  for (const segment of path.split('/')) {
    if (segment === '' || segment === '.') continue;
    if (segment === '..') out.pop();
    else out.push(segment);
  }
  return `/${out.join('/')}`;
}

/** Writes a location back as a URL (`s3://...` with its parameters, or `file:///...`). */
export function formatLocation(location: Location): string {
  if (location.kind === 'file') return `file://${location.path}`;
  const params = [
    location.region === undefined ? undefined : `region=${location.region}`,
    location.endpoint === undefined ? undefined : `endpoint=${location.endpoint}`,
    location.profile === undefined ? undefined : `profile=${location.profile}`,
  ].filter((p) => p !== undefined);
  return `s3://${location.bucket}/${location.key}${params.length > 0 ? `?${params.join('&')}` : ''}`;
}

/**
 * The substituter URL Nix needs to pull from a cache location: `s3://bucket?region=&endpoint=host&scheme=&profile=`
 * (Nix wants the endpoint as a bare host plus `scheme`) or `file:///dir`. Nix's S3 store has no key prefix, so
 * an S3 cache must be at the bucket's root (`S3_LOCATION` otherwise).
 */
export function toNixSubstituter(location: Location): string {
  if (location.kind === 'file') return `file://${location.path}`;
  if (location.key.replace(/\/+$/, '') !== '') {
    throw new DeployError(
      'S3_LOCATION',
      `${formatLocation(location)}: a Nix binary cache must be at the root of its bucket, found key prefix ${JSON.stringify(location.key)}`,
    );
  }
  const params: string[] = [];
  if (location.region !== undefined) params.push(`region=${location.region}`);
  if (location.endpoint !== undefined) {
    const [scheme, host] = location.endpoint.split('://') as [string, string];
    params.push(`endpoint=${host}`, `scheme=${scheme}`);
  }
  if (location.profile !== undefined) params.push(`profile=${location.profile}`);
  return `s3://${location.bucket}${params.length > 0 ? `?${params.join('&')}` : ''}`;
}

function bad(text: string, message: string): DeployError {
  // Locations can carry credentials in other tools' syntax (user:pass@): show only the scheme and host part.
  const shown = text.replace(/\?.*$/, '?...').slice(0, 200);
  return new DeployError('S3_LOCATION', `location ${JSON.stringify(shown)}: ${message}`);
}
