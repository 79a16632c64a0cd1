import { isObject } from '../runtime/json.js';
import { describeValue } from './describe.js';

/** One issue, as the validator collects them (`ManifestIssue`; declared here so the two files do not import each other). */
interface Issue {
  path: string;
  message: string;
}

/** Rollout states in which a service may appear twice (one version per host): the rollout is not over. */
export const OPEN_ROLLOUT_STATES: readonly string[] = ['in-progress', 'halted'];

/**
 * The cross-entry rules of services that appear more than once, and of the `rollout` record (docs/manifest.md,
 * "A staged rollout"): a service may have two entries only while its rollout is open (`rollout.service`, state
 * `in-progress` or `halted`), on disjoint hosts (one version of a service per host), each running the rollout's
 * `from` or `to` store path; `switched` names hosts of `waves`, and no host is in two waves. Reads the raw input
 * defensively, so that it reports alongside the schema's issues. `entries` maps each service name to the
 * indexes of its entries, in manifest order.
 */
export function checkServiceEntries(
  input: Record<string, unknown>,
  services: readonly unknown[],
  entries: ReadonlyMap<string, readonly number[]>,
  label: (index: number) => string,
  issues: Issue[],
): void {
  const rollout = isObject(input.rollout) ? input.rollout : undefined;
  const open = rollout !== undefined && OPEN_ROLLOUT_STATES.includes(rollout.state as string);
  for (const [name, indexes] of entries) {
    if (indexes.length < 2) continue;
    const first = indexes[0] as number;
    if (!open || rollout?.service !== name) {
      for (const i of indexes.slice(1))
        issues.push({
          path: `services[${i}].name`,
          message: `duplicate service name ${describeValue(name)}; also ${label(first)}${rollout ? ` (a service appears more than once only while its own rollout is open; the rollout here is of ${describeValue(rollout.service)}, ${describeValue(rollout.state)})` : ''}`,
        });
      continue;
    }
    for (const i of indexes.slice(2))
      issues.push({
        path: `services[${i}].name`,
        message: `service ${describeValue(name)} appears ${indexes.length} times; a rollout holds at most two versions of it (from and to)`,
      });
    const owner = new Map<string, number>();
    for (const i of indexes) {
      const hosts = (services[i] as Record<string, unknown>).hosts;
      if (!Array.isArray(hosts)) continue;
      hosts.forEach((host, k) => {
        if (typeof host !== 'string') return;
        const other = owner.get(host.toLowerCase());
        if (other === undefined) owner.set(host.toLowerCase(), i);
        else if (other !== i)
          issues.push({
            path: `services[${i}].hosts[${k}]`,
            message: `host ${describeValue(host)} already runs ${name} in ${label(other)}: one version of a service per host`,
          });
      });
    }
  }
  if (rollout) checkRolloutRecord(rollout, open, services, entries, label, issues);
}

/** The record against itself and, while it is open, against its service's entries. */
function checkRolloutRecord(
  rollout: Record<string, unknown>,
  open: boolean,
  services: readonly unknown[],
  entries: ReadonlyMap<string, readonly number[]>,
  label: (index: number) => string,
  issues: Issue[],
): void {
  const name = rollout.service;
  const waved = new Map<string, string>();
  if (Array.isArray(rollout.waves))
    rollout.waves.forEach((wave, w) => {
      if (!Array.isArray(wave)) return;
      wave.forEach((host, k) => {
        if (typeof host !== 'string') return;
        const earlier = waved.get(host.toLowerCase());
        if (earlier === undefined) waved.set(host.toLowerCase(), `rollout.waves[${w}]`);
        else
          issues.push({
            path: `rollout.waves[${w}][${k}]`,
            message: `host ${describeValue(host)} is already in ${earlier}; each host switches once`,
          });
      });
    });
  if (Array.isArray(rollout.switched))
    rollout.switched.forEach((host, k) => {
      if (typeof host === 'string' && !waved.has(host.toLowerCase()))
        issues.push({
          path: `rollout.switched[${k}]`,
          message: `host ${describeValue(host)} is in no wave of the rollout`,
        });
    });
  if (!open || typeof name !== 'string') return;
  const indexes = entries.get(name);
  if (!indexes?.length) {
    issues.push({
      path: 'rollout.service',
      message: `the rollout of ${describeValue(name)} is ${String(rollout.state)}, but no service of that name is in services`,
    });
    return;
  }
  const versions = [rollout.from, rollout.to]
    .map((v) => (isObject(v) ? v.storePath : undefined))
    .filter((p) => typeof p === 'string');
  for (const i of indexes) {
    const service = services[i] as Record<string, unknown>;
    const storePath = isObject(service.artifact) ? service.artifact.storePath : undefined;
    if (typeof storePath === 'string' && !versions.includes(storePath))
      issues.push({
        path: `services[${i}].artifact.storePath`,
        message: `${label(i)} runs ${describeValue(storePath)}, but while its rollout is open it runs only ${versions.map((p) => describeValue(p)).join(' or ')} (rollout.from, rollout.to)`,
      });
  }
}
