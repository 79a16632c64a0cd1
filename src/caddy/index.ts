export {
  type AdminAddressOptions,
  type AdminEndpoint,
  DEFAULT_ADMIN_ADDRESS,
  formatAdminEndpoint,
  parseAdminAddress,
} from './address.js';
export type { CaddyAdmin, CaddyRead, CaddyRequestEvent, CaddyWriteOptions } from './admin.js';
export { type CaddyAdminOptions, createCaddyAdmin } from './http-admin.js';
export {
  type AdminRequest,
  DEFAULT_SERVER,
  planRoutes,
  type RouteOperation,
  type RouteOptions,
  type RoutePlan,
  renderRoutePlan,
} from './plan.js';
export {
  applyRoutePlan,
  type CaddyEvent,
  type CaddySnapshot,
  checkRoutes,
  type ReconcileOptions,
  type ReconcileResult,
  type RequestCounts,
  readCaddyConfig,
  reconcileRoutes,
} from './reconcile.js';
export {
  type BuildRoutesOptions,
  buildRoutes,
  type CaddyRoute,
  DEFAULT_ID_PREFIX,
  type DesiredRoute,
  type RoutedService,
} from './routes.js';
export type { CaddyTarget, ConfigPath } from './target.js';
