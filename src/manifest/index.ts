export { describeValue, formatPath } from './describe.js';
export {
  diffManifests,
  hasChanges,
  type ManifestDiff,
  renderManifestDiff,
  type ServiceDiff,
} from './diff.js';
export { findJsonSyntaxError, type JsonSyntaxError } from './json-error.js';
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
  type Service,
  type ServiceExec,
  type ServiceHardening,
  type ServiceHttp,
  ServiceSchema,
  type ServiceSystemd,
  SystemdSchema,
} from './schema.js';
export { servicesForHost } from './select.js';
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
