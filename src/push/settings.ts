import { DEFAULT_SECRETS_DIR, type ManifestIssue } from '../manifest/validate.js';
import { type OptionSources, type OptionSpec, resolveOptions } from '../options.js';
import { DEFAULT_BUILD_COMMAND } from './build.js';

/** What `push` needs to know, from flags, environment and config file (`deploy/push.json`). */
export interface PushSettings {
  /** The manifest: `s3://bucket/manifest.json?region=&endpoint=&profile=`, `file:///...` or a path. */
  manifest: string;
  /** The binary cache to upload closures to (`s3://bucket?...`, `file:///dir`); none: the build tool uploads. */
  cache: string | undefined;
  /** The Nix secret key file closures are signed with (NIX_CACHE_KEY, as for `bild --cache`). Never shown or uploaded. */
  keyFile: string | undefined;
  /** The build command; `{target}` is replaced by the target (as one argument). */
  build: string;
  /** Where service specs live: `<specDir>/<service>.json`. */
  specDir: string;
  secretsDir: string;
  /** `--wait`: give up after this long. */
  timeoutMs: number;
  /** `--wait`: pause between status reads. */
  pollMs: number;
}

/** push's settings table (see {@link resolveOptions}). */
export const PUSH_SETTINGS: readonly (OptionSpec & { key: keyof PushSettings })[] = [
  { key: 'manifest', flag: 'manifest', env: 'PUSH_MANIFEST', kind: 'string', required: true },
  { key: 'cache', flag: 'cache', env: 'PUSH_CACHE', kind: 'string' },
  { key: 'keyFile', flag: 'key-file', env: 'NIX_CACHE_KEY', kind: 'string' },
  { key: 'build', flag: 'build', env: 'PUSH_BUILD', kind: 'string', default: DEFAULT_BUILD_COMMAND },
  { key: 'specDir', flag: 'spec-dir', env: 'PUSH_SPEC_DIR', kind: 'string', default: 'deploy' },
  {
    key: 'secretsDir',
    flag: 'secrets-dir',
    env: 'PUSH_SECRETS_DIR',
    kind: 'path',
    default: DEFAULT_SECRETS_DIR,
  },
  { key: 'timeoutMs', flag: 'timeout', env: 'PUSH_TIMEOUT', kind: 'duration', default: 300_000 },
  { key: 'pollMs', flag: 'poll', env: 'PUSH_POLL', kind: 'duration', default: 2000 },
];

/** Resolves push's settings; every problem at once, each naming its source. */
export function resolvePushSettings(
  sources: Omit<OptionSources, 'defaults'>,
): { ok: true; settings: PushSettings } | { ok: false; issues: ManifestIssue[] } {
  const result = resolveOptions(PUSH_SETTINGS, sources);
  return result.ok ? { ok: true, settings: result.values as unknown as PushSettings } : result;
}
