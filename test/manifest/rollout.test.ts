import { describe, expect, it } from 'vitest';
import { type ManifestIssue, validateManifest } from '../../src/manifest/index.js';
import { makeManifest, makeService, storePath } from '../builders.js';

const OLD = storePath('web-1');
const NEW = storePath('web-2');
const http = { domain: 'example.com', path: '/', internalPort: 8000 };
const web = (path: string, hosts: string[], extra: Record<string, unknown> = {}) =>
  makeService({ artifact: { type: 'nix-closure', storePath: path }, hosts, http, ...extra });

/** A rollout record: web from OLD to NEW over a | b, c with a switched, in progress. */
const record = (overrides: Record<string, unknown> = {}) => ({
  service: 'web',
  state: 'in-progress',
  from: { storePath: OLD },
  to: { storePath: NEW, revision: 'r2' },
  waves: [['a'], ['b', 'c']],
  switched: ['a'],
  rollbackPoint: { generation: '2025-01-15T12:00:00Z' },
  startedAt: '2025-01-15T12:00:01.000Z',
  updatedAt: '2025-01-15T12:00:01.000Z',
  parameters: { canary: 1, minHealthyTimeMs: 10_000, healthyDeadlineMs: 300_000, autoRevert: true },
  ...overrides,
});

/** A manifest in the middle of web's rollout: NEW on a, OLD on b and c. */
const split = (rollout: unknown = record(), services = [web(NEW, ['a']), web(OLD, ['b', 'c'])]) =>
  makeManifest(services, { rollout });

const issuesOf = (input: unknown): ManifestIssue[] => {
  const result = validateManifest(input);
  return result.ok ? [] : result.issues;
};

