import { desiredServices } from '../deployer/desired.js';
import { assumeRunning, type DeployPlan, planDeploy, renderPlan } from '../deployer/plan.js';
import { diffManifests, renderManifestDiff } from '../manifest/diff.js';
import type { Manifest } from '../manifest/schema.js';

/** What one host would do after a manifest change. */
export interface HostPlan {
  host: string;
  plan: DeployPlan;
  /** Services whose unit cannot be rendered on that host (the deployer would refuse them). */
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
 * current manifest (units and routes rendered from it). Pure.
 */
export function planManifestChange(
  before: Manifest | undefined,
  after: Manifest,
  secretsDir: string,
): HostPlan[] {
  const hosts = [
    ...new Set(
      [...(before?.services ?? []), ...after.services].flatMap((s) => s.hosts.map((h) => h.toLowerCase())),
    ),
  ].sort();
  return hosts.map((host) => {
    const state = assumeRunning(
      host,
      before ? desiredServices(before, host, { secretsDir }).desired : [],
      before?.generation ?? '',
    );
    const { desired, failures } = desiredServices(after, host, { secretsDir });
    return {
      host,
      plan: planDeploy({ host, generation: after.generation, desired, state }),
      refused: failures,
    };
  });
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
