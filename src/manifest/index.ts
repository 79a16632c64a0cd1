export { describeValue, formatPath } from './describe.js';
export {
  diffManifests,
  hasChanges,
  type ManifestDiff,
  renderManifestDiff,
  type ServiceDiff,
} from './diff.js';
export {
  MAX_SIGNED_MANIFEST_BYTES,
  readSignedManifest,
  renderSignedManifest,
  SIGNED_MANIFEST_FORMAT,
  SIGNED_MANIFEST_FORMAT_VERSION,
  type SignedManifest,
  type SignedManifestRead,
  SignedManifestSchema,
} from './envelope.js';
export { findJsonSyntaxError, type JsonSyntaxError } from './json-error.js';
export {
  checkUpdate,
  claimPorts,
  DEFAULT_PORT_ENV,
  deriveSecondPort,
  describeUpdate,
  instanceService,
  type PortClaim,
  portEnvOf,
  SECOND_PORT_OFFSET,
  secondPortOf,
  servicePorts,
  updateStrategy,
} from './ports.js';
export {
  type AppliedManifest,
  compareGenerations,
  describeReplay,
  type GenerationVerdict,
  judgeGeneration,
  type ManifestIdentity,
  manifestDigest,
} from './replay.js';
export { OPEN_ROLLOUT_STATES } from './rollout.js';
export {
  ADDRESS_FAMILIES,
  ArtifactSchema,
  EnvSchema,
  ExecSchema,
  HardeningSchema,
  HttpSchema,
  MANIFEST_VERSION,
  type Manifest,
  ManifestSchema,
  ROLLOUT_STATES,
  type Rollout,
  type RolloutParameters,
  RolloutParametersSchema,
  RolloutSchema,
  type RolloutState,
  RolloutVersionSchema,
  type Service,
  type ServiceExec,
  type ServiceHardening,
  type ServiceHttp,
  ServiceSchema,
  type ServiceSystemd,
  SystemdSchema,
  UPDATE_STRATEGIES,
  type UpdateStrategy,
} from './schema.js';
export { servicesForHost } from './select.js';
export {
  MANIFEST_SIGNATURE_DOMAIN,
  type ManifestOpening,
  type ManifestSignatureCode,
  type ManifestSignatureFailure,
  type ManifestVerification,
  type OpenManifestOptions,
  openManifest,
  signManifest,
  verifyManifest,
} from './signature.js';
export {
  isStorePath,
  NIX_BASE32_CHARS,
  parseStorePath,
  STORE_PATH_RE,
  type StorePath,
} from './store-path.js';
export { summarizeManifest } from './summary.js';
export {
  assertManifest,
  DEFAULT_SECRETS_DIR,
  formatIssues,
  type ManifestIssue,
  type ManifestResult,
  parseManifest,
  type ValidateOptions,
  validateManifest,
} from './validate.js';
