import { describe, expect, it } from 'vitest';
import { readFleet, renderFleet } from '../../src/push/bucket.js';
import type { PushContext } from '../../src/push/context.js';
import { judgeHost, waitForHosts } from '../../src/push/wait.js';
import {
  createFakeClock,
  createFakeNix,
  createFakeShell,
  createMemoryManifestStore,
  createMemoryObjectStore,
} from '../../src/testing/index.js';
import { storePath } from '../builders.js';

const context = (): PushContext => ({
  manifests: createMemoryManifestStore(),
  cache: undefined,
  nix: createFakeNix(),
  shell: createFakeShell(),
  clock: createFakeClock(),
  onEvent: () => {},
  secretsDir: '/x',
});

const live = {
  host: 'biz',
  deployerVersion: '0.1.0',
  updatedAt: '2025-01-15T12:00:10Z',
  etag: '"e2"',
  generation: 'g2',
  lastTick: { at: '2025-01-15T12:00:10Z', outcome: 'applied' },
  services: [
    { name: 'web', storePath: storePath('web-2'), health: 'healthy', since: '2025-01-15T12:00:10Z' },
    { name: 'api', storePath: storePath('api-1'), health: 'unhealthy', since: '2025-01-15T12:00:10Z' },
  ],
  failures: [],
  rollbacks: 0,
};
const want = {
  etag: '"e2"',
  since: Date.parse('2025-01-15T12:00:00Z'),
  service: { name: 'web', storePath: storePath('web-2') },
};

describe('readers of status/<host>.json', () => {
  it('push --wait counts a valid report, and never one that is not a host status', () => {
    expect(judgeHost('biz', live, want)).toEqual({
      host: 'biz',
      state: 'applied',
      message: 'live (generation g2)',
    });
    for (const bad of [
      { ...live, services: 'web healthy' },
      { ...live, services: [{ ...live.services[0], health: 'fine' }] },
      { ...live, lastTick: { at: '2025-01-15T12:00:10Z', outcome: 'converged' } },
      [live],
      'applied',
    ]) {
      const judged = judgeHost('biz', bad, want);
      expect(judged.state).toBe('pending');
      expect(judged.message).toMatch(/^invalid status report, not counted: /);
    }
  });

  it('push status lists an invalid report as such, counting none of its services', async () => {
    const ctx = context();
    await ctx.manifests.writeStatus('biz', live);
    await ctx.manifests.writeStatus('edge', {
      ...live,
      host: 'edge',
      services: [{ name: 'web', health: 1 }],
    });
    const rows = await readFleet(ctx);
    expect(rows).toEqual([
      {
        host: 'biz',
        generation: 'g2',
        lastTick: '2025-01-15T12:00:10Z',
        outcome: 'applied',
        services: '1/2 healthy (not: api)',
      },
      {
        host: 'edge',
        generation: 'unknown',
        lastTick: 'unknown',
        outcome: 'invalid-status',
        services:
          'not counted: services[0].storePath: missing; services[0].health: expected ("healthy" | "unhealthy" | "unknown"), found 1',
      },
    ]);
    expect(renderFleet(rows)).toContain('invalid-status');
  });

  it('push status names the services a host refused, from reports with and without `refused`', async () => {
    const ctx = context();
    const refusal = {
      service: 'evil',
      scope: 'service',
      rule: 'env-file.not-own',
      path: 'services[2].envFile',
      message: 'not its own',
      since: '2025-01-15T12:00:10Z',
    };
    await ctx.manifests.writeStatus('biz', {
      ...live,
      refused: [refusal, { ...refusal, rule: 'user.root' }],
    });
    await ctx.manifests.writeStatus('edge', { ...live, host: 'edge' });
    const rows = await readFleet(ctx);
    expect(rows.map((r) => r.services)).toEqual([
      '1/2 healthy (not: api); refused: evil',
      '1/2 healthy (not: api)',
    ]);
  });

  it('push status lists a report that is not JSON, or names another host, as untrusted, and still lists the others', async () => {
    const ctx = context();
    await ctx.manifests.writeStatus('biz', live);
    await ctx.manifests.objects.put('status/edge.json', '{"host": "edge", "services": [');
    // edge-2 copies biz's healthy report: counted as edge-2's, it would hide that edge-2 never reported.
    await ctx.manifests.writeStatus('edge-2', live);
    const rows = await readFleet(ctx);
    expect(rows.map((r) => [r.host, r.outcome, r.services])).toEqual([
      ['biz', 'applied', '1/2 healthy (not: api)'],
      ['edge-2', 'untrusted-status', `not counted: stored as edge-2's status, but it reports host "biz"`],
      [
        'edge',
        'untrusted-status',
        'not counted: memory://store/status/edge.json: expected JSON, found something else',
      ],
    ]);
    expect(renderFleet(rows)).toContain('untrusted-status');
  });

  it("push --wait never counts an untrusted report: not JSON, or another host's", async () => {
    expect(judgeHost('edge', live, want)).toEqual({
      host: 'edge',
      state: 'pending',
      message: `untrusted status report, not counted: stored as edge's status, but it reports host "biz"`,
    });
    expect(judgeHost('BIZ', live, want).state).toBe('applied'); // host names compare as DNS names do
    const ctx = context();
    await ctx.manifests.objects.put('status/biz.json', 'not json');
    const result = await waitForHosts(ctx, { hosts: ['biz'], etag: '"e2"', since: 0, timeoutMs: 0 });
    expect(result).toMatchObject({
      ok: false,
      timedOut: true,
      hosts: [
        {
          host: 'biz',
          state: 'pending',
          message:
            'untrusted status report, not counted: memory://store/status/biz.json: expected JSON, found something else',
        },
      ],
    });
  });

  it('reads the reports where the hosts write them (--status elsewhere)', async () => {
    const statusBucket = createMemoryObjectStore({ name: 'status' });
    const ctx = { ...context(), manifests: createMemoryManifestStore({ status: statusBucket }) };
    await ctx.manifests.writeStatus('biz', live);
    expect([...statusBucket.objects.keys()]).toEqual(['biz.json']);
    expect(ctx.manifests.statusUrl).toBe('memory://status/');
    expect((await readFleet(ctx)).map((r) => [r.host, r.outcome])).toEqual([['biz', 'applied']]);
    expect(judgeHost('biz', (await ctx.manifests.readStatus('biz'))?.status, want).state).toBe('applied');
  });
});
