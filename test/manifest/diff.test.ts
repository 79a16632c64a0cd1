import { describe, expect, it } from 'vitest';
import { diffManifests, hasChanges, renderManifestDiff, servicesForHost } from '../../src/manifest/index.js';
import { makeManifest, makeService, storePath } from '../builders.js';

const web = makeService({ name: 'web', env: { PORT: '8000' } });
const worker = makeService({ name: 'worker', hosts: ['biz', 'other'] });
const api = makeService({ name: 'api', hosts: ['other'] });

describe('servicesForHost', () => {
  it('keeps manifest order and compares host names case-insensitively', () => {
    const manifest = makeManifest([web, worker, api]);
    expect(servicesForHost(manifest, 'BIZ').map((s) => s.name)).toEqual(['web', 'worker']);
    expect(servicesForHost(manifest, 'other').map((s) => s.name)).toEqual(['worker', 'api']);
    expect(servicesForHost(manifest, 'nowhere')).toEqual([]);
  });
});

describe('diffManifests', () => {
  it('treats a first deploy as all added', () => {
    const diff = diffManifests(undefined, makeManifest([web, worker]), 'biz');
    expect(diff.services.map((s) => [s.name, s.kind])).toEqual([
      ['web', 'added'],
      ['worker', 'added'],
    ]);
    expect(hasChanges(diff)).toBe(true);
  });

  it('lists added, removed, changed (with field paths) and unchanged services for one host', () => {
    const before = makeManifest([web, worker, api]);
    const web2 = {
      ...web,
      artifact: { type: 'nix-closure' as const, storePath: storePath('web-2.0.0') },
      env: { PORT: '8001', NEW: 'x' },
    };
    const moved = { ...worker, hosts: ['other'] };
    const fresh = makeService({ name: 'cron' });
    const after = makeManifest([web2, moved, api, fresh], { generation: '2025-02-01T00:00:00Z' });
    const diff = diffManifests(before, after, 'biz');
    expect(diff.services.map((s) => [s.name, s.kind, s.fields])).toEqual([
      ['cron', 'added', []],
      ['web', 'changed', ['artifact.storePath', 'env.NEW', 'env.PORT']],
      ['worker', 'removed', []],
    ]);
    expect(diffManifests(before, after, 'other').services.map((s) => [s.name, s.kind])).toEqual([
      ['api', 'unchanged'],
      ['worker', 'changed'],
    ]);
  });

  it('sees no change between equal manifests, whatever the generation', () => {
    const diff = diffManifests(
      makeManifest([web]),
      makeManifest([web], { generation: '2030-01-01T00:00:00Z' }),
      'biz',
    );
    expect(hasChanges(diff)).toBe(false);
  });

  it('compares arrays as a whole (order matters for args)', () => {
    const a = makeService({ exec: { command: 'web', args: ['--a', '--b'] } });
    const b = makeService({ exec: { command: 'web', args: ['--b', '--a'] } });
    expect(diffManifests(makeManifest([a]), makeManifest([b])).services[0]?.fields).toEqual(['exec.args']);
  });

  it('renders a readable summary', () => {
    const before = makeManifest([web, worker]);
    const web2 = {
      ...web,
      artifact: { type: 'nix-closure' as const, storePath: storePath('web-2.0.0') },
      revision: 'b',
    };
    const text = renderManifestDiff(
      diffManifests(before, makeManifest([web2, api], { generation: '2025-02-01T00:00:00Z' }), 'biz'),
    );
    expect(text).toBe(
      [
        'host biz: 0 added, 1 changed, 1 removed, 0 unchanged (generation 2025-01-15T12:34:56Z → 2025-02-01T00:00:00Z)',
        `  ~ web     ${web.artifact.storePath} → ${storePath('web-2.0.0')}; fields: revision`,
        `  - worker  removed (was ${worker.artifact.storePath})`,
      ].join('\n'),
    );
  });
});
