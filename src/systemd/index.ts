export {
  assertUnitValue,
  escapeSpecifiers,
  quoteEnvironmentAssignment,
  quoteExecArgument,
} from './escape.js';
export { DEFAULT_HARDENING, type Hardening, resolveHardening } from './hardening.js';
export { DEFAULT_RESTART, type RenderUnitOptions, renderUnit } from './render-unit.js';
export { parseUnitStatus, STATUS_PROPERTIES } from './status.js';
export { createSystemd, DEFAULT_UNITS_DIR, type SystemdOptions } from './systemd.js';
export type { ActiveState, LoadState, Systemd, UnitFile, UnitStatus } from './types.js';
export {
  assertOwnedUnit,
  assertUnitPrefix,
  CANDIDATE_INSTANCE,
  candidateUnitNameFor,
  DEFAULT_UNIT_PREFIX,
  isCandidateUnit,
  serviceNameOf,
  unitNameFor,
} from './unit-name.js';
