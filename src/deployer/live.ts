import type { ServiceHttp } from '../manifest/schema.js';
import type { ServicePlan } from './plan.js';
import type { ServiceRecord } from './state.js';

/** The instance of a service that serves, as its record says (see {@link liveInstance}). */
export interface LiveInstance {
  /** The unit that runs it: the service's own (`deploy-web.service`) or its candidate (`deploy-web@next.service`). */
  unit: string;
  /** The port it listens on (services with `http`). */
  port?: number;
  /** The `http` block Caddy routes for it (services with `http`). */
  http?: ServiceHttp;
}

/**
 * Which instance of a service is live. At rest, and while a switch has not moved traffic yet (`candidate`), the
 * service's own unit on its record's `internalPort`; once Caddy is being pointed at the candidate (`switched`,
 * `main`), the candidate on its port with the new version's route; once it is being pointed back (`returning`),
 * the service's own unit with the version it ends with (the new one, or the record's own when undoing). For an
 * overlap update (no `http`) the candidate is the instance doing the work while the service's own unit restarts.
 * Pure.
 */
export function liveInstance(record: ServiceRecord): LiveInstance {
  const own = (route: unknown): LiveInstance => {
    const http = route as ServiceHttp | undefined;
    return { unit: record.unitName, ...(http ? { port: http.internalPort, http } : {}) };
  };
  const s = record.switch;
  if (!s || s.phase === 'candidate') return own(record.route);
  if (s.phase === 'returning') return own(s.undo ? record.route : s.target.route);
  const http = s.target.route as ServiceHttp | undefined;
  return {
    unit: s.candidate.unitName,
    ...(s.candidate.port !== undefined ? { port: s.candidate.port } : {}),
    ...(http && s.candidate.port !== undefined ? { http } : {}),
  };
}

/**
 * Every unit of ours a service may have on the host right now: its own, and its candidate while a switch is
 * under way (what orphan removal and the host policy's "own units" must know). Pure.
 */
export function serviceUnits(record: ServiceRecord): string[] {
  return record.switch ? [record.unitName, record.switch.candidate.unitName] : [record.unitName];
}

/**
 * Every unit of ours a planned service may run in during this tick: its own, and the candidate of a blue/green
 * or overlap update (the host policy's "own units": a listener there is the service itself). Pure.
 */
export function planUnits(plan: Pick<ServicePlan, 'unitName' | 'desired'>): string[] {
  const candidate = plan.desired?.candidate;
  return candidate ? [plan.unitName, candidate.unitName] : [plan.unitName];
}

/**
 * Every port a service's units may hold right now: its record's `internalPort`, and during a switch the new
 * version's `internalPort` and the candidate's port. Pure.
 */
export function recordPorts(record: ServiceRecord): number[] {
  const ports = new Set<number>();
  const add = (route: unknown) => {
    const port = (route as ServiceHttp | undefined)?.internalPort;
    if (port !== undefined) ports.add(port);
  };
  add(record.route);
  if (record.switch) {
    add(record.switch.target.route);
    if (record.switch.candidate.port !== undefined) ports.add(record.switch.candidate.port);
  }
  return [...ports];
}
