export {
  isStorePath,
  NIX_BASE32_CHARS,
  parseStorePath,
  STORE_PATH_RE,
  type StorePath,
} from '../manifest/store-path.js';
export { type ExportClosureOptions, exportClosure } from './export.js';
export {
  type ProfileGeneration,
  parseGenerationLinks,
  parseSymlinkListing,
  type SymlinkEntry,
} from './generations.js';
export {
  DEFAULT_GCROOTS_DIR,
  DEFAULT_KEEP,
  DEFAULT_PROFILES_DIR,
  gcRootPath,
  type NixDirs,
  type ServiceLayout,
  serviceLayout,
} from './layout.js';
export { type Narinfo, parseNarinfo } from './narinfo.js';
export { createNix, type NixOptions } from './nix.js';
export { type PathInfo, parsePathInfoJson } from './path-info.js';
export { type PinOptions, type PinResult, pinServiceVersion } from './pin.js';
export { type ProfileListing, type ProfileMovePlan, planProfileMove } from './profile-move.js';
export { planRetention, type RetentionInput, type RetentionPlan } from './retention.js';
export {
  type PublicKey,
  parsePublicKey,
  publicKeyFromSecretKey,
  signatureFingerprint,
  verifySignatures,
} from './signing.js';
export { narHashForFingerprint, trustedSigners, untrustedError, untrustedPaths } from './trust.js';
export type { CopyFromOptions, NarCompression, Nix } from './types.js';
