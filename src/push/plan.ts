import { type DesiredPolicy, desiredServices } from '../deployer/desired.js';
import { assumeRunning, type DeployPlan, planDeploy, renderPlan } from '../deployer/plan.js';
import { diffManifests, renderManifestDiff } from '../manifest/diff.js';
import type { Manifest, Service } from '../manifest/schema.js';

/** What one host would do after a manifest change. */
export interface HostPlan {
  host: string;
  plan: DeployPlan;
  /**
   * Services that host would refuse: their unit cannot be rendered, or (when planned with a policy) the host
   * policy refuses them.
   */
  refused: { service: string; reason: string }[];
}

/** The whole effect of a push, before anything is written. */
export interface PushPlan {
  before: Manifest | undefined;
  after: Manifest;
  hosts: HostPlan[];
  /** Closure size of the pushed service before and after (bytes), where Nix knows both. */
  closureSize?: { service: string; before?: number; after?: number };
}

/**
 * For every host named by either manifest: the plan its deployer would make, assuming it runs exactly the
 * current manifest (units and routes rendered from it). With `policy` (e.g. `defaultHostPolicy` of
 * `@omni/deploy/deployer`), a service that policy refuses is listed in `refused` instead of planned, as the
 * deployer's validation would (pre-flight checks need the host and are not made). Pure.
 */
export function planManifestChange(
  before: Manifest | undefined,
  after: Manifest,
  secretsDir: string,
  policy?: DesiredPolicy,
): HostPlan[] {
  const hosts = [
    ...new Set(
      [...(before?.services ?? []), ...after.services].flatMap((s) => s.hosts.map((h) => h.toLowerCase())),
    ),
  ].sort();
  const beforeOf = before && byHost(before);
  const afterOf = byHost(after);
  return hosts.map((host) => {
    const state = assumeRunning(
      host,
      before && beforeOf ? desiredServices(beforeOf(host), host, { secretsDir }).desired : [],
      before?.generation ?? '',
    );
    const { desired, failures } = desiredServices(afterOf(host), host, {
      secretsDir,
      ...(policy ? { policy } : {}),
    });
    return {
      host,
      plan: planDeploy({ host, generation: after.generation, desired, state }),
      refused: failures,
    };
  });
}

/**
 * The manifest as one host sees it (its services only, each naming just that host), from an index built in one
 * pass: selecting each host's services from the whole manifest reads every host name once per host, which is
 * quadratic in the fleet (1,000 hosts on three services: 3 million comparisons).
 */
function byHost(manifest: Manifest): (host: string) => Manifest {
  const index = new Map<string, Service[]>();
  for (const service of manifest.services) {
    for (const name of service.hosts) {
      const host = name.toLowerCase();
      const list = index.get(host) ?? [];
      if (list.length === 0) index.set(host, list);
      list.push({ ...service, hosts: [host] });
    }
  }
  return (host) => ({ ...manifest, services: index.get(host) ?? [] });
}

/** Bytes for people: KiB below one MiB, MiB above. */
export const formatBytes = (n: number) =>
  n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MiB` : `${(n / 1024).toFixed(1)} KiB`;

/** Renders a push plan for people: the manifest change, then what each host would do, then the size change. */
export function renderPushPlan(plan: PushPlan): string {
  const lines = [
    'manifest:',
    renderManifestDiff(diffManifests(plan.before, plan.after)).replace(/^/gm, '  '),
  ];
  for (const host of plan.hosts) {
    lines.push('', renderPlan(host.plan));
    for (const r of host.refused) lines.push(`  ! ${r.service}: would be refused: ${r.reason}`);
  }
  const size = plan.closureSize;
  if (size) {
    const show = (n: number | undefined) =>
      n === undefined ? 'unknown (not in the local store)' : formatBytes(n);
    const delta =
      size.before !== undefined && size.after !== undefined
        ? ` (${size.after >= size.before ? '+' : '-'}${formatBytes(Math.abs(size.after - size.before))})`
        : '';
    lines.push('', `closure of ${size.service}: ${show(size.before)} → ${show(size.after)}${delta}`);
  }
  lines.push('', 'nothing was written (--plan)');
  return lines.join('\n');
}
