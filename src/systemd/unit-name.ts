import { DeployError } from '../errors.js';
import { SERVICE_NAME_RE } from '../manifest/patterns.js';

/**
 * The prefix of every unit the deployer owns: `deploy-<service>.service`. The deployer lists, changes and
 * removes only units with this prefix, so it never touches the host's own units (a NixOS
 * `podcastitlater-web.service` can run next to `deploy-podcastitlater-web.service` during a migration).
 */
export const DEFAULT_UNIT_PREFIX = 'deploy-';

const PREFIX_RE = /^[a-z][a-z0-9-]{0,30}-$/;

/** Throws `USAGE` unless `prefix` is lowercase letters, digits and `-`, starts with a letter and ends in `-`. */
export function assertUnitPrefix(prefix: string): void {
  if (!PREFIX_RE.test(prefix))
    throw new DeployError(
      'USAGE',
      `unit prefix: expected lowercase letters, digits and "-", starting with a letter and ending in "-" (e.g. "deploy-"), found ${JSON.stringify(prefix)}`,
    );
}

/** The unit name of a service, e.g. `web` → `deploy-web.service`. Throws for an invalid service name. */
export function unitNameFor(serviceName: string, prefix: string = DEFAULT_UNIT_PREFIX): string {
  assertUnitPrefix(prefix);
  if (!SERVICE_NAME_RE.test(serviceName))
    throw new DeployError(
      'SYSTEMD_UNIT_NAME',
      `service name: expected lowercase letters, digits and "-", starting with a letter, at most 63 characters, found ${JSON.stringify(serviceName)}`,
    );
  return `${prefix}${serviceName}.service`;
}

/**
 * The instance name of the unit a new version starts in beside the running one during a blue/green or overlap
 * update: `deploy-web@next.service`. An `@` cannot occur in a service name, so no service's own unit can be
 * another's candidate; the file is a concrete instance unit (no `deploy-web@.service` template exists).
 */
export const CANDIDATE_INSTANCE = 'next';

/** The candidate unit of a service, e.g. `web` → `deploy-web@next.service`. Throws for an invalid name. */
export function candidateUnitNameFor(serviceName: string, prefix: string = DEFAULT_UNIT_PREFIX): string {
  return unitNameFor(serviceName, prefix).replace(/\.service$/, `@${CANDIDATE_INSTANCE}.service`);
}

/** True when `unitName` is the candidate unit of one of our services (see {@link candidateUnitNameFor}). */
export function isCandidateUnit(unitName: string, prefix: string = DEFAULT_UNIT_PREFIX): boolean {
  return unitName.endsWith(`@${CANDIDATE_INSTANCE}.service`) && serviceNameOf(unitName, prefix) !== undefined;
}

/**
 * The service a unit name belongs to (its own unit or its candidate), or `undefined` when the unit is not one of
 * ours (other prefix, other type, or a name no service could have). The inverse of {@link unitNameFor} and
 * {@link candidateUnitNameFor}.
 */
export function serviceNameOf(unitName: string, prefix: string = DEFAULT_UNIT_PREFIX): string | undefined {
  if (!unitName.startsWith(prefix) || !unitName.endsWith('.service')) return undefined;
  const base = unitName.slice(prefix.length, -'.service'.length);
  const name = base.endsWith(`@${CANDIDATE_INSTANCE}`)
    ? base.slice(0, -`@${CANDIDATE_INSTANCE}`.length)
    : base;
  return SERVICE_NAME_RE.test(name) ? name : undefined;
}

/** Throws `SYSTEMD_UNIT_NAME` unless `unitName` is a unit this deployer owns (see {@link serviceNameOf}). */
export function assertOwnedUnit(unitName: string, prefix: string = DEFAULT_UNIT_PREFIX): void {
  if (serviceNameOf(unitName, prefix) === undefined)
    throw new DeployError(
      'SYSTEMD_UNIT_NAME',
      `unit ${JSON.stringify(unitName)}: expected a unit of this deployer, "${prefix}<service name>.service" or "${prefix}<service name>@${CANDIDATE_INSTANCE}.service"; refusing to touch it`,
      { details: { unit: unitName, prefix } },
    );
}
