export { type AdaptCaddyConfigOptions, type AdaptedCaddyConfig, adaptCaddyConfig } from './adapt.js';
export {
  type CaddyAdminAddressOptions,
  type CaddyAdminEndpoint,
  DEFAULT_CADDY_ADMIN_ADDRESS,
  formatCaddyAdminEndpoint,
  parseCaddyAdminAddress,
} from './address.js';
export type { CaddyAdmin, CaddyRead, CaddyRequestEvent, CaddyWriteOptions } from './admin.js';
export { type CaddyAdminOptions, createCaddyAdmin } from './http-admin.js';
export { type MergedConfig, mergeRoutes, readOwnRoutes } from './merge.js';
export {
  type CaddyAdminRequest,
  type CaddyRouteOptions,
  DEFAULT_CADDY_SERVER,
  planRoutes,
  type RefusedRoute,
  type RouteOperation,
  type RoutePlan,
  renderRoutePlan,
} from './plan.js';
export {
  applyRoutePlan,
  type CaddyEvent,
  type CaddyRequestCounts,
  type CaddySnapshot,
  checkRoutes,
  type ReconcileRoutesOptions,
  type ReconcileRoutesResult,
  readCaddyConfig,
  reconcileRoutes,
} from './reconcile.js';
export {
  type BuildRoutesOptions,
  buildRoutes,
  type CaddyRoute,
  DEFAULT_CADDY_ID_PREFIX,
  type DesiredRoute,
  type RoutedService,
} from './routes.js';
export {
  AUTO_CADDY_SERVER,
  CREATED_CADDY_SERVER,
  chooseCaddyServer,
  DEFAULT_CADDY_LISTEN,
  listenPortRange,
  type ServerChoice,
} from './server.js';
export type { CaddyConfigPath, CaddyTarget } from './target.js';
