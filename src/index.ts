export * from './caddy/index.js';
export * from './deployer/index.js';
export {
  type CaddyErrorCode,
  type CliErrorCode,
  type CommonErrorCode,
  DeployError,
  type DeployErrorCode,
  type DeployerErrorCode,
  isDeployError,
  type ManifestErrorCode,
  type NixErrorCode,
  type PushErrorCode,
  type S3ErrorCode,
  type SystemdErrorCode,
} from './errors.js';
export * from './manifest/index.js';
export * from './nix/index.js';
export * from './policy/index.js';
export * from './push/index.js';
export * from './runtime/index.js';
export * from './s3/index.js';
export * from './shell/index.js';
export * from './systemd/index.js';
