import { describe, expect, it } from 'vitest';
import { readFleet, renderFleet } from '../../src/push/bucket.js';
import type { PushContext } from '../../src/push/context.js';
import { judgeHost } from '../../src/push/wait.js';
import {
  createFakeClock,
  createFakeNix,
  createFakeShell,
  createMemoryManifestStore,
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
});
