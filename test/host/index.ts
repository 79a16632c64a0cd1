export { type BootedHost, bootHost, type HostOptions, MISSING_NSPAWN } from './boot-host.js';
export { buildService, NIX_ENV, type ServiceBuild, wrapper } from './build-service.js';
export { HTTP_SERVICE_NIX } from './http-service.js';
