/**
 * The examples and the original design's manifest pass the default policy as they are: nothing in them relied
 * on what the policy refuses. The deployer context is examples/deployer.json's (a unix admin socket and a
 * metrics file, both protected).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { desiredServices } from '../../src/deployer/desired.js';
import { resolveSettings } from '../../src/deployer/settings.js';
import { type Manifest, parseManifest, validateManifest } from '../../src/manifest/index.js';
import {
  checkManifestPolicy,
  DEFAULT_HOST_POLICY,
  type PolicyContext,
  parseHostPolicy,
} from '../../src/policy/index.js';
import { applyServiceChange, parseServiceSpec } from '../../src/push/spec.js';
import { storePath } from '../builders.js';

const read = (path: string) => readFileSync(new URL(`../../${path}`, import.meta.url), 'utf8');

function exampleContext(): PolicyContext {
  const r = resolveSettings({
    flags: {},
    env: {},
    config: JSON.parse(read('examples/deployer.json')),
    configName: 'deployer.json',
    hostname: 'biz',
  });
  if (!r.ok) throw new Error(JSON.stringify(r.issues));
  expect(r.settings.caddyAdmin).toMatch(/^unix\/\//);
  return r.settings;
}

function valid(text: string): Manifest {
  const result = parseManifest(text);
  if (!result.ok) throw new Error(JSON.stringify(result.issues));
  return result.manifest;
}

const manifests = [
  'examples/manifest.json',
  ...readdirSync(new URL('../../examples/manifests', import.meta.url)).map((f) => `examples/manifests/${f}`),
];

describe('the examples under the default policy', () => {
  it.each(manifests)('%s passes, for every host and for its host biz', (file) => {
    const manifest = valid(read(file));
    const ctx = exampleContext();
    expect(checkManifestPolicy(manifest, DEFAULT_HOST_POLICY, ctx)).toEqual({ issues: [], refused: [] });
    expect(checkManifestPolicy(manifest, DEFAULT_HOST_POLICY, { ...ctx, host: 'BIZ' }).issues).toEqual([]);
  });

  it("the original design's manifest (test/fixtures/design-example-manifest.json, with a real store path) passes", () => {
    const value = JSON.parse(read('test/fixtures/design-example-manifest.json'));
    value.services[0].artifact.storePath = storePath('podcastitlater-web-1.2.3');
    const result = validateManifest(value);
    expect(result.ok).toBe(true);
    if (result.ok)
      expect(checkManifestPolicy(result.manifest, DEFAULT_HOST_POLICY, exampleContext()).issues).toEqual([]);
  });

  it('the service spec examples/deploy/podcastitlater-web.json, deployed by push, passes', () => {
    const spec = parseServiceSpec(read('examples/deploy/podcastitlater-web.json'), 'podcastitlater-web.json');
    const manifest = applyServiceChange(
      undefined,
      { spec, storePath: storePath('podcastitlater-web-1.2.4') },
      new Date('2025-01-16T09:00:00Z'),
    );
    expect(validateManifest(manifest).ok).toBe(true);
    expect(checkManifestPolicy(manifest, DEFAULT_HOST_POLICY, exampleContext()).issues).toEqual([]);
  });

  it('checks only the services of the host it is given', () => {
    const manifest = valid(read('examples/manifest.json'));
    const bad = structuredClone(manifest);
    const [first] = bad.services;
    if (!first) throw new Error('examples/manifest.json has no service');
    first.exec.user = 'root';
    expect(checkManifestPolicy(bad, DEFAULT_HOST_POLICY, { ...exampleContext(), host: 'other' })).toEqual({
      issues: [],
      refused: [],
    });
    expect(checkManifestPolicy(bad, DEFAULT_HOST_POLICY, { ...exampleContext(), host: 'biz' })).toMatchObject(
      {
        issues: [{ path: 'services[0].exec.user', rule: 'user.root' }],
        refused: ['podcastitlater-web'],
      },
    );
  });
});

/** The example policy of docs/security.md ("## Configuration"): the JSON block with a `policy` key. */
function securityDocPolicy() {
  const doc = read('docs/security.md');
  const block = [...doc.matchAll(/```json\n([\s\S]*?)\n```/g)]
    .map((m) => m[1] as string)
    .find((text) => text.includes('"policy"'));
  if (!block) throw new Error('docs/security.md: no json block with a "policy" key');
  const parsed = parseHostPolicy((JSON.parse(block) as { policy: unknown }).policy);
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.issues));
  return parsed.policy;
}

describe('examples/manifest.json under the example policy of docs/security.md', () => {
  it('refuses nothing: podcastitlater-web, whose derived second port 18000 is outside ports 8000-8999, restarts in place there', () => {
    const policy = securityDocPolicy();
    expect(policy.ports).toEqual({ min: 8000, max: 8999 });
    const manifest = valid(read('examples/manifest.json'));
    const ctx = exampleContext();
    expect(checkManifestPolicy(manifest, policy, { ...ctx, host: 'biz' }).issues).toEqual([]);
    const { desired, failures, warnings } = desiredServices(manifest, 'biz', {
      secretsDir: ctx.secretsDir,
      policy: { rules: policy, context: ctx },
    });
    expect(failures).toEqual([]);
    const web = desired.find((d) => d.service.name === 'podcastitlater-web');
    expect(web?.candidate).toBeUndefined();
    expect(web?.unitText).toContain('\nEnvironment="PORT=8000"\n');
    expect(warnings).toEqual([
      {
        service: 'podcastitlater-web',
        message: expect.stringContaining(
          'the derived second port 18000 (http.internalPort + 10000) is outside the ports it gives services (policy.ports: 8000-8999)',
        ),
      },
    ]);
    // Under the default policy it still gets blue/green updates.
    const open = desiredServices(manifest, 'biz', {
      secretsDir: ctx.secretsDir,
      policy: { rules: DEFAULT_HOST_POLICY, context: ctx },
    });
    expect(open.desired.find((d) => d.service.name === 'podcastitlater-web')?.candidate?.port).toBe(18000);
    expect(open.warnings).toEqual([]);
  });
});