describe('a manifest during a staged rollout', () => {
  it.each([
    ['web on two versions while its rollout is in progress', split()],
    [
      'halted (auto-revert off): still two versions',
      split(record({ state: 'halted', message: 'halted: a failed' })),
    ],
    [
      'another service beside it, on the same hosts',
      split(record(), [
        web(NEW, ['a']),
        makeService({ name: 'api', hosts: ['a', 'b', 'c'] }),
        web(OLD, ['b', 'c']),
      ]),
    ],
    [
      'done: one entry, the record kept for people',
      split(record({ state: 'done', switched: ['a', 'b', 'c'] }), [web(NEW, ['a', 'b', 'c'])]),
    ],
    [
      'reverted: one entry of the previous version',
      split(record({ state: 'reverted' }), [web(OLD, ['a', 'b', 'c'])]),
    ],
    [
      'a new service: no from, no entry on the hosts not yet switched',
      split(record({ from: undefined }), [web(NEW, ['a'])]),
    ],
    [
      'a spec change on the same store path',
      split(record({ from: { storePath: NEW } }), [
        web(NEW, ['a'], { env: { A: '2' } }),
        web(NEW, ['b', 'c']),
      ]),
    ],
    [
      'a rollout over every host at once (no canary)',
      split(record({ waves: [['a', 'b', 'c']], switched: ['a', 'b', 'c'] }), [web(NEW, ['a', 'b', 'c'])]),
    ],
  ])('accepts %s', (_name, manifest) => {
    expect(issuesOf(manifest)).toEqual([]);
  });

  it.each([
    [
      'a service twice without a rollout',
      makeManifest([web(NEW, ['a']), web(OLD, ['b'])]),
      'services[1].name',
      /^duplicate service name "web"; also services\[0\] \(web\)$/,
    ],
    [
      'a service twice while the rollout is of another service',
      split(record({ service: 'api' }), [
        web(NEW, ['a']),
        web(OLD, ['b', 'c']),
        makeService({ name: 'api', hosts: ['a'] }),
      ]),
      'services[1].name',
      /duplicate service name "web".*only while its own rollout is open; the rollout here is of "api"/,
    ],
    [
      'a service twice once its rollout is done',
      split(record({ state: 'done' })),
      'services[1].name',
      /duplicate service name "web".*"done"/,
    ],
    [
      'a host on both versions',
      split(record(), [web(NEW, ['a']), web(OLD, ['A', 'b', 'c'])]),
      'services[1].hosts[0]',
      /host "A" already runs web in services\[0\] \(web\): one version of a service per host/,
    ],
    [
      'three entries of one service',
      split(record(), [web(NEW, ['a']), web(OLD, ['b']), web(OLD, ['c'])]),
      'services[2].name',
      /appears 3 times; a rollout holds at most two versions/,
    ],
    [
      'an entry on a third version while the rollout is open',
      split(record(), [web(NEW, ['a']), web(storePath('web-0'), ['b', 'c'])]),
      'services[1].artifact.storePath',
      /runs ".*-web-0", but while its rollout is open it runs only ".*-web-1" or ".*-web-2"/,
    ],
    [
      'an open rollout of a service that is not there',
      split(record(), [makeService({ name: 'api', hosts: ['a'] })]),
      'rollout.service',
      /the rollout of "web" is in-progress, but no service of that name is in services/,
    ],
    [
      'a switched host in no wave',
      split(record({ switched: ['a', 'z'] })),
      'rollout.switched[1]',
      /host "z" is in no wave/,
    ],
    [
      'a host in two waves',
      split(record({ waves: [['a'], ['a', 'b', 'c']] })),
      'rollout.waves[1][0]',
      /host "a" is already in rollout.waves\[0\]; each host switches once/,
    ],
    [
      'an unknown state',
      split(record({ state: 'paused' })),
      'rollout.state',
      /expected one of in-progress, halted, done, reverted, rolled-back, found "paused"/,
    ],
    ['an empty wave', split(record({ waves: [['a'], []] })), 'rollout.waves[1]', /at least one host name/],
    ['no waves', split(record({ waves: [] })), 'rollout.waves', /at least one wave/],
    [
      'a bad host name in a wave',
      split(record({ waves: [['a'], ['b c']] })),
      'rollout.waves[1][0]',
      /RFC 1123/,
    ],
    ['an unknown key', split(record({ paused: true })), 'rollout.paused', /unknown key "paused"/],
    [
      'a canary of 0',
      split(record({ parameters: { ...record().parameters, canary: 0 } })),
      'rollout.parameters.canary',
      /integer from 1 to 1000/,
    ],
    [
      'a negative min-healthy-time',
      split(record({ parameters: { ...record().parameters, minHealthyTimeMs: -1 } })),
      'rollout.parameters.minHealthyTimeMs',
      /integer from 0 to 86400000/,
    ],
    [
      'a message with a newline',
      split(record({ message: 'a\nb' })),
      'rollout.message',
      /without control characters/,
    ],
    [
      'a rollback point that is not a generation',
      split(record({ rollbackPoint: { generation: 'yesterday' } })),
      'rollout.rollbackPoint.generation',
      /ISO-8601/,
    ],
    [
      'rollbackService not a service name',
      makeManifest([makeService()], { rollbackService: 'Web!' }),
      'rollbackService',
      /service name/,
    ],
  ])('refuses %s', (_name, manifest, path, message) => {
    const issues = issuesOf(manifest);
    expect(issues.map((i) => i.path)).toContain(path);
    expect(issues.find((i) => i.path === path)?.message).toMatch(message);
  });

  it('lets the two versions of a service share its route and port (on different hosts), not another service', () => {
    expect(issuesOf(split())).toEqual([]);
    const taken = split(record(), [
      web(NEW, ['a']),
      web(OLD, ['b', 'c']),
      makeService({ name: 'api', hosts: ['d'], http }),
    ]);
    expect(issuesOf(taken)).toEqual([
      { path: 'services[2].http', message: 'route example.com/ is already served by services[0] (web)' },
    ]);
  });
});
