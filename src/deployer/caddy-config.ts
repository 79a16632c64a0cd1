/**
 * The config Caddy starts and reloads from when the host lets the deployer provide it (the caddy.service
 * drop-in, `deployer caddy-config`): the host's own config (its Caddyfile, adapted) with the deployer's routes
 * already in it. Caddy's own `caddy reload` replaces its whole config, routes added through the admin API
 * included; a config that holds them keeps every deployed site served across reloads and restarts, with no
 * window until the next tick.
 */
import { adaptCaddyConfig } from '../caddy/adapt.js';
import type { CaddyAdmin } from '../caddy/admin.js';
import { mergeRoutes, readOwnRoutes } from '../caddy/merge.js';
import type { RoutePlan } from '../caddy/plan.js';
import { readCaddyConfig } from '../caddy/reconcile.js';
import { buildRoutes, DEFAULT_CADDY_ID_PREFIX, type RoutedService } from '../caddy/routes.js';
import { DEFAULT_CADDY_LISTEN } from '../caddy/server.js';
import { isDeployError } from '../errors.js';
import type { Shell } from '../shell/types.js';
import { routedServices } from './drift.js';
import type { DeployerSettings } from './settings.js';
import type { DeployerState, StateStore } from './state.js';

/** Where each of our routes in a composed config came from. */
export interface ComposedRoute {
  service: string;
  /** `caddy`: the route Caddy serves right now (kept as it is); `state`: built from the deployer's state. */
  from: 'caddy' | 'state';
}

/** The outcome of {@link composeCaddyConfig}. */
export interface ComposedCaddyConfig {
  /** The config to give Caddy: the host's, with our routes when they could be planned. */
  config: unknown;
  /** The plan that placed our routes (absent: none placed, see `warnings`). */
  plan?: RoutePlan;
  routes: ComposedRoute[];
  /** Why routes are missing or refused; the host's config is given as it is rather than not at all. */
  warnings: string[];
}

/** What {@link composeCaddyConfig} composes. */
export interface CaddyConfigSources {
  /** The host's own config, as Caddy's JSON (the adapted Caddyfile). */
  host: unknown;
  /** The deployer's state; `undefined` when it never deployed (or its state could not be read). */
  state: DeployerState | undefined;
  /** Caddy's config right now, when Caddy answered (a reload); `undefined` at a start. */
  live: unknown;
}

/**
 * The host's config with the deployer's routes, planned as a tick plans them (`mergeRoutes`: same server choice,
 * order and foreign-route rules). Which routes: those of ours Caddy serves right now, exactly (a tick may be
 * switching one to a new port, or have added one that is not in the saved state yet), then those of the
 * state's routed services that Caddy lacks (a Caddy started or reloaded without this, which dropped them),
 * each dialing its live instance (during a blue/green switch, the candidate's port).
 * Pure. Never throws for a problem with the routes: the host's own config is returned as it is, with a warning,
 * so the deployer never keeps Caddy from starting.
 */
export function composeCaddyConfig(
  sources: CaddyConfigSources,
  settings: Pick<DeployerSettings, 'caddyServer'> & Partial<Pick<DeployerSettings, 'caddyListen'>>,
): ComposedCaddyConfig {
  const warnings: string[] = [];
  const live = sources.live === undefined ? [] : readOwnRoutes(sources.live, DEFAULT_CADDY_ID_PREFIX);
  const names = new Set(live.map((s) => s.name));
  const places = new Set(live.map(place));
  const routed: Pick<ReturnType<typeof routedServices>, 'services' | 'ports'> = sources.state
    ? routedServices(sources.state)
    : { services: [], ports: {} };
  const added = routed.services.filter((s) => !names.has(s.name) && !places.has(place(s)));
  // A switch under way (blue/green): the state's route dials the live instance, the candidate, as a tick's
  // does. The routes read from Caddy already dial what Caddy dials.
  const ports: Record<string, number> = {};
  for (const s of added) {
    const port = routed.ports[s.name];
    if (port !== undefined) ports[s.name] = port;
  }
  const services: RoutedService[] = [...live, ...added];
  const routes: ComposedRoute[] = [
    ...live.map((s) => ({ service: s.name, from: 'caddy' as const })),
    ...added.map((s) => ({ service: s.name, from: 'state' as const })),
  ];
  try {
    const merged = mergeRoutes(buildRoutes(services, { ports }), sources.host, {
      server: settings.caddyServer,
      listen: settings.caddyListen ?? DEFAULT_CADDY_LISTEN,
    });
    for (const r of merged.plan.refused)
      warnings.push(`${r.service}: route not given to Caddy (rule route.foreign-host): ${r.message}`);
    const refused = new Set(merged.plan.refused.map((r) => r.service));
    return {
      config: merged.config,
      plan: merged.plan,
      routes: routes.filter((r) => !refused.has(r.service)),
      warnings,
    };
  } catch (error) {
    if (!isDeployError(error)) throw error;
    warnings.push(`the deployer's routes are not in the config (the next tick adds them): ${error.message}`);
    return { config: sources.host, routes: [], warnings };
  }
}

