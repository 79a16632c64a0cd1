export {
  type Admission,
  type AdmitSettings,
  admitManifest,
  lastAccepted,
  trustFingerprint,
} from './admit.js';
export type { ServiceOutcome, ServiceResult } from './apply.js';
export {
  type BuiltCaddyConfig,
  buildCaddyConfig,
  type CaddyConfigDeps,
  type CaddyConfigOptions,
  type CaddyConfigSources,
  type ComposedCaddyConfig,
  type ComposedRoute,
  composeCaddyConfig,
} from './caddy-config.js';
export {
  busyConnections,
  type Connections,
  createConnections,
  parseSsConnections,
  QUIET_MS,
  type UpstreamConnection,
} from './connections.js';
export type { DeployerAdapters, DeployerContext, TickSettings } from './context.js';
export { createDeployerAdapters, createDeployerContext } from './create.js';
export { type DesiredPolicy, desiredServices, policyReason, type RenderFailure } from './desired.js';
export type { RouteRefusal } from './drift.js';
export { createFileStateStore } from './file-state-store.js';
export {
  type HealthGateTiming,
  type HealthVerdict,
  type UnitHealthStatus,
  waitHealthy,
} from './health-gate.js';
export {
  createHostChecks,
  gatherHostFacts,
  type HostChecks,
  type HostPathInfo,
  parseSsListeners,
  unitFromCgroup,
} from './host-checks.js';
export { defaultHostPolicy, policyContext, tickPolicy } from './host-policy.js';
export { type LiveInstance, liveInstance, planUnits, recordPorts, serviceUnits } from './live.js';
export { createFileLock, type FileLockOptions, type Lock, type LockHandle, type LockOwner } from './lock.js';
export { renderMetrics } from './metrics.js';
export {
  assumeRunning,
  type CandidateUnit,
  type DeployPlan,
  type DesiredService,
  hashSpec,
  planDeploy,
  renderPlan,
  type ServiceAction,
  type ServicePlan,
} from './plan.js';
export { createHealthProbe, type HealthProbe, type ProbeResult } from './probe.js';
export {
  type DeployerSettings,
  resolveSettings,
  SETTINGS,
  type SettingsResult,
  type SettingsSources,
} from './settings.js';
export {
  activeRecord,
  type DeployerState,
  emptyState,
  type FailureRecord,
  MANIFEST_REFUSAL_REASONS,
  type ManifestRefusalReason,
  parseState,
  type Refusal,
  type RefusalRecord,
  RefusalRecordSchema,
  type ServiceRecord,
  type StateStore,
  type SwitchPhase,
  type SwitchRecord,
  type TickOutcome,
  type VersionRecord,
} from './state.js';
export {
  assertHostStatus,
  buildHostStatus,
  type HostReport,
  HostReportSchema,
  type HostStatus,
  HostStatusSchema,
  parseHostStatus,
  renderHostStatus,
} from './status.js';
export { applySwitches, recoverSwitches, splitSwitches } from './switch.js';
export {
  type MainUnitSeen,
  planRecovery,
  type RecoveryPlan,
  routeUpdate,
  type UpdateRoute,
} from './switch-plan.js';
export { runTick, type TickReport } from './tick.js';
export { type WatchOptions, watch } from './watch.js';
