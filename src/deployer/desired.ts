import { isDeployError } from '../errors.js';
import type { Manifest } from '../manifest/schema.js';
import { servicesForHost } from '../manifest/select.js';
import { checkManifestPolicy } from '../policy/manifest.js';
import type { HostPolicy, PolicyContext } from '../policy/policy.js';
import type { PolicyIssue } from '../policy/rules.js';
import { renderUnit } from '../systemd/render-unit.js';
import { type DesiredService, hashSpec } from './plan.js';

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
      const unit = renderUnit(service, options);
      const route = service.http;
      desired.push({
        service,
        unitName: unit.name,
        unitText: unit.text,
        route,
        specHash: hashSpec(unit.text, route),
      });
    } catch (error) {
      if (!isDeployError(error)) throw error;
      failures.push({ service: service.name, storePath: service.artifact.storePath, reason: error.message });
    }
  }
  return { desired, failures };
}