function place(service: RoutedService): string {
  return `${service.http?.domain.toLowerCase()}${service.http?.path}`;
}

/** What {@link buildCaddyConfig} reads from. */
export interface CaddyConfigDeps {
  /** Runs `caddy adapt`. */
  shell: Shell;
  /** The deployer's state (read only). */
  state: StateStore;
  /** Caddy's admin API, for the routes it serves now; `undefined` when routes are off (`--caddy-admin off`). */
  caddy: CaddyAdmin | undefined;
}

/** Options of {@link buildCaddyConfig}: the host's config file (see `adaptCaddyConfig`). */
export interface CaddyConfigOptions {
  file: string;
  adapter?: string;
  /** The caddy program. Default `caddy` on PATH. */
  caddy?: string;
}

/** {@link ComposedCaddyConfig}, with what `caddy adapt` logged and notes on where the routes came from. */
export interface BuiltCaddyConfig extends ComposedCaddyConfig {
  /** `caddy adapt`'s own output on standard error (its warnings). */
  adaptLog: string;
  /** Informational lines: Caddy not running (a start), no state yet, routes off. */
  notes: string[];
}

/**
 * The config for Caddy to load (see {@link composeCaddyConfig}): adapts the host's config file, reads the state
 * and asks Caddy (when it runs) for the routes of ours it serves. Only a config file Caddy would refuse as well
 * throws (`CADDY_ADAPT`); an unreadable state, an unreachable Caddy or routes that cannot be planned give the
 * host's own config with a warning.
 */
export async function buildCaddyConfig(
  deps: CaddyConfigDeps,
  settings: Pick<DeployerSettings, 'host' | 'caddyServer'> & Partial<Pick<DeployerSettings, 'caddyListen'>>,
  options: CaddyConfigOptions,
): Promise<BuiltCaddyConfig> {
  const adapted = await adaptCaddyConfig(deps.shell, options);
  const notes: string[] = [];
  const warnings: string[] = [];
  if (!deps.caddy) {
    notes.push("routes are off (--caddy-admin off): the host's config as it is");
    return { config: adapted.config, routes: [], warnings, adaptLog: adapted.log, notes };
  }
  let state: DeployerState | undefined;
  try {
    state = await deps.state.load();
    if (state === undefined) notes.push('no deployer state yet: no routes of the deployer');
    else if (state.host.toLowerCase() !== settings.host.toLowerCase()) {
      warnings.push(
        `the state belongs to host "${state.host}", not "${settings.host}": its routes are left out`,
      );
      state = undefined;
    }
  } catch (error) {
    if (!isDeployError(error)) throw error;
    warnings.push(`${error.message}: the state's routes are left out`);
  }
  let live: unknown;
  try {
    live = (await readCaddyConfig(deps.caddy)).config;
  } catch (error) {
    if (!isDeployError(error)) throw error;
    // At a start Caddy is not running yet: the state is all there is.
    notes.push(`Caddy did not answer (${error.message.split('\n')[0]}): routes from the state`);
  }
  const composed = composeCaddyConfig({ host: adapted.config, state, live }, settings);
  return {
    ...composed,
    warnings: [...warnings, ...composed.warnings],
    adaptLog: adapted.log,
    notes,
  };
}
