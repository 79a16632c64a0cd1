import { DEFAULT_HOST_POLICY, type HostPolicy, type PolicyContext } from '../policy/policy.js';
import type { TickSettings } from './context.js';
import { type DeployerSettings, SETTINGS } from './settings.js';

function defaultOf(key: keyof DeployerSettings): string {
  return SETTINGS.find((s) => s.key === key)?.default as string;
}

/** The host policy a tick applies: the settings' (from the config file), else the secure defaults. */
export function tickPolicy(settings: Pick<TickSettings, 'policy'>): HostPolicy {
  return settings.policy ?? DEFAULT_HOST_POLICY;
}

/**
 * What the policy protects on this host (see `PolicyContext`): the deployer's directories, Caddy's admin socket
 * and the metrics file from the settings (their defaults where a tick's settings leave them out), and
 * `serviceNames`, the services whose state must stay their own.
 */
export function policyContext(
  settings: Pick<
    TickSettings,
    'secretsDir' | 'stateDir' | 'profilesDir' | 'gcrootsDir' | 'unitsDir' | 'caddyAdmin' | 'metricsFile'
  >,
  serviceNames: readonly string[] = [],
): PolicyContext {
  const ctx: PolicyContext = {
    secretsDir: settings.secretsDir,
    stateDir: settings.stateDir ?? defaultOf('stateDir'),
    profilesDir: settings.profilesDir,
    gcrootsDir: settings.gcrootsDir,
    unitsDir: settings.unitsDir ?? defaultOf('unitsDir'),
    caddyAdmin: settings.caddyAdmin ?? defaultOf('caddyAdmin'),
    serviceNames,
  };
  if (settings.metricsFile !== undefined) ctx.metricsFile = settings.metricsFile;
  return ctx;
}

/**
 * The policy a host with the deployer's defaults applies (the default host policy, the default directories),
 * for planning away from the host (`push deploy --plan`): a host whose own policy allows more (or less) may
 * differ. `serviceNames` as in {@link policyContext}.
 */
export function defaultHostPolicy(
  secretsDir: string,
  serviceNames: readonly string[] = [],
): { rules: HostPolicy; context: PolicyContext } {
  return {
    rules: DEFAULT_HOST_POLICY,
    context: policyContext(
      { secretsDir, profilesDir: defaultOf('profilesDir'), gcrootsDir: defaultOf('gcrootsDir') },
      serviceNames,
    ),
  };
}
