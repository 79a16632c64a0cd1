export {
  accountName,
  checkHostFacts,
  type HostAccount,
  type HostFacts,
  type HostFactsContext,
  type HostFactsQuery,
  type HostGroup,
  hostFactsQuery,
  type PortListener,
} from './host-facts.js';
export { checkManifestPolicy, type ManifestPolicyOptions, type ManifestPolicyResult } from './manifest.js';
export {
  type HostPolicyConfig,
  type HostPolicyResult,
  type PolicyConfigIssue,
  parseHostPolicy,
} from './parse.js';
export { isUnder, STATE_ROOT, touches } from './paths.js';
export {
  DEFAULT_DENIED_PATHS,
  DEFAULT_HOST_POLICY,
  DEFAULT_PRIVILEGED_GROUPS,
  DYNAMIC_UID_RANGE,
  type HostPolicy,
  type PolicyContext,
  STARTING_DEPENDENCIES,
  WELL_KNOWN_TARGETS,
} from './policy.js';
export {
  checkDomainAgainstForeign,
  classifyForeignRoute,
  type ForeignConflict,
  type ForeignRoute,
  findOrderViolations,
  foreignRoutes,
  type OrderViolation,
  placementFloor,
  type RouteClaim,
  type RouteRelation,
  routeClaims,
  routeRelation,
} from './routes.js';
export { formatPolicyIssues, POLICY_RULES, type PolicyIssue, type PolicyRule } from './rules.js';
export {
  checkServicePolicy,
  checkWritablePath,
  credentialAllowed,
  domainAllowed,
  envFileAllowed,
  serviceDependencyUnit,
  servicePorts,
} from './service.js';
