export type { KeySource } from '../options.js';
export {
  type ArchiveRetentionPlan,
  applyArchiveRetention,
  DEFAULT_KEEP_ARCHIVES,
  planArchiveRetention,
} from './archive-retention.js';
export {
  applyCacheGc,
  type BucketInit,
  type CacheGcPlan,
  DEFAULT_NIX_CACHE_INFO,
  type FleetRow,
  initBucket,
  planCacheGc,
  readFleet,
  renderBucketInit,
  renderFleet,
} from './bucket.js';
export { DEFAULT_BUILD_COMMAND, gitRevision, runBuild } from './build.js';
export type { PushContext } from './context.js';
export { type ArchiveFloor, checkNotPutBack, readArchiveFloor } from './freshness.js';
export {
  type HistoryEntry,
  type RollbackResult,
  type RollbackTarget,
  readHistory,
  renderHistory,
  rollbackManifest,
} from './history.js';
export {
  currentManifest,
  leaseClock,
  type ManifestWrite,
  manifestUpdateOptions,
  nextManifest,
  renderManifestText,
  writeServiceChange,
} from './manifest-change.js';
export { type HostPlan, type PushPlan, planManifestChange, renderPushPlan } from './plan.js';
export {
  findRollbackPoint,
  isWave,
  type ReadArchive,
  readVerifiedArchive,
} from './rollback-point.js';
export {
  type RolloutContext,
  type RolloutHostRow,
  type RolloutOptions,
  type RolloutResult,
  readRollout,
  renderRolloutResult,
  runRollout,
} from './rollout.js';
export {
  judgeRollout,
  judgeRolloutHost,
  type RolloutHostVerdict,
  type RolloutJudgement,
  type RolloutObservation,
  type RolloutVerdict,
  type RolloutWant,
} from './rollout-judge.js';
export {
  applyRollout,
  describeRollout,
  isOpenRollout,
  planRollout,
  planWaves,
  ROLLOUT_DEFAULTS,
  type RolloutRequest,
  type RolloutTarget,
  rolloutParameters,
} from './rollout-plan.js';
export { PUSH_SETTINGS, type PushSettings, resolvePushSettings } from './settings.js';
export { type ManifestSigning, type ManifestTrust, openPushedManifest, trustedKeysOf } from './signing.js';
export {
  applyServiceChange,
  nextGeneration,
  parseServiceSpec,
  type ServiceChange,
  type ServiceSpec,
  serviceOfChange,
} from './spec.js';
export { createStatusReader, type StatusReader } from './status-reader.js';
export { type PublishResult, publishClosure } from './upload.js';
export { type HostWait, judgeHost, waitForHosts } from './wait.js';
