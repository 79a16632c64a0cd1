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
 * The service a unit name belongs to, or `undefined` when the unit is not one of ours (other prefix, other
 * type, or a name no service could have). The inverse of {@link unitNameFor}.
 */
export function serviceNameOf(unitName: string, prefix: string = DEFAULT_UNIT_PREFIX): string | undefined {
  if (!unitName.startsWith(prefix) || !unitName.endsWith('.service')) return undefined;
  const name = unitName.slice(prefix.length, -'.service'.length);
  return SERVICE_NAME_RE.test(name) ? name : undefined;
}

/** Throws `SYSTEMD_UNIT_NAME` unless `unitName` is a unit this deployer owns (see {@link serviceNameOf}). */
export function assertOwnedUnit(unitName: string, prefix: string = DEFAULT_UNIT_PREFIX): void {
  if (serviceNameOf(unitName, prefix) === undefined)
    throw new DeployError(
      'SYSTEMD_UNIT_NAME',
      `unit ${JSON.stringify(unitName)}: expected a unit of this deployer, "${prefix}<service name>.service"; refusing to touch it`,
      { details: { unit: unitName, prefix } },
    );
}
