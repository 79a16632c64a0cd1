/**
 * The decisions of a zero-downtime update, as pure functions: which planned updates are done as a switch (the
 * new version started beside the running one, see docs/design.md#zero-downtime-updates), and what the next tick
 * does with a switch a killed deployer left half done. switch.ts performs them.
 */
import type { CandidateUnit, ServicePlan } from './plan.js';
import type { ServiceRecord, SwitchRecord } from './state.js';

/** How one planned install or update is carried out. */
export type UpdateRoute =
  | { kind: 'restart' }
  | { kind: 'switch'; candidate: CandidateUnit }
  | { kind: 'blocked'; reason: string };

/**
 * How `plan` is carried out given the service's record: as a switch when its manifest entry asks for blue/green
 * or overlap and a switch can keep something serving (an update that needs a new process, of a healthy service;
 * blue/green also needs Caddy, a route to switch, and a second port the old version does not listen on),
 * `blocked` while an earlier switch of the service is not finished, else a restart in place (installs, route-only
 * changes, a service that is down anyway). Pure.
 */
export function routeUpdate(
  plan: ServicePlan,
  current: ServiceRecord | undefined,
  options: { caddy: boolean },
): UpdateRoute {
  if (current?.switch)
    return {
      kind: 'blocked',
      reason: `an interrupted switch of this service (step ${current.switch.phase}) is not finished yet; retried next tick`,
    };
  const candidate = plan.desired?.candidate;
  if (plan.action !== 'update' || !candidate || !current) return { kind: 'restart' };
  if (current.unitText === plan.desired?.unitText || current.health !== 'healthy') return { kind: 'restart' };
  if (candidate.strategy === 'blue-green') {
    const running = (current.route as { internalPort?: number } | undefined)?.internalPort;
    // The new version's second port is the port the old one listens on (internalPort moved onto it).
    if (!options.caddy || running === undefined || running === candidate.port) return { kind: 'restart' };
  }
  return { kind: 'switch', candidate };
}

/** What the service's own unit looks like when a tick finds a switch under way. */
export interface MainUnitSeen {
  /** Its unit file's text (`undefined`: missing, e.g. after a reboot). */
  text: string | undefined;
  active: boolean;
}

/**
 * What to do with a switch found under way:
 * - `discard`: nothing was switched yet (`candidate`): stop the candidate; the service's own unit never changed.
 * - `finish`: the service's own unit already runs the version the switch ends with and is up (`returning`):
 *   point Caddy at it, drain and stop the candidate, record the version.
 * - `undo`: anything else: put the record's version back in the service's own unit (restarting it when it may
 *   run something else, is down or missing), point Caddy at it, drain and stop the candidate. The poll then
 *   starts the update again (or holds it, when the version was recorded as failed).
 * Pure.
 */
export type RecoveryPlan = { kind: 'discard' } | { kind: 'finish' } | { kind: 'undo'; restartMain: boolean };

/** Chooses the {@link RecoveryPlan} for `record`'s switch `s`, given its own unit as seen now. Pure. */
export function planRecovery(record: ServiceRecord, s: SwitchRecord, main: MainUnitSeen): RecoveryPlan {
  const runs = (text: string) => main.active && main.text === text;
  switch (s.phase) {
    case 'candidate':
      return { kind: 'discard' };
    case 'switched':
      // The service's own unit was never touched: it still runs the record's version unless it went down.
      return { kind: 'undo', restartMain: !runs(record.unitText) };
    case 'main':
      // It may have been restarted with either version, whatever its file says now.
      return { kind: 'undo', restartMain: true };
    case 'returning':
      if (s.undo) return { kind: 'undo', restartMain: !runs(record.unitText) };
      return runs(s.target.unitText) ? { kind: 'finish' } : { kind: 'undo', restartMain: true };
  }
}
