export * from './caddy/index.js';
export * from './deployer/index.js';
export { DeployError, type DeployErrorCode, isDeployError } from './errors.js';
export * from './manifest/index.js';
export * from './nix/index.js';
export * from './push/index.js';
export * from './s3/index.js';
export * from './shell/index.js';
export * from './systemd/index.js';
