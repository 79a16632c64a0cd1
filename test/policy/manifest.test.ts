import { describe, expect, it } from 'vitest';
import { checkManifestPolicy, DEFAULT_HOST_POLICY, formatPolicyIssues } from '../../src/policy/index.js';
import { makeManifest, makeService } from '../builders.js';
import { CTX, policyOf } from './support.js';

const { serviceNames: _, ...ctx } = CTX;

describe('checkManifestPolicy: rules across services', () => {
  const manifest = makeManifest([
    makeService({ name: 'web', hardening: { stateDirectory: ['web'] }, hosts: ['biz'] }),
    makeService({
      name: 'api',
      hosts: ['other'],
      systemd: { requires: ['deploy-web.service'] },
      hardening: { readWritePaths: ['/var/lib/web/uploads', '/var/lib/legacy'] },
      envFile: '/var/lib/biz-secrets/shared.env',
    }),
    makeService({ name: 'worker', envFile: '/var/lib/biz-secrets/shared.env' }),
  ]);

  it("protects every manifest service's state (any host) and the state's services given in the context", () => {
    const r = checkManifestPolicy(manifest, DEFAULT_HOST_POLICY, { ...ctx, serviceNames: ['legacy'] });
    expect(r.issues.map((i) => `${i.path} ${i.rule}`)).toEqual([
      'services[1].hardening.readWritePaths[0] read-write-paths.other-service',
      'services[1].hardening.readWritePaths[1] read-write-paths.other-service',
      'services[1].envFile env-file.not-own',
      'services[2].envFile env-file.not-own',
    ]);
    expect(r.refused).toEqual(['api', 'worker']);
  });

  it('shares an env file only through a grant, for exactly the services named', () => {
    const policy = policyOf({ envFileGrants: { '/var/lib/biz-secrets/shared.env': ['worker'] } });
    const r = checkManifestPolicy(manifest, policy, ctx);
    expect(r.issues.map((i) => `${i.path} ${i.rule}`)).toEqual([
      'services[1].hardening.readWritePaths[0] read-write-paths.other-service',
      'services[1].envFile env-file.not-own',
    ]);
  });

  it('checks one host only when given one', () => {
    const r = checkManifestPolicy(manifest, DEFAULT_HOST_POLICY, { ...ctx, host: 'biz' });
    // api runs on host "other": only worker (biz) is refused, while api still counts for the protected state.
    expect(r.issues.map((i) => `${i.path} ${i.rule}`)).toEqual(['services[2].envFile env-file.not-own']);
  });

  it('formats a refusal with its field and rule', () => {
    const r = checkManifestPolicy(
      makeManifest([makeService({ exec: { command: 'web', user: 'root' } })]),
      DEFAULT_HOST_POLICY,
      ctx,
    );
    expect(formatPolicyIssues(r.issues)).toBe(
      'services[0].exec.user: "root" runs the service as uid 0 (rule user.root)',
    );
  });
});
