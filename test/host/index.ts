export { type BootedHost, bootHost, type HostOptions, MISSING_NSPAWN } from './boot-host.js';
export { buildService, NIX_ENV, type ServiceBuild, wrapper } from './build-service.js';
export { bootFleet, type Fleet, type FleetHost, type FleetOptions } from './fleet.js';
export { HTTP_SERVICE_NIX } from './http-service.js';
