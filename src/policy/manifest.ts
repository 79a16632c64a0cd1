import type { Manifest } from '../manifest/schema.js';
import type { HostPolicy, PolicyContext } from './policy.js';
import type { PolicyIssue } from './rules.js';
import { checkServicePolicy } from './service.js';

/** Options of {@link checkManifestPolicy}: the deployer's context, and optionally the host to check for. */
export interface ManifestPolicyOptions extends PolicyContext {
  /** Check only this host's services (case-insensitive). Default: every service (a CI job without a host). */
  host?: string;
}

/** The outcome of {@link checkManifestPolicy}: every issue, and the names of the services they refuse. */
export interface ManifestPolicyResult {
  issues: PolicyIssue[];
  /** Services with at least one issue, in manifest order. */
  refused: string[];
}

/**
 * Checks a validated manifest against the host policy: each service (of `host`, or all) with
 * {@link checkServicePolicy}, paths as `services[<index in the manifest>]...`. The cross-service rules come from
 * the context: every manifest service (on any host) counts as a service of this deployer, so its state
 * directory is protected from the others' writable paths and its unit may be a dependency; an env file
 * outside a service's own needs a grant even when other services load it too. (Two services of one host on one
 * port, or one route, are the manifest validator's refusals already.) Pure.
 */
export function checkManifestPolicy(
  manifest: Manifest,
  policy: HostPolicy,
  options: ManifestPolicyOptions,
): ManifestPolicyResult {
  const ctx: PolicyContext = {
    ...options,
    serviceNames: [...new Set([...manifest.services.map((s) => s.name), ...(options.serviceNames ?? [])])],
  };
  const host = options.host?.toLowerCase();
  const issues: PolicyIssue[] = [];
  const refused: string[] = [];
  manifest.services.forEach((service, i) => {
    if (host !== undefined && !service.hosts.some((h) => h.toLowerCase() === host)) return;
    const found = checkServicePolicy(service, policy, ctx, `services[${i}]`);
    if (found.length && !refused.includes(service.name)) refused.push(service.name);
    issues.push(...found);
  });
  return { issues, refused };
}
