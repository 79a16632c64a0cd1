import { DeployError } from '../errors.js';
import { ABSOLUTE_PATH_RE, SERVICE_NAME_RE } from '../manifest/patterns.js';
import { parseStorePath } from '../manifest/store-path.js';

/** Where per-service profiles live by default: one Nix profile per service, for rollback (docs/design.md). */
export const DEFAULT_PROFILES_DIR = '/nix/var/nix/profiles/biz';

/** Where per-service GC roots live by default (`/nix/var/nix/gcroots/biz/*`). */
export const DEFAULT_GCROOTS_DIR = '/nix/var/nix/gcroots/biz';

/** How many versions of a service stay installed (profile generations and GC roots; docs/design.md). */
export const DEFAULT_KEEP = 5;

/** The directories under which every service gets its profile and GC roots. */
export interface NixDirs {
  /** Default {@link DEFAULT_PROFILES_DIR}. */
  profilesDir?: string;
  /** Default {@link DEFAULT_GCROOTS_DIR}. */
  gcrootsDir?: string;
}

/** Where one service's versions live on a host. */
export interface ServiceLayout {
  service: string;
  /**
   * The profile symlink, `<profilesDir>/<service>.d/profile`; its generations are `profile-<n>-link` beside it.
   * The directory is the service's alone: a `.` never occurs in a service name, so no name reaches into it.
   */
  profile: string;
  /** The directory of the service's GC roots, one symlink per kept store path, named after its base name. */
  gcrootsDir: string;
  /**
   * Where the profile was before this layout: `<profilesDir>/<service>`, its generations `<service>-<n>-link`
   * among every other service's (so `web-1-link`, a valid service name, was also `web`'s first generation).
   * `pinServiceVersion` moves it to {@link ServiceLayout.profile} on first use, generations and GC roots kept.
   */
  legacyProfile?: string;
}

/** Suffix of a service's directory under the profiles directory: not a character of any service name. */
const SERVICE_DIR_SUFFIX = '.d';

/**
 * The profile and GC-root locations of `service`. The name becomes a file name, so it must be a manifest
 * service name (lowercase letters, digits, `-`): anything else, `../x` included, is refused with `NIX_INPUT`.
 */
export function serviceLayout(service: string, dirs: NixDirs = {}): ServiceLayout {
  if (!SERVICE_NAME_RE.test(service)) {
    throw new DeployError(
      'NIX_INPUT',
      `service name ${JSON.stringify(service)}: expected lowercase letters, digits and "-", starting with a letter`,
    );
  }
  const profilesDir = checkDir(dirs.profilesDir ?? DEFAULT_PROFILES_DIR, 'profilesDir');
  const gcrootsDir = checkDir(dirs.gcrootsDir ?? DEFAULT_GCROOTS_DIR, 'gcrootsDir');
  return {
    service,
    profile: `${profilesDir}/${service}${SERVICE_DIR_SUFFIX}/profile`,
    gcrootsDir: `${gcrootsDir}/${service}`,
    legacyProfile: `${profilesDir}/${service}`,
  };
}

/** The GC-root symlink that keeps `storePath` alive for the service of `layout`. */
export function gcRootPath(layout: ServiceLayout, storePath: string): string {
  const parsed = parseStorePath(storePath);
  if (!parsed)
    throw new DeployError('NIX_INPUT', `expected a top-level store path, found ${JSON.stringify(storePath)}`);
  return `${layout.gcrootsDir}/${parsed.hash}-${parsed.name}`;
}

function checkDir(dir: string, what: string): string {
  if (!ABSOLUTE_PATH_RE.test(dir)) {
    throw new DeployError(
      'NIX_INPUT',
      `${what}: expected an absolute path of plain segments without "..", found ${JSON.stringify(dir)}`,
    );
  }
  return dir;
}
