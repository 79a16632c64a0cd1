import { DEFAULT_SECRETS_DIR, type ManifestIssue } from '../manifest/validate.js';
import { type KeySource, type OptionSources, type OptionSpec, resolveOptions } from '../options.js';
import { DEFAULT_BUILD_COMMAND } from './build.js';

/** What `push` needs to know, from flags, environment and config file (`deploy/push.json`). */
export interface PushSettings {
  /** The manifest: `s3://bucket/manifest.json?region=&endpoint=&profile=`, `file:///...` or a path. */
  manifest: string;
  /** Where hosts write their status (`<host>.json` there); `undefined`: `status/` beside the manifest. */
  status: string | undefined;
  /** The binary cache to upload closures to (`s3://bucket?...`, `file:///dir`); none: the build tool uploads. */
  cache: string | undefined;
  /**
   * The Nix secret key closures are signed with: a file, standard input, or the key itself from NIX_CACHE_KEY.
   * Never printed or uploaded.
   */
  keyFile: KeySource | undefined;
  /**
   * Public keys accepted on the manifest push builds on (the current one, an archive to restore), besides the
   * signing key's own: the old key during a key rotation.
   */
  trustedPublicKeys: string[];
  /** Build on a manifest that carries no signature: migration from unsigned manifests only. */
  insecureAllowUnsignedManifest: boolean;
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

/** push's settings table (see {@link resolveOptions}); the help text and docs/cli.md are generated from it. */
export const PUSH_SETTINGS: readonly (OptionSpec & { key: keyof PushSettings })[] = [
  {
    key: 'manifest',
    flag: 'manifest',
    env: 'PUSH_MANIFEST',
    kind: 'location',
    required: true,
    value: 'LOCATION',
    description:
      'where the manifest lives: s3://bucket/manifest.json?region=&endpoint=&profile=, file:///path/manifest.json or a path',
  },
  {
    key: 'status',
    flag: 'status',
    env: 'PUSH_STATUS',
    kind: 'location',
    value: 'LOCATION',
    defaultText: 'status/ beside the manifest',
    description:
      "where the hosts write their status, <host>.json in this directory or prefix (s3://bucket/prefix/?region=&endpoint=&profile=, file:///dir or a path): the hosts' --status",
  },
  {
    key: 'cache',
    flag: 'cache',
    env: 'PUSH_CACHE',
    kind: 'location',
    value: 'LOCATION',
    description:
      'the binary cache closures are uploaded to (s3://bucket?region=&endpoint=&profile=, file:///dir or a path); unset: the build command uploads',
  },
  {
    key: 'keyFile',
    flag: 'key-file',
    env: 'NIX_CACHE_KEY',
    kind: 'key-file',
    value: 'FILE',
    description:
      'the Nix secret key closures and every manifest written are signed with: a file, or - for standard input; NIX_CACHE_KEY may also hold the key itself. Never printed or uploaded',
  },
  {
    key: 'trustedPublicKeys',
    flag: 'trusted-public-key',
    env: 'PUSH_TRUSTED_PUBLIC_KEYS',
    kind: 'list',
    default: [],
    value: 'KEY',
    description:
      "a public key (name:base64) whose signature push accepts on the manifest it builds on (the current one, an archive to restore) besides its own key's: the old key during a key rotation; the flag may be repeated, the environment variable and config key take a list",
  },
  {
    key: 'insecureAllowUnsignedManifest',
    flag: 'insecure-allow-unsigned-manifest',
    env: 'PUSH_INSECURE_ALLOW_UNSIGNED_MANIFEST',
    kind: 'boolean',
    default: false,
    description:
      'build on a current manifest (or restore an archive) that carries no signature: for the first signed push after unsigned ones only, as push cannot tell who wrote it; what push writes is signed regardless',
  },
  {
    key: 'build',
    flag: 'build',
    env: 'PUSH_BUILD',
    kind: 'string',
    default: DEFAULT_BUILD_COMMAND,
    value: 'COMMAND',
    description:
      'the build command: {target} is replaced by the target (as one argument); it must print the store path',
  },
  {
    key: 'specDir',
    flag: 'spec-dir',
    env: 'PUSH_SPEC_DIR',
    kind: 'path',
    default: 'deploy',
    value: 'DIR',
    defaultText: 'deploy (in the working directory)',
    description: 'where service specs live: <dir>/<service>.json',
  },
  {
    key: 'secretsDir',
    flag: 'secrets-dir',
    env: 'PUSH_SECRETS_DIR',
    kind: 'path',
    default: DEFAULT_SECRETS_DIR,
    value: 'DIR',
    description: "the directory every service's envFile and credentials must be inside (as on the hosts)",
  },
  {
    key: 'timeoutMs',
    flag: 'timeout',
    env: 'PUSH_TIMEOUT',
    kind: 'duration',
    default: 300_000,
    value: 'DURATION',
    description: '--wait gives up after this long',
  },
  {
    key: 'pollMs',
    flag: 'poll',
    env: 'PUSH_POLL',
    kind: 'duration',
    default: 2000,
    value: 'DURATION',
    description: "--wait's pause between reads of the hosts' status",
  },
];

/** Resolves push's settings; every problem at once, each naming its source. */
export function resolvePushSettings(
  sources: Omit<OptionSources, 'defaults'>,
): { ok: true; settings: PushSettings } | { ok: false; issues: ManifestIssue[] } {
  const result = resolveOptions(PUSH_SETTINGS, sources);
  return result.ok ? { ok: true, settings: result.values as unknown as PushSettings } : result;
}
