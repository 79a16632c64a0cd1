import { createHash } from 'node:crypto';
import { describeUpdate } from '../manifest/ports.js';
import type { Service } from '../manifest/schema.js';
import { type DeployerState, emptyState } from './state.js';

/** What the deployer would install for one service: its unit and route, computed by the systemd/caddy cores. */
export interface DesiredService {
  service: Service;
  unitName: string;
  unitText: string;
  /** The Caddy route, or `undefined` for a service without `http`. */
  route: unknown;
  /** Hash of unit text and route: equal hash = nothing to do. */
  specHash: string;
  /**
   * Under a blue/green or overlap update: the unit the new version starts in beside the running one, and (blue/
   * green) the port it listens on. Absent for a service that restarts in place.
   */
  candidate?: CandidateUnit;
}

/** The candidate instance of a service (see {@link DesiredService.candidate}). */
export interface CandidateUnit {
  strategy: 'blue-green' | 'overlap';
  unitName: string;
  unitText: string;
  port?: number;
}

/** What one service needs. */
export type ServiceAction =
  | 'install' // new on this host
  | 'update' // unit or route differs from what runs
  | 'unchanged'
  | 'remove' // no longer in the manifest for this host
  | 'hold'; // the wanted version already failed its health gate: keep the running one

/** One line of the plan. */
export interface ServicePlan {
  name: string;
  action: ServiceAction;
  unitName: string;
  /** Store path that will run (for remove: the one that ran). */
  storePath: string;
  /** Store path running now, for update/remove/hold. */
  currentStorePath?: string;
  desired?: DesiredService;
  /** Human-readable differences: store path, unit lines, route. */
  changes: string[];
  /**
   * How an update that needs a new process replaces the running one, when not by a restart in place (e.g.
   * `blue/green: the new version starts on port 18000 beside the running one, ...`).
   */
  update?: string;
}

/** The whole plan for one tick. Pure data: `renderPlan` prints it, `applyPlan` performs it. */
export interface DeployPlan {
  host: string;
  generation: string;
  services: ServicePlan[];
  /** Store paths to copy from the substituter before anything is touched. */
  pulls: string[];
}

/**
 * The state a host would have if it ran exactly `desired`, all healthy since `since`: what `push --plan`
 * compares a new manifest against for each host, and a starting point for tests. Pure.
 */
export function assumeRunning(
  host: string,
  desired: readonly DesiredService[],
  since: string,
): DeployerState {
  const state = emptyState(host);
  for (const d of desired) {
    state.services[d.service.name] = {
      storePath: d.service.artifact.storePath,
      unitName: d.unitName,
      unitText: d.unitText,
      specHash: d.specHash,
      ...(d.route === undefined ? {} : { route: d.route }),
      health: 'healthy',
      since,
    };
  }
  return state;
}

/** Hash of what makes a service's deployment: its unit text and its route. */
export function hashSpec(unitText: string, route: unknown): string {
  return createHash('sha256')
    .update(unitText)
    .update('\0')
    .update(JSON.stringify(route ?? null))
    .digest('hex')
    .slice(0, 32);
}

/**
 * Compares the desired services with what the state says runs: install, update, unchanged, remove, or hold a
 * version that already failed its health gate (until the manifest changes that service again). Pure.
 */
export function planDeploy(input: {
  host: string;
  generation: string;
  desired: DesiredService[];
  state: DeployerState;
}): DeployPlan {
  const { state } = input;
  const services: ServicePlan[] = [];
  const wanted = new Set<string>();
  for (const desired of input.desired) {
    const name = desired.service.name;
    wanted.add(name);
    const current = state.services[name];
    const storePath = desired.service.artifact.storePath;
    const known = state.failures.find((f) => f.service === name && f.specHash === desired.specHash);
    const base = { name, unitName: desired.unitName, storePath, desired };
    if (current?.specHash === desired.specHash) {
      services.push({ ...base, action: 'unchanged', currentStorePath: current.storePath, changes: [] });
    } else if (known) {
      services.push({
        ...base,
        action: 'hold',
        currentStorePath: current?.storePath,
        changes: [`not retried: this version failed its health gate at ${known.at} (${known.reason})`],
      });
    } else if (!current) {
      services.push({ ...base, action: 'install', changes: [`new: ${storePath}`] });
    } else {
      const changes = describeChanges(
        current.storePath,
        current.unitText,
        current.route,
        storePath,
        desired.unitText,
        desired.route,
      );
      // Only a new unit needs a new process; how it replaces the old one is the strategy's business.
      const how =
        current.unitText !== desired.unitText && desired.candidate
          ? { update: describeUpdate(desired.service) }
          : {};
      services.push({ ...base, action: 'update', currentStorePath: current.storePath, changes, ...how });
    }
  }
  for (const [name, current] of Object.entries(state.services)) {
    if (wanted.has(name)) continue;
    services.push({
      name,
      action: 'remove',
      unitName: current.unitName,
      storePath: current.storePath,
      currentStorePath: current.storePath,
      changes: [`stop and remove (was ${current.storePath}); its profile stays for rollback`],
    });
  }
  services.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const pulls = [
    ...new Set(
      services.filter((s) => s.action === 'install' || s.action === 'update').map((s) => s.storePath),
    ),
  ];
  return { host: input.host, generation: input.generation, services, pulls };
}

function describeChanges(
  oldPath: string,
  oldUnit: string,
  oldRoute: unknown,
  newPath: string,
  newUnit: string,
  newRoute: unknown,
): string[] {
  const changes: string[] = [];
  if (oldPath !== newPath) changes.push(`store path ${oldPath} → ${newPath}`);
  const before = new Set(oldUnit.split('\n'));
  const after = new Set(newUnit.split('\n'));
  // Lines that only carry the store path are covered by the line above.
  const strip = (line: string) => line.replaceAll(oldPath, '<store>').replaceAll(newPath, '<store>');
  const removed = [...before].filter((l) => !after.has(l) && !after.has(l.replaceAll(oldPath, newPath)));
  const added = [...after].filter((l) => !before.has(l) && !before.has(l.replaceAll(newPath, oldPath)));
  for (const line of removed) changes.push(`unit - ${strip(line)}`);
  for (const line of added) changes.push(`unit + ${strip(line)}`);
  if (JSON.stringify(oldRoute ?? null) !== JSON.stringify(newRoute ?? null)) changes.push('route changed');
  return changes;
}

const SYMBOL: Record<ServiceAction, string> = {
  install: '+',
  update: '~',
  unchanged: '=',
  remove: '-',
  hold: '!',
};

/** Renders a plan for people: a summary line, then one block per service that changes. */
export function renderPlan(plan: DeployPlan, options: { verbose?: boolean } = {}): string {
  const count = (a: ServiceAction) => plan.services.filter((s) => s.action === a).length;
  const lines = [
    `host ${plan.host}, manifest generation ${plan.generation}: ${count('install')} to install, ${count('update')} to update, ` +
      `${count('remove')} to remove, ${count('unchanged')} unchanged${count('hold') ? `, ${count('hold')} held back` : ''}`,
  ];
  for (const s of plan.services) {
    if (s.action === 'unchanged' && !options.verbose) continue;
    lines.push(`  ${SYMBOL[s.action]} ${s.name} (${s.unitName})`);
    for (const change of s.changes) lines.push(`      ${change}`);
    if (s.update) lines.push(`      ${s.update}`);
  }
  if (plan.pulls.length) lines.push(`  closures to pull: ${plan.pulls.length}`);
  return lines.join('\n');
}
