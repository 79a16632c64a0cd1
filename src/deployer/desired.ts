import { isDeployError } from '../errors.js';
import { instanceService, secondPortOf, updateStrategy } from '../manifest/ports.js';
import type { Manifest, Service } from '../manifest/schema.js';
import { servicesForHost } from '../manifest/select.js';
import { checkManifestPolicy } from '../policy/manifest.js';
import type { HostPolicy, PolicyContext } from '../policy/policy.js';
import type { PolicyIssue } from '../policy/rules.js';
import { renderUnit } from '../systemd/render-unit.js';
import { type CandidateUnit, type DesiredService, hashSpec } from './plan.js';

/** A service of this host that is refused (its unit cannot be rendered, or the host policy refuses it). */
export interface RenderFailure {
  service: string;
  /** The store path the manifest asked for. */
  storePath: string;
  reason: string;
  /** The host policy's refusals, when it is the policy that refuses the service (`reason` starts `policy:`). */
  issues?: PolicyIssue[];
}

/** The host policy to apply in {@link desiredServices}, and the deployer it protects. */
export interface DesiredPolicy {
  rules: HostPolicy;
  context: PolicyContext;
}

/** One line for a list of policy refusals: `path: message (rule id); ...`. */
export function policyReason(issues: readonly PolicyIssue[]): string {
  return `policy: ${issues.map((i) => `${i.path}: ${i.message} (rule ${i.rule})`).join('; ')}`;
}

/**
 * This host's services from a validated manifest, each with the unit file it needs and its route (the
 * service's `http` block, turned into a Caddy route when routes are reconciled). With `policy`, a service the
 * host policy refuses (checked from the manifest alone: names, paths, units, domains, ports) is a failure and is
 * not rendered. Pure.
 */
export function desiredServices(
  manifest: Manifest,
  host: string,
  options: { secretsDir: string; unitPrefix?: string; policy?: DesiredPolicy },
): { desired: DesiredService[]; failures: RenderFailure[] } {
  const desired: DesiredService[] = [];
  const failures: RenderFailure[] = [];
  const refusals = options.policy
    ? checkManifestPolicy(manifest, options.policy.rules, { ...options.policy.context, host }).issues
    : [];
  for (const service of servicesForHost(manifest, host)) {
    const at = `services[${manifest.services.indexOf(service)}]`;
    const issues = refusals.filter((i) => i.path.startsWith(`${at}.`));
    if (issues.length) {
      const storePath = service.artifact.storePath;
      failures.push({ service: service.name, storePath, reason: policyReason(issues), issues });
      continue;
    }
    try {
      const route = service.http;
      // Under blue/green the port variable is the deployer's: internalPort here, the second port beside it.
      const unit = renderUnit(instanceService(service, route?.internalPort ?? 0), options);
      desired.push({
        service,
        unitName: unit.name,
        unitText: unit.text,
        route,
        specHash: hashSpec(unit.text, route),
        ...candidateOf(service, options),
      });
    } catch (error) {
      if (!isDeployError(error)) throw error;
      failures.push({ service: service.name, storePath: service.artifact.storePath, reason: error.message });
    }
  }
  return { desired, failures };
}

/** The candidate unit of a service that is not restarted in place (see {@link DesiredService.candidate}). */
function candidateOf(
  service: Service,
  options: { secretsDir: string; unitPrefix?: string },
): { candidate?: CandidateUnit } {
  const strategy = updateStrategy(service);
  if (strategy === 'restart') return {};
  const port = strategy === 'blue-green' ? secondPortOf(service) : undefined;
  const unit = renderUnit(port === undefined ? service : instanceService(service, port), {
    ...options,
    instance: 'candidate',
  });
  return {
    candidate: {
      strategy,
      unitName: unit.name,
      unitText: unit.text,
      ...(port === undefined ? {} : { port }),
    },
  };
}
