import { expect } from 'vitest';
import { type HostPolicy, type PolicyContext, parseHostPolicy } from '../../src/policy/index.js';

/** The deployer's context in these tests: the default directories, a unix admin socket, a metrics file. */
export const CTX: PolicyContext = {
  secretsDir: '/var/lib/biz-secrets',
  stateDir: '/var/lib/biz-deployer',
  profilesDir: '/nix/var/nix/profiles/biz',
  gcrootsDir: '/nix/var/nix/gcroots/biz',
  unitsDir: '/run/systemd/system',
  caddyAdmin: 'unix//run/caddy/admin.sock',
  metricsFile: '/var/lib/prometheus-node-exporter/omni-deployer.prom',
  serviceNames: ['web', 'api'],
};

/** The effective policy of a config-file `policy` object (fails the test when it does not parse). */
export function policyOf(config?: Record<string, unknown>): HostPolicy {
  const result = parseHostPolicy(config, 'deployer.json: policy');
  if (!result.ok) expect.fail(result.issues.map((i) => `${i.path}: ${i.message}`).join('\n'));
  return result.policy;
}
